"""FindSimilarBatch against one FindSimilar call per input, through a real in-process server.

Serves ``--db`` on 127.0.0.1, asks for the neighbours of ``--n`` random objects both ways (each way twice,
alternating, the first pass of each discarded as warm-up) and prints the wall time per input. Usage (the
figures in docs/BENCHMARKS.md)::

    python bench/batch_query.py --db /tmp/rd/gz1/db --n 1000 --k 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clients import SsaldClient  # noqa: E402
from server.app import create_server  # noqa: E402
from ssald_index.store import ObjectStore  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--n", type=int, default=1000, help="inputs per batch")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    objids = np.random.default_rng(args.seed).choice(ObjectStore.open(args.db).objids(), args.n, replace=False)
    objids = [int(o) for o in objids]
    server, port = create_server(args.db, "127.0.0.1:0")
    server.start()
    try:
        with SsaldClient(f"127.0.0.1:{port}", timeout=600) as client:
            times: dict[str, list[float]] = {"unary": [], "batch": []}
            for _ in range(2):
                start = time.perf_counter()
                single = [[n.objid for n in client.find_similar(o, k=args.k)] for o in objids]
                times["unary"].append(time.perf_counter() - start)
                start = time.perf_counter()
                batch = [[n.objid for n in r.neighbours] for r in client.find_similar_batch(objids, k=args.k)]
                times["batch"].append(time.perf_counter() - start)
            assert batch == single, "the batch answered differently from FindSimilar"
    finally:
        server.stop(None)
    for name, seconds in times.items():
        print(f"{name:5s}: {seconds[-1]:.2f} s for {args.n} inputs, {1000 * seconds[-1] / args.n:.2f} ms an input")
    return 0


if __name__ == "__main__":
    sys.exit(main())
