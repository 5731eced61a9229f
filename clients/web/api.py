"""The ``/api`` endpoints of the web app: one per gRPC query, answered through the app's client.

Table results take ``format=json|csv|votable|fits|parquet`` (:mod:`clients.web.responses`); the metadata
filters (``z_min``, ``z_max``, ``spec_class``, ``bpt_class``, each class parameter repeatable, ``where`` SQL,
and ``COLUMN_min`` / ``COLUMN_max`` for each magnitude ``mag_u`` .. ``mag_z`` and morphology column
``morph_*``) mean what they mean for the client (:func:`filter_arguments`). The label write answers only
when the gRPC server accepts writes from this client, and, when the app listens beyond loopback, only to a
request that carries the token (``Authorization: Bearer TOKEN``).
"""

from __future__ import annotations

import hmac
import inspect
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from clients.client import Candidate, GalaxyObject, InCone, Neighbour, ObjectInCone, SsaldClient
from clients.errors import SsaldError
from clients.web.responses import TableFormat, jsonable, table_response
from clients.web.samp import send_table

__all__ = ["MAGNITUDES", "MORPHOLOGY", "RANGE_COLUMNS", "LabelIn", "LabelsIn", "filter_arguments", "router"]

router = APIRouter(prefix="/api")

Format = Annotated[TableFormat, Query(alias="format", description="json, or a table file: csv, votable, fits, parquet")]
K = Annotated[int, Query(description="number of neighbours, 1..1000")]


def _client(request: Request) -> SsaldClient:
    return request.app.state.client


Client = Annotated[SsaldClient, Depends(_client)]


#: Columns a range can be asked of through the ``Filter`` message's ``magnitudes``.
MAGNITUDES = ("mag_u", "mag_g", "mag_r", "mag_i", "mag_z")

#: The morphology columns measured at ingest: ``ssald_index.schema.MORPHOLOGY_FEATURES``, which the client
#: library may not import (a test holds the two equal). Their ranges travel as SQL in ``where``; a table
#: without them answers 400.
MORPHOLOGY = tuple(
    f"morph_{name}"
    for name in "asymmetry shape_asymmetry gini m20 concentration smoothness multimode intensity deviation "
    "second_peak".split()
)

#: Every column with ``COLUMN_min`` and ``COLUMN_max`` query parameters.
RANGE_COLUMNS = (*MAGNITUDES, *MORPHOLOGY)


def filter_arguments(
    z_min: float | None = None,
    z_max: float | None = None,
    spec_class: list[str] | tuple[str, ...] = (),
    bpt_class: list[str] | tuple[str, ...] = (),
    where: str | None = None,
    ranges: dict[str, float | None] | None = None,
) -> dict[str, Any]:
    """The client's filter keywords of the filter query parameters.

    Parameters
    ----------
    z_min, z_max, spec_class, bpt_class, where
        As the client takes them.
    ranges : dict, optional
        ``COLUMN_min`` / ``COLUMN_max`` -> bound (or None) for the columns of :data:`RANGE_COLUMNS`: the
        magnitudes become ``magnitudes``, the morphology columns SQL AND-ed with ``where``.

    Raises
    ------
    SsaldError
        ``INVALID_ARGUMENT`` when a range's minimum lies above its maximum, or a name is not a range parameter.
    """
    ranges = ranges or {}
    unknown = sorted(set(ranges) - {f"{c}_{b}" for c in RANGE_COLUMNS for b in ("min", "max")})
    if unknown:
        raise SsaldError(f"unknown range parameter(s) {', '.join(unknown)}", "INVALID_ARGUMENT")
    magnitudes: dict[str, tuple[float | None, float | None]] = {}
    sql = []
    for column in RANGE_COLUMNS:
        low, high = ranges.get(f"{column}_min"), ranges.get(f"{column}_max")
        if low is not None and high is not None and low > high:
            raise SsaldError(
                f"{column}_min ({low:g}) is above {column}_max ({high:g}): the range holds nothing", "INVALID_ARGUMENT"
            )
        if low is None and high is None:
            continue
        if column in MAGNITUDES:
            magnitudes[column] = (low, high)
        else:
            sql += [f"{column} {op} {value!r}" for op, value in ((">=", low), ("<=", high)) if value is not None]
    if where:
        sql.append(f"({where})")
    return {
        "z_min": z_min,
        "z_max": z_max,
        "spec_class": list(spec_class),
        "bpt_class": list(bpt_class),
        "magnitudes": magnitudes,
        "where": " AND ".join(sql) or None,
    }


