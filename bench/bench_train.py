"""Training throughput of the VICReg loop (issue 3, item 8).

Trains ``--steps`` optimiser steps of the given configuration on stamps of a synthetic survey
and reports steps/s and stamps/s from ``metrics.jsonl`` (the first window, which includes
start-up, is dropped). Usage::

    python bench/bench_train.py --survey /tmp/eq/survey --steps 40                 # default config
    python bench/bench_train.py --survey /tmp/eq/survey --steps 40 --augment full  # every augmentation
    python bench/bench_train.py --survey /tmp/eq/survey --device cuda --batch-size 256 --steps 200
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FULL_AUGMENT = dict(
    max_angle=180.0, scale_range=(0.8, 1.25), crop_jitter=1.0, blur_sigma=(0.0, 1.0), band_noise=(0.0, 0.03),
    max_ebv=0.1, band_drop=0.1,
)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--survey", type=Path, required=True, help="synthetic survey directory")
    parser.add_argument("--n", type=int, default=1024, help="stamps to load")
    parser.add_argument("--steps", type=int, default=40, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=128, help="stamps per step")
    parser.add_argument("--augment", choices=["default", "full"], default="default", help="augmentation set")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--precision", default="auto", help="auto, bf16, fp16 or fp32")
    args = parser.parse_args(argv)

    from encoders.normalise import LuptonParams
    from encoders.stamps import read_stamp
    from encoders.training.train import TrainConfig, load_stamps, train

    paths = sorted((args.survey / "stamps").glob("*.fits"))[: args.n]
    stamps = load_stamps(paths, LuptonParams(), progress=False)
    first = read_stamp(paths[0])
    extra = FULL_AUGMENT if args.augment == "full" else {}
    config = TrainConfig(
        epochs=1000, batch_size=args.batch_size, max_steps=args.steps, bands=first.bands, stamp_size=first.shape[-1],
        num_workers=args.workers, threads=args.threads, device=args.device, precision=args.precision,
        diag_samples=0, log_every=5, **extra,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as run:
        train(stamps, run, config, progress=False)
        resolved = json.loads((Path(run) / "config.json").read_text())
        windows = [json.loads(x) for x in (Path(run) / "metrics.jsonl").read_text().splitlines()]
    windows = [w for w in windows if w["scope"] == "window"][1:]
    rates = sorted(w["stamps_per_s"] for w in windows)
    median = rates[len(rates) // 2]
    print(json.dumps({
        "device": resolved["device"], "precision": resolved["precision"], "augment": args.augment,
        "workers": args.workers, "batch_size": args.batch_size, "threads": resolved["threads"],
        "steps_per_s": round(median / args.batch_size, 3), "stamps_per_s": round(median, 1),
        "windows": len(windows),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
