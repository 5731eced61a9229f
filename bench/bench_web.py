"""The pages of ``ssald web`` in headless Chromium, and HTTP against gRPC for the neighbours query.

Builds (or reuses) a table of ``--n`` objects with random unit embeddings and a random stored map (as
``ssald_index.maps`` would store it); every object's ``source`` is one of 48 synthetic-survey stamp files, so
the gallery draws real Lupton PNGs. Runs ``ssald serve`` on it (a child process) and the web app in this
process, then measures, in the same run:

- the results gallery with 48 stamps: from navigation until every ``<img>`` of the 48 neighbours (and the
  query) has loaded, and the browser's ``first-contentful-paint``;
- the map of every object: from navigation until the canvas is drawn (``window.ssaldMapDrawn`` set), and
  ``first-contentful-paint``;
- the neighbours query (k=10) p50/p99 over HTTP (``GET /api/similar``, JSON, one keep-alive connection) and
  over gRPC (``SsaldClient.find_similar``), the same objids, one after the other.

    python bench/bench_web.py --n 100000 --workdir /tmp/benchweb

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build(work: Path, n: int, dim: int) -> Path:
    """The table (built once per ``work``/``n``): random embeddings, a random map, 48 real stamp files."""
    import pyarrow as pa

    from ingest.synthetic import simulate
    from ssald_index.ann import build_indexes
    from ssald_index.schema import objects_schema
    from ssald_index.store import ObjectStore

    db = work / f"db-{n}"
    if db.exists():
        return db
    if not (work / "survey" / "stamps").exists():
        simulate(work / "survey", n=48, seed=3, progress=False)
    stamps = sorted((work / "survey" / "stamps").glob("*.fits"))
    rng = np.random.default_rng(0)
    for lo in range(0, n, 200_000):
        m = min(200_000, n - lo)
        vec = rng.normal(size=(m, dim)).astype(np.float32)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        centre = rng.integers(0, 20, size=m)
        table = pa.table(
            {
                "objid": np.arange(lo, lo + m, dtype=np.int64) + 1237648720693755918,
                "ra": rng.uniform(0, 360, m),
                "dec": rng.uniform(-10, 70, m),
                "survey": ["SYNTH"] * m,
                "bands": ["u,g,r,i,z"] * m,
                "source": [str(stamps[i % len(stamps)]) for i in range(lo, lo + m)],
                "model_id": ["bench"] * m,
                "embedding": list(vec),
                "cluster": centre.astype(np.int32),
                "map_x": (np.cos(centre) * 10 + rng.normal(size=m)).astype(np.float32),
                "map_y": (np.sin(centre) * 10 + rng.normal(size=m)).astype(np.float32),
                "density_score": rng.uniform(size=m).astype(np.float32),
            }
        )
        schema = objects_schema(dim)
        given = set(table.column_names)
        columns = {f.name: table.column(f.name) if f.name in given else pa.nulls(m, f.type) for f in schema}
        table = pa.Table.from_pydict(columns, schema=schema)
        ObjectStore.write(db, table)
    # The indexes `ssald index` builds (IVF_RQ from ANN_MIN_ROWS rows, scalar ones): the server then scans
    # the IVF partitions in memory, as it serves any table of this size.
    build_indexes(ObjectStore.open(db).table, progress=True)
    return db


def _pct(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/benchweb"))
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="page loads of each page (the median is reported)")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)

    import httpx
    from playwright.sync_api import sync_playwright

    from clients.client import SsaldClient
    from clients.web import WebServer, create_app

    t0 = time.perf_counter()
    db = build(args.workdir, args.n, args.dim)
    results: dict = {"n_objects": args.n, "dim": args.dim, "build_s": round(time.perf_counter() - t0, 1)}
    command = [sys.executable, "-m", "clients.cli", "serve", "--db", str(db), "--port", "0", "--refresh", "0"]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = proc.stdout.readline().split()[-1]
        with SsaldClient(address, timeout=120) as client:
            web = WebServer(create_app(client))
            url = web.start()
            objids = [1237648720693755918 + int(i) for i in np.random.default_rng(1).integers(0, args.n, args.queries)]
            client.find_similar(objids[0], 10)  # warm: the server's cache
            grpc_ms, http_ms = [], []
            with httpx.Client(base_url=url, timeout=60) as http:
                http.get("/api/similar", params={"objid": objids[0], "k": 10})
                for objid in objids:
                    t = time.perf_counter()
                    client.find_similar(objid, 10)
                    grpc_ms.append(1000 * (time.perf_counter() - t))
                    t = time.perf_counter()
                    answer = http.get("/api/similar", params={"objid": objid, "k": 10})
                    http_ms.append(1000 * (time.perf_counter() - t))
                    assert answer.status_code == 200, answer.text
            results["neighbours_k10"] = {"grpc": _pct(grpc_ms), "http_json": _pct(http_ms), "queries": len(objids)}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
                fcp = "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
                gallery, galfcp, drawn, mapfcp, mapms = [], [], [], [], []
                for r in range(args.repeats):
                    page = browser.new_page(viewport={"width": 1440, "height": 900})
                    t = time.perf_counter()
                    page.goto(f"{url}/ui/#/search?objid={objids[r]}&k=48")
                    page.wait_for_function(
                        "() => { const i = [...document.querySelectorAll('#results .gallery img')];"
                        " return i.length === 49 && i.every(x => x.complete && x.naturalWidth > 0); }",
                        timeout=120_000,
                    )
                    gallery.append(1000 * (time.perf_counter() - t))
                    galfcp.append(page.evaluate(fcp))
                    page.close()
                    page = browser.new_page(viewport={"width": 1440, "height": 900})
                    t = time.perf_counter()
                    page.goto(f"{url}/ui/#/map")
                    page.wait_for_function("() => window.ssaldMapDrawn !== undefined", timeout=300_000)
                    drawn.append(1000 * (time.perf_counter() - t))
                    mapfcp.append(page.evaluate(fcp))
                    # One redraw (a pan or zoom step) of every point, in the page.
                    mapms.append(page.evaluate(
                        "() => { const c = document.querySelector('canvas#map'); const t = performance.now();"
                        " c.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: 400, clientY: 400}));"
                        " return new Promise(r => requestAnimationFrame(() => r(performance.now() - t))); }"
                    ))  # fmt: skip
                    page.close()
                browser.close()
            med = lambda xs: round(float(np.median([x for x in xs if x is not None])), 1)  # noqa: E731
            results["gallery_48_stamps"] = {
                "all_stamps_loaded_ms": med(gallery),
                "first_contentful_paint_ms": med(galfcp),
            }
            results["map_all_objects"] = {
                "drawn_ms": med(drawn), "first_contentful_paint_ms": med(mapfcp), "redraw_after_zoom_ms": med(mapms)
            }  # fmt: skip
            web.stop()
    finally:
        proc.kill()
        proc.wait(10)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