def _filters(
    z_min: Annotated[float | None, Query(description="inclusive lower redshift")] = None,
    z_max: Annotated[float | None, Query(description="inclusive upper redshift")] = None,
    spec_class: Annotated[list[str], Query(description="any of these spectral classes")] = [],  # noqa: B006
    bpt_class: Annotated[list[str], Query(description="any of these BPT classes")] = [],  # noqa: B006
    where: Annotated[str | None, Query(description="SQL over the objects columns, e.g. mag_r < 17.7")] = None,
    **ranges: float | None,
) -> dict[str, Any]:
    return filter_arguments(z_min, z_max, spec_class, bpt_class, where, ranges)


def _range_parameter(column: str, bound: str) -> inspect.Parameter:
    word = "inclusive lower" if bound == "min" else "inclusive upper"
    kind = "magnitude" if column in MAGNITUDES else "morphology, where the table has it"
    query = Query(description=f"{word} {column} ({kind})", allow_inf_nan=False)
    return inspect.Parameter(
        f"{column}_{bound}", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[float | None, query]
    )


# FastAPI reads a dependency's parameters from its signature: the named filters, then COLUMN_min/COLUMN_max
# for every range column (30 of them, generated rather than written out).
_filters.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        *[p for p in inspect.signature(_filters).parameters.values() if p.kind is not p.VAR_KEYWORD],
        *[_range_parameter(c, b) for c in RANGE_COLUMNS for b in ("min", "max")],
    ]
)


Filters = Annotated[dict[str, Any], Depends(_filters)]


def _search(
    exclude_radius: Annotated[float, Query(description="arcsec around the query left out")] = 0.0,
    metric_label: Annotated[str, Query(description="search in the metric learned from this label")] = "",
    metric_kind: Annotated[str, Query(description="probe, nca or head")] = "",
    space: Annotated[str, Query(description="embedding, morphology or embedding+morphology")] = "",
    morphology_weight: Annotated[float | None, Query(description="weight of the morphology, (0, 10]")] = None,
) -> dict[str, Any]:
    return {
        "exclude_radius_arcsec": exclude_radius,
        "metric_label": metric_label,
        "metric_kind": metric_kind,
        "space": space,
        "morphology_weight": morphology_weight,
    }


Search = Annotated[dict[str, Any], Depends(_search)]


@router.get("/stats", summary="table size, model, indexes and label counts (Stats)")
def stats(client: Client) -> JSONResponse:
    """The served table's statistics, as ``SsaldClient.stats`` returns them."""
    return JSONResponse(jsonable(client.stats()))


@router.get("/objects/{objid}", summary="one object's catalogue row (GetObject)")
def get_object(client: Client, objid: int, fmt: Format = "json", with_embedding: bool = False) -> Response:
    """One object; 404 when the objid is not in the table. A table format gives a one-row table."""
    found = client.get_object(objid, with_embedding=with_embedding)
    if fmt == "json":
        return JSONResponse(jsonable(found))
    return table_response([found], fmt, f"object-{objid}", "objects")


@router.get("/similar", summary="nearest neighbours of an object, or of the object at ra, dec (FindSimilar)")
def similar(
    client: Client,
    filters: Filters,
    search: Search,
    objid: Annotated[int | None, Query(description="the query object")] = None,
    ra: Annotated[float | None, Query(description="or the object nearest to ra, dec (degrees)")] = None,
    dec: float | None = None,
    radius: Annotated[float, Query(description="arcsec around ra, dec to look for it")] = 3.0,
    k: K = 10,
    fmt: Format = "json",
) -> Response:
    """The ``k`` nearest neighbours, nearest first: of ``objid``, or of the catalogue object nearest to
    (``ra``, ``dec``) within ``radius`` arcsec."""
    if objid is not None and (ra is None and dec is None):
        found = client.find_similar(objid, k=k, **search, **filters)
        name = f"similar-{objid}"
    elif objid is None and ra is not None and dec is not None:
        found = client.cone_search(ra, dec, radius_arcsec=radius, k=k, **search, **filters).neighbours
        name = f"similar-{ra:g}{dec:+g}"
    else:
        raise SsaldError("give either objid, or both ra and dec", "INVALID_ARGUMENT")
    return table_response(found, fmt, name, "neighbours", Neighbour)


