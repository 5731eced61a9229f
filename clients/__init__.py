"""SSALD Python client: similarity search over a running ``ssald serve``.

>>> from clients import SsaldClient                          # doctest: +SKIP
>>> with SsaldClient("127.0.0.1:50051") as client:
...     neighbours = client.find_similar(objid, k=10)

Imports only the generated ``proto`` stubs and ``grpc``: never the server, storage or encoder packages.
"""

from clients.client import GalaxyObject, Neighbour, SsaldClient
from clients.errors import DeadlineExceeded, InvalidArgument, NotFound, SsaldError, Unavailable

__all__ = [
    "SsaldClient",
    "GalaxyObject",
    "Neighbour",
    "SsaldError",
    "NotFound",
    "InvalidArgument",
    "Unavailable",
    "DeadlineExceeded",
]
