"""The ``ssald web`` HTTP app: JSON endpoints mirroring the gRPC queries, an IVOA cone search, SAMP.

:func:`create_app` builds a FastAPI app over one :class:`clients.client.SsaldClient`, so it runs wherever
the client does (a laptop, against a remote ``ssald serve``). Routes are plain functions: FastAPI runs
them in its thread pool, each making one or two blocking RPCs.

- ``/api/...``: one endpoint per query (:mod:`clients.web.api`); table results as JSON or, with
  ``format=csv|votable|fits|parquet``, as a file (:mod:`clients.web.responses`).
- ``/scs``: IVOA Simple Cone Search 1.03 (:mod:`clients.web.scs`).
- ``/ui/``: the pages (search, results gallery, anomalies, labelling, map, candidates), static files from
  ``clients/web/static/`` that call ``/api`` (:mod:`clients.web.browse` adds the endpoints they need).
- ``/``: the endpoints; ``/docs``: their reference, rendered on the server from ``/openapi.json`` (no
  JavaScript and nothing from a CDN, so it works offline).

A failed RPC answers with the HTTP status of its gRPC code and the server's message; a request FastAPI
cannot parse (a missing or non-numeric parameter) answers 400 naming the parameter.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from clients.client import SsaldClient
from clients.errors import SsaldError
from clients.web.api import MAGNITUDES, MORPHOLOGY, router
from clients.web.browse import router as browse_router
from clients.web.crossmatch import Reference
from clients.web.responses import error_response
from clients.web.scs import MEDIA_TYPE, cone_search_votable

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "WebOptions", "create_app"]

#: The pages: plain HTML, CSS and JavaScript modules, served as they are from ``/ui/`` (no build, no CDN).
STATIC = Path(__file__).resolve().parent / "static"

#: Uploads above this are refused with 413: a gRPC message holds at most 4 MiB by default.
DEFAULT_MAX_UPLOAD_BYTES = 4_000_000


@dataclass(frozen=True)
class WebOptions:
    """How the web app treats writes and uploads.

    Attributes
    ----------
    max_upload_bytes : int
        Largest image upload; a larger one is refused with 413 before it reaches the server.
    exposed : bool
        The app listens beyond loopback: label writes then need ``Authorization: Bearer TOKEN``.
    token : str or None
        The token of the gRPC write RPCs (``--token-file`` / ``SSALD_TOKEN``); with ``exposed`` and no token,
        label writes are refused (403).
    reference : clients.web.crossmatch.Reference or None
        The catalogue candidate lists are cross-matched against (``--crossmatch FILE``).
    """

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    exposed: bool = False
    token: str | None = None
    reference: Reference | None = None

    def __post_init__(self) -> None:
        if self.max_upload_bytes <= 0:
            raise ValueError(f"max_upload_bytes must be positive, got {self.max_upload_bytes!r}")


def _reference(openapi: dict[str, Any], detail: bool) -> str:
    """The endpoints of the OpenAPI document as HTML: a list, or (``detail``) each with its parameters."""
    items = []
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            head = f"<code>{method.upper()} {html.escape(path)}</code> {html.escape(operation.get('summary', ''))}"
            if not detail:
                items.append(f"<li>{head}</li>")
                continue
            params = "".join(
                f"<li><code>{html.escape(p['name'])}</code> ({p['in']}{', required' if p.get('required') else ''})"
                f" {html.escape(p.get('description', ''))}</li>"
                for p in operation.get("parameters", [])
            )
            description = html.escape(operation.get("description", "")).replace("\n\n", "<p>")
            items.append(f"<li>{head}<p>{description}</p><ul>{params}</ul></li>")
    return "<ul>" + "".join(items) + "</ul>"


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>{body}</body></html>"
    )


def create_app(client: SsaldClient, options: WebOptions | None = None) -> FastAPI:
    """The web app over ``client``'s server.

    Parameters
    ----------
    client : SsaldClient
        Every request is answered through it; the caller closes it.
    options : WebOptions, optional
        Upload limit and write protection (default :class:`WebOptions`).
    """
    app = FastAPI(
        title="SSALD",
        summary="Similarity search, anomalies and candidates over an SSALD objects table",
        docs_url=None,
        redoc_url=None,
    )
    app.state.client = client
    app.state.options = options or WebOptions()
    app.include_router(router)
    app.include_router(browse_router)
    app.mount("/ui", StaticFiles(directory=STATIC, html=True), name="ui")

    @app.get("/api/settings", summary="what the pages need to know: writes, token, cross-match, upload limit")
    def settings() -> JSONResponse:
        """``{server, needs_token, max_upload_bytes, reference, magnitudes, morphology}``: labelling needs the
        token when the app listens beyond loopback; ``reference`` names the cross-match catalogue (or null);
        ``magnitudes`` and ``morphology`` list the columns with ``COLUMN_min`` / ``COLUMN_max`` filters."""
        opts = app.state.options
        ref = (
            None
            if opts.reference is None
            else {"name": opts.reference.name, "radius_arcsec": opts.reference.radius_arcsec}
        )
        return JSONResponse(
            {
                "server": client.address,
                "needs_token": opts.exposed,
                "max_upload_bytes": opts.max_upload_bytes,
                "reference": ref,
                "magnitudes": list(MAGNITUDES),
                "morphology": list(MORPHOLOGY),
            }
        )

    @app.exception_handler(SsaldError)
    def on_rpc_error(request: Request, exc: SsaldError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    def on_bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{' '.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": f"bad request: {problems}", "code": "INVALID_ARGUMENT"}, status_code=400)

    @app.get("/scs", summary="IVOA Simple Cone Search 1.03: RA, DEC, SR in degrees; VERB, MAXREC")
    def scs(request: Request) -> Response:
        """Every object within SR degrees of (RA, DEC) as a VOTable for TOPCAT, Aladin or pyvo; errors as a
        VOTable with INFO name="Error"."""
        body = cone_search_votable(client, request.query_params, f"SSALD objects table at {client.address}")
        return Response(body, media_type=MEDIA_TYPE)

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        listing = _reference(app.openapi(), detail=False)
        links = (
            "<p><a href='/ui/'>the pages</a> (search, gallery, anomalies, labelling, map, candidates) · "
            "<a href='/docs'>reference</a> · <a href='/openapi.json'>openapi.json</a></p>"
        )
        return _page("SSALD", f"<h1>SSALD web API</h1><p>Server {html.escape(client.address)}</p>{links}{listing}")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return _page("SSALD API reference", "<h1>SSALD API reference</h1>" + _reference(app.openapi(), detail=True))

    return app