@router.post("/similar/image", summary="nearest neighbours of an uploaded stamp (FindSimilarToImage)")
def similar_to_image(
    request: Request,
    client: Client,
    filters: Filters,
    image: Annotated[UploadFile, File(description="a FITS, PNG, JPEG or NPY stamp")],
    k: K = 10,
    fmt: Format = "json",
) -> Response:
    """Neighbours of the uploaded stamp, embedded by the server's model. An upload above the app's limit is
    refused with 413 before it is sent on."""
    limit = request.app.state.options.max_upload_bytes
    declared = int(request.headers.get("content-length") or 0)
    payload = image.file.read(limit + 1)
    if declared > limit + 64 * 1024 or len(payload) > limit:
        size = f"a request of {declared} bytes" if len(payload) <= limit else f"more than {limit} bytes"
        message = f"upload {image.filename!r} is too large: {size}, the limit is {limit} bytes"
        return JSONResponse({"error": message, "code": "RESOURCE_EXHAUSTED"}, status_code=413)
    found = client.find_similar_to_image(payload, k=k, **filters)
    return table_response(found, fmt, "similar-image", "neighbours", Neighbour)


@router.get("/cone", summary="the object nearest to ra, dec and its neighbours (ConeSearch)")
def cone(
    client: Client,
    filters: Filters,
    search: Search,
    ra: Annotated[float, Query(description="degrees, ICRS")],
    dec: Annotated[float, Query(description="degrees, ICRS")],
    radius: Annotated[float, Query(description="match radius, arcsec, (0, 3600]")] = 3.0,
    k: K = 10,
    fmt: Format = "json",
) -> Response:
    """The matched object and its separation (JSON), with its ``k`` neighbours (JSON, or the table file)."""
    found = client.cone_search(ra, dec, radius_arcsec=radius, k=k, **search, **filters)
    extra = {"match": jsonable(found.match), "separation_arcsec": found.separation_arcsec}
    return table_response(found.neighbours, fmt, f"cone-{ra:g}{dec:+g}", "neighbours", Neighbour, extra)


@router.get("/cone/objects", summary="every object within a radius of ra, dec (ObjectsInCone)")
def objects_in_cone(
    client: Client,
    filters: Filters,
    ra: Annotated[float, Query(description="degrees, ICRS")],
    dec: Annotated[float, Query(description="degrees, ICRS")],
    radius: Annotated[float, Query(description="arcsec, (0, 3600]")],
    limit: Annotated[int, Query(description="at most this many, nearest first, 1..10000")] = 1000,
    fmt: Format = "json",
) -> Response:
    """The objects in the cone, nearest first, each with ``separation_arcsec``; ``n_found`` (JSON) counts
    them all."""
    found: InCone = client.objects_in_cone(ra, dec, radius, limit=limit, **filters)
    name = f"in-cone-{ra:g}{dec:+g}"
    return table_response(found.objects, fmt, name, "objects", ObjectInCone, {"n_found": found.n_found})


@router.get("/anomalies", summary="the most anomalous objects (Anomalies)")
def anomalies(
    client: Client,
    filters: Filters,
    n: Annotated[int, Query(description="number of objects, 1..1000")] = 100,
    fmt: Format = "json",
) -> Response:
    """The ``n`` objects of highest stored density score that pass the filters, most anomalous first."""
    return table_response(client.anomalies(n, **filters), fmt, "anomalies", "anomalies", GalaxyObject)


