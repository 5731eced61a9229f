"""Inference throughput: ONNX Runtime (fp32, fp16) vs torch, at batch 256 (issue 3, item 8).

Exports the backbone of ``--run`` (or of a freshly initialised default encoder when none is
given) and times ``--repeats`` batches of ``--batch`` stamps with each engine, reporting the
median stamps/s. The CUDA execution provider is timed too when present. Usage::

    python bench/bench_inference.py --threads 2
    python bench/bench_inference.py --run /tmp/eq/run --batch 256 --repeats 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _median_rate(fn, batch: int, repeats: int) -> float:
    fn()  # warm-up (graph optimisation, allocator)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return batch / float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=None, help="training run (default: untrained default encoder)")
    parser.add_argument("--batch", type=int, default=256, help="stamps per call")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per engine")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of torch and ORT (CPU)")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import torch
    import torch.nn.functional as F

    from encoders.embedder import OnnxEmbedder
    from encoders.training.onnx_export import export_onnx
    from encoders.training.train import TrainConfig, load_backbone, train

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "run"
            config = TrainConfig(max_steps=1, batch_size=2, diag_samples=0, precision="fp32")
            train(np.random.default_rng(0).random((2, 5, 64, 64), dtype=np.float32), run, config, progress=False)
        backbone, config = load_backbone(run)
        x = np.random.default_rng(1).random((args.batch, len(config.bands), config.stamp_size, config.stamp_size))
        x = x.astype(np.float32)
        results = {"batch": args.batch, "threads": args.threads, "bands": len(config.bands), "size": config.stamp_size}
        xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        backbone = backbone.to(memory_format=torch.channels_last)

        def torch_run() -> None:
            with torch.inference_mode():
                F.normalize(backbone(xt), dim=1)

        results["torch_fp32_cpu"] = round(_median_rate(torch_run, args.batch, args.repeats), 1)
        cpu = ["CPUExecutionProvider"]
        for precision in ("fp32", "fp16"):
            path = export_onnx(run, Path(tmp) / f"{precision}.onnx", precision=precision)
            emb = OnnxEmbedder(path, providers=cpu, intra_op_threads=args.threads)
            results[f"ort_{precision}_cpu"] = round(_median_rate(lambda e=emb: e.embed(x), args.batch, args.repeats), 1)
            if "CUDAExecutionProvider" in ort.get_available_providers():
                gpu = OnnxEmbedder(path, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
                rate = _median_rate(lambda e=gpu: e.embed(x), args.batch, args.repeats)
                results[f"ort_{precision}_cuda"] = round(rate, 1)
        if torch.cuda.is_available():
            gb, gx = backbone.cuda().eval(), xt.cuda()

            def torch_gpu() -> None:
                with torch.inference_mode():
                    F.normalize(gb(gx), dim=1)
                torch.cuda.synchronize()

            results["torch_fp32_cuda"] = round(_median_rate(torch_gpu, args.batch, args.repeats), 1)
    results["ort_over_torch_cpu"] = round(results["ort_fp32_cpu"] / results["torch_fp32_cpu"], 2)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
