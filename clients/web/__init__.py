"""The ``ssald web`` HTTP app: the gRPC queries as JSON and table files, an IVOA cone search, and SAMP.

It talks to a running ``ssald serve`` only through :class:`clients.client.SsaldClient`, so it needs the
client's dependencies plus FastAPI, uvicorn and astropy: never the database or the encoders.

Modules
-------
app
    :func:`create_app`: the FastAPI app, its error mapping and its offline ``/docs``.
api
    The ``/api`` endpoints, one per query.
responses
    Table results as JSON or CSV/VOTable/FITS/Parquet, and gRPC codes as HTTP statuses.
scs
    The IVOA Simple Cone Search endpoint ``/scs``.
samp
    Send a table to TOPCAT or Aladin through a SAMP hub.
server
    :class:`WebServer`: uvicorn in a thread; where the app may listen.
"""

from clients.web.app import WebOptions, create_app
from clients.web.server import WebServer, check_exposure

__all__ = ["WebOptions", "WebServer", "check_exposure", "create_app"]