@router.get("/candidates", summary="objects ranked by the stored classifier score of a label (Candidates)")
def candidates(
    request: Request,
    client: Client,
    filters: Filters,
    label: Annotated[str, Query(description="e.g. dual_nucleus")],
    n: Annotated[int, Query(description="number of candidates, 1..1000")] = 100,
    exclude_labelled: bool = False,
    fmt: Format = "json",
) -> Response:
    """The candidates, highest score first; JSON adds the classifier run behind the scores and ``stale``
    (labels were added since). With a cross-match catalogue (``ssald web --crossmatch FILE``) each row gets
    ``known``, ``known_by``, ``reference_sep_arcsec`` and ``reference_id`` (JSON and table files). 409 when
    no classifier was trained for the label."""
    found = client.candidates(label, n=n, exclude_labelled=exclude_labelled, **filters)
    extra = {"run": jsonable(found.run), "stale": found.stale}
    reference = request.app.state.options.reference
    columns = {}
    if reference is not None:
        rows = found.candidates
        marks = reference.match([c.objid for c in rows], [c.ra for c in rows], [c.dec for c in rows])
        columns = {
            name: [m[name] for m in marks] for name in ("known", "known_by", "reference_sep_arcsec", "reference_id")
        }
        extra["reference"] = {"name": reference.name, "radius_arcsec": reference.radius_arcsec}
    name = f"candidates-{label}"
    return table_response(found.candidates, fmt, name, "candidates", Candidate, extra, columns)


@router.get("/stamp/{objid}.png", summary="an object's stamp as a Lupton RGB PNG (GetStamp)")
def stamp(client: Client, objid: int) -> Response:
    """The PNG the server draws from the object's stamp file; 404 when the object or its file is missing."""
    return Response(client.stamp_png(objid), media_type="image/png")


class LabelIn(BaseModel):
    """One label: the object, the label (``not_X`` for a "no" to "is this X?") and an optional note."""

    objid: int
    label: str
    note: str = ""


class LabelsIn(BaseModel):
    """The body of ``POST /api/labels``."""

    labels: list[LabelIn] = Field(min_length=1)
    retrain: bool = False
    classifier: str = ""
    user: str = ""


def _check_write(request: Request) -> None:
    options = request.app.state.options
    if not options.exposed:
        return
    if options.token is None:
        raise SsaldError(
            "labelling through this web app is off: it listens beyond loopback without a token", "PERMISSION_DENIED"
        )
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {options.token}".encode()):
        raise SsaldError(
            "labelling needs the header 'Authorization: Bearer TOKEN' with this app's token", "UNAUTHENTICATED"
        )


@router.post("/labels", summary="store labels, optionally retrain (SubmitLabels)")
def submit_labels(request: Request, client: Client, body: LabelsIn) -> JSONResponse:
    """Store the labels (all or nothing; 404 names unknown objids). The gRPC server decides whether this
    client may write (401/403 otherwise)."""
    _check_write(request)
    labels = [(item.objid, item.label, item.note) for item in body.labels]
    result = client.submit_labels(labels, retrain=body.retrain, classifier=body.classifier, user=body.user)
    return JSONResponse(jsonable(result))


@router.post("/samp/send", summary="send a table result to TOPCAT or Aladin through the SAMP hub")
def samp_send(
    request: Request,
    path: Annotated[str, Query(description="an /api table query, e.g. /api/anomalies?n=50")],
    name: Annotated[str | None, Query(description="the table's name in TOPCAT")] = None,
) -> JSONResponse:
    """Tell every SAMP client that loads tables to load the VOTable of ``path`` from this app. 503 when no
    hub runs, 409 when no client on it loads tables."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not parts.path.startswith("/api/") or parts.path.startswith("/api/samp"):
        raise SsaldError(f"path must be an /api table query of this app, got {path!r}", "INVALID_ARGUMENT")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "format"]
    url = f"{str(request.base_url).rstrip('/')}{parts.path}?{urlencode([*query, ('format', 'votable')])}"
    recipients = send_table(url, name or f"ssald {parts.path.removeprefix('/api/')}")
    return JSONResponse({"url": url, "recipients": recipients})
