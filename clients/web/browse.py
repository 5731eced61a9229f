"""The ``/api`` endpoints the pages add: the labelling queue, batch and example searches, and the map.

- ``GET /api/label/next``: the next objects to label for a label (NextToLabel).
- ``POST /api/similar/batch``: a pasted list of objids and ``RA DEC`` lines, one result per line
  (FindSimilarBatch).
- ``POST /api/similar/examples``: more like these, unlike those (FindSimilarToExamples).
- ``GET /api/map.bin``: the stored 2-D map of every object as packed arrays (MapPoints), small enough
  for a browser to draw a million points from.
- ``POST /api/objects``: the catalogue rows of a list of objids (a map selection) as JSON or a table file
  (GetObject each).

Metadata filters are the query parameters of :mod:`clients.web.api`.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from clients.client import GalaxyObject, Neighbour
from clients.errors import SsaldError
from clients.web.api import Client, Filters, Format, K
from clients.web.responses import jsonable, table_response

__all__ = ["BatchIn", "ExamplesIn", "ObjidsIn", "parse_batch", "router"]

router = APIRouter(prefix="/api")

#: Lines a pasted batch may hold (the server's own limit is 10,000 inputs).
MAX_BATCH_LINES = 10_000

#: Objids ``POST /api/objects`` answers at once.
MAX_OBJECTS = 10_000

#: GetObject calls in flight for ``POST /api/objects`` (the server's default worker count).
OBJECT_CALLS = 8

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_batch(text: str) -> list[tuple[str, int | tuple[float, float]]]:
    """The inputs of a pasted list: per non-empty line (``#`` starts a comment), an objid or ``RA DEC`` in
    degrees (separated by spaces or a comma); returns ``(line as given, objid or (ra, dec))``.

    Raises
    ------
    SsaldError
        ``INVALID_ARGUMENT`` naming the first line that is neither, or when there is no input or too many.
    """
    inputs: list[tuple[str, int | tuple[float, float]]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p for p in re.split(r"[\s,]+", line) if p]
        if len(parts) == 1 and re.fullmatch(r"\d+", parts[0]):
            inputs.append((line, int(parts[0])))
        elif len(parts) == 2 and all(re.fullmatch(_NUMBER, p) for p in parts):
            inputs.append((line, (float(parts[0]), float(parts[1]))))
        else:
            raise SsaldError(
                f"line {number} ({line!r}) is neither an objid nor 'RA DEC' in degrees", "INVALID_ARGUMENT"
            )
    if not inputs:
        raise SsaldError("the list holds no objid and no 'RA DEC' line", "INVALID_ARGUMENT")
    if len(inputs) > MAX_BATCH_LINES:
        raise SsaldError(f"the list holds {len(inputs)} inputs; at most {MAX_BATCH_LINES}", "INVALID_ARGUMENT")
    return inputs


@router.get("/label/next", summary="the next objects to label for a label (NextToLabel)")
def next_to_label(
    client: Client,
    filters: Filters,
    label: Annotated[str, Query(description="e.g. dual_nucleus")],
    n: Annotated[int, Query(description="number of objects, 1..1000")] = 10,
    strategy: Annotated[str, Query(description="e.g. uncertainty, anomaly, random; empty: the server's")] = "",
    seed_objid: Annotated[int | None, Query(description="a known example, for the first queries")] = None,
    exclude: Annotated[list[int], Query(description="objids never to propose (e.g. skipped)")] = [],  # noqa: B006
) -> JSONResponse:
    """``{items: [object + reason, probability, similarity], strategy, n_positive, n_negative}``."""
    batch = client.next_to_label(label, n, strategy, seed_objid, exclude_objids=exclude, **filters)
    return JSONResponse(jsonable(batch))


class BatchIn(BaseModel):
    """The body of ``POST /api/similar/batch``: the pasted list (:func:`parse_batch`)."""

    text: str = Field(description="one objid or 'RA DEC' (degrees) per line")
    radius: float = Field(3.0, description="arcsec around each position to find its object")
    exclude_radius: float = Field(0.0, description="arcsec around each query left out")


@router.post("/similar/batch", summary="neighbours of a pasted list of objids and positions (FindSimilarBatch)")
def similar_batch(client: Client, filters: Filters, body: BatchIn, k: K = 10) -> JSONResponse:
    """One result per input line, in order: ``{results: [{index, input, objid, match, separation_arcsec,
    neighbours, error}]}``; a line that failed (unknown objid, nothing within the radius) carries its
    ``error`` and ``code`` and the others are still answered."""
    inputs = parse_batch(body.text)
    objids = [(i, q) for i, (_, q) in enumerate(inputs) if isinstance(q, int)]
    positions = [(i, q) for i, (_, q) in enumerate(inputs) if not isinstance(q, int)]
    order = [i for i, _ in objids] + [i for i, _ in positions]  # the server answers objids first
    found = client.find_similar_batch(
        [q for _, q in objids],
        [q for _, q in positions],
        k=k,
        radius_arcsec=body.radius,
        exclude_radius_arcsec=body.exclude_radius,
        timeout=max(client.timeout, 0.05 * len(inputs)),
        **filters,
    )
    results: list[dict[str, Any] | None] = [None] * len(inputs)
    for result in found:
        line = order[result.index]
        results[line] = {
            "index": line,
            "input": inputs[line][0],
            "objid": None if result.objid is None else str(result.objid),
            "match": jsonable(result.match),
            "separation_arcsec": result.separation_arcsec,
            "neighbours": [_row(n) for n in result.neighbours],
            "error": None if result.error is None else str(result.error),
            "code": None if result.error is None else result.error.code,
        }
    return JSONResponse({"results": results})


def _row(neighbour: Neighbour) -> dict[str, Any]:
    row = jsonable(neighbour)
    row.pop("embedding", None)
    return row


class ExamplesIn(BaseModel):
    """The body of ``POST /api/similar/examples``."""

    positives: list[int] = Field(min_length=1, description="objids to find more of")
    negatives: list[int] = Field([], description="objids to steer away from")
    negative_weight: float | None = Field(None, description="[0, 10]; empty: the server's default")
    exclude: list[int] = Field([], description="objids never returned (e.g. already shown)")
    exclude_radius: float = Field(0.0, description="arcsec around each example left out")


@router.post("/similar/examples", summary="more like these, unlike those (FindSimilarToExamples)")
def similar_to_examples(
    client: Client, filters: Filters, body: ExamplesIn, k: K = 10, fmt: Format = "json"
) -> Response:
    """The ``k`` objects nearest to the positives' mean pushed away from the negatives', nearest first."""
    found = client.find_similar_to_examples(
        body.positives,
        body.negatives,
        k=k,
        negative_weight=body.negative_weight,
        exclude_objids=body.exclude,
        exclude_radius_arcsec=body.exclude_radius,
        **filters,
    )
    return table_response(found, fmt, "similar-examples", "neighbours", Neighbour)


@router.get("/map.bin", summary="the stored 2-D map of every object, packed for drawing (MapPoints)")
def map_bin(
    client: Client,
    color_by: Annotated[
        str, Query(description="cluster, density_score, spec_class, bpt_class, truth_class, label, score")
    ] = "cluster",
    label: Annotated[str, Query(description="for color_by=label or score")] = "",
) -> Response:
    """The body is four little-endian arrays of ``n`` values back to back: objid (int64), x, y and value
    (float32; NaN: none), so ``new BigInt64Array(body, 0, n)`` and ``new Float32Array(body, 8 * n, 3 * n)``
    read it. Headers: ``X-Map-Count`` (n) and ``X-Map-Categories`` (a JSON list naming the codes of a
    categorical colour, else ``[]``)."""
    points = client.map_points(color_by, label, timeout=max(client.timeout, 60.0))
    body = b"".join(
        [
            points.objids.astype("<i8").tobytes(),
            np.concatenate([points.x, points.y, points.values]).astype("<f4").tobytes(),
        ]
    )
    headers = {"X-Map-Count": str(len(points)), "X-Map-Categories": json.dumps(points.categories)}
    return Response(body, media_type="application/octet-stream", headers=headers)


class ObjidsIn(BaseModel):
    """The body of ``POST /api/objects``."""

    objids: list[int] = Field(
        min_length=1, max_length=MAX_OBJECTS, description=f"the objects, e.g. a map selection; at most {MAX_OBJECTS}"
    )


@router.post("/objects", summary="the catalogue rows of a list of objids, e.g. a map selection (GetObject each)")
def objects(client: Client, body: ObjidsIn, fmt: Format = "json") -> Response:
    """The rows in the order given (a repeated objid once), as ``{objects: [...]}`` or a table file named
    ``selection``. 404 names the first objid that is not in the table; nothing is answered then."""
    wanted = list(dict.fromkeys(body.objids))
    with ThreadPoolExecutor(min(OBJECT_CALLS, len(wanted))) as pool:
        found = list(pool.map(client.get_object, wanted))
    return table_response(found, fmt, "selection", "objects", GalaxyObject)
