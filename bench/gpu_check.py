"""GPU check (issue 17): inference ceiling, end-to-end ingest, VICReg training and the CPU fallback, in one run.

On a machine with one NVIDIA GPU, with the repo on ``PYTHONPATH`` and ``onnxruntime-gpu`` installed::

    PYTHONUNBUFFERED=1 python bench/gpu_check.py --out /tmp/gpu_check_out --reference bench/gpu_reference.npz

On the CPU, end to end with tiny sizes (2-3 minutes on 2 cores)::

    python bench/gpu_check.py --quick --out /tmp/gpu_check_quick --reference bench/gpu_reference.npz

Reference embeddings for stage ``agree`` are made with the CPU build of ONNX Runtime::

    python bench/gpu_check.py --make-reference bench/gpu_reference.npz

Stages, each in its own process with a hard time limit (``--budget STAGE=SECONDS``), results written to
``$OUT/gpu_check.json`` (else ``--out``) after every stage so that a timeout still leaves the figures so far:

``env``          versions, providers, GPU, cores, free disk and /dev/shm.
``model``        the default encoder (ResNet, 5 bands, 64x64, D = 256) with seeded weights, exported fp32 and fp16
                 by ``encoders.training.onnx_export.export_onnx`` (``--model`` uses a given fp32 model instead).
``ceiling``      inference alone: ``encoders.providers.sweep_batch_size`` over ``--batches`` for fp32 and fp16 on
                 the CUDA provider with IO binding (and without, at the best batch), the CPU provider on a small
                 sample, TensorRT with ``--tensorrt``.
``ingest_npy``   ``ssald ingest`` (the product's command, ``SSALD_PROVIDERS=cuda``) of ``--n`` stamps from one
``ingest_fits``  NPY array and from one FITS file per object, morphology OFF (``--no-morphology``); rate and
                 ratio to the ceiling at the same batch; GPU utilisation sampled by nvidia-smi.
``ingest_morph`` the same from FITS with morphology ON, ``--n-morph`` stamps.
``train``        VICReg training stamps/s, bf16 autocast on CUDA, ``--train-steps`` steps
                 (encoders.training.train.train).
``agree``        256 stamps embedded by this build's CPU and CUDA providers (max |diff|, min cosine), and the
                 first 128 against ``--reference`` (made by the CPU build of ONNX Runtime on another machine).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from gpu_check_data import (  # noqa: E402
    build_default_model,
    make_stamps,
    sdss_objids,
    write_catalogue,
    write_fits_stamps,
    write_npy,
)

# In order of what matters most if time runs out.
STAGES = ("env", "model", "ceiling", "agree", "ingest_npy", "ingest_fits", "train", "ingest_morph")
BUDGET = {"env": 30, "model": 90, "ceiling": 90, "ingest_npy": 150, "ingest_fits": 170, "ingest_morph": 60,
          "train": 75, "agree": 45}  # fmt: skip
QUICK = dict(n=2000, n_morph=200, batches="32,64,128", train_steps=12, train_batch=32, pool=256, cpu_sample=128)
FULL = dict(n=200_000, n_morph=20_000, batches="256,512,1024,2048,4096,8192", train_steps=300, train_batch=256,
            pool=4096, cpu_sample=512)  # fmt: skip
AGREE_SEED, AGREE_N, REFERENCE_N = 17, 256, 128


def _log(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _nvidia_lib_dirs() -> list[str]:
    spec = importlib.util.find_spec("nvidia")
    roots = list(spec.submodule_search_locations) if spec and spec.submodule_search_locations else []
    return sorted({os.fspath(p.parent) for r in roots for p in Path(r).glob("*/lib/lib*.so*")})


# ---------------------------------------------------------------------------------------------- stages


def stage_env(args: argparse.Namespace) -> dict:
    import onnxruntime as ort

    out = {"python": sys.version.split()[0], "numpy": np.__version__, "onnxruntime": ort.__version__,
           "ort_providers": ort.get_available_providers(), "cores": os.cpu_count(),
           "disk_free_gib": round(shutil.disk_usage(args.workdir).free / 2**30, 1),
           "nvidia_lib_dirs": _nvidia_lib_dirs(), "load_1min": os.getloadavg()[0]}  # fmt: skip
    if os.path.isdir("/dev/shm"):
        out["dev_shm_free_gib"] = round(shutil.disk_usage("/dev/shm").free / 2**30, 1)
    for name in ("torch", "lancedb", "lance", "astropy", "photutils", "pyarrow"):
        spec = importlib.util.find_spec(name)
        out[f"has_{name}"] = spec is not None
    smi = shutil.which("nvidia-smi")
    if smi:
        q = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)  # fmt: skip
        out["gpu"] = q.stdout.strip() or q.stderr.strip()
    return out


def stage_model(args: argparse.Namespace) -> dict:
    if args.model:
        return {"fp32": os.fspath(args.model), "given": True}
    t = time.perf_counter()
    paths = build_default_model(args.workdir / "model", seed=0)
    return {**{p: os.fspath(v) for p, v in paths.items()}, "seconds": round(time.perf_counter() - t, 1)}


def _models(args: argparse.Namespace) -> dict:
    return json.loads((args.workdir / "model.json").read_text())


def stage_ceiling(args: argparse.Namespace) -> dict:
    from encoders.embedder import OnnxEmbedder
    from encoders.providers import ProviderUnavailable, sweep_batch_size

    models = {p: m for p, m in _models(args).items() if p in ("fp32", "fp16")}
    batches = [int(b) for b in args.batches.split(",")]
    out: dict = {"provider": args.provider, "batches": batches}
    for precision, path in models.items():
        emb = OnnxEmbedder(path, providers=args.provider)
        out["providers_used"] = emb.providers
        sweep = sweep_batch_size(emb, batches, seconds_per_size=args.seconds_per_size, max_seconds=30)
        best = sweep.best
        out[precision] = {"rates": {str(k): round(v) for k, v in sweep.rates.items()}, "best_batch": best,
                          "best_rate": round(sweep.rates[best]), "stopped": sweep.stopped,
                          "io_binding": emb.io_binding}  # fmt: skip
        _log(f"ceiling {precision} on {emb.providers[0]}: {out[precision]['rates']} -> best batch {best}")
        if emb.device == "cuda":
            plain = OnnxEmbedder(path, providers=args.provider, io_binding=False)
            x = np.random.default_rng(1).random((best, 5, 64, 64), dtype=np.float32)
            out[precision]["no_io_binding_rate_at_best"] = round(_rate(plain, x, best, args.seconds_per_size))
    sample = np.random.default_rng(2).random((args.cpu_sample, 5, 64, 64), dtype=np.float32)
    cpu = OnnxEmbedder(models["fp32"], providers="cpu")
    out["cpu_ep_fp32_rate"] = round(_rate(cpu, sample, 256, args.seconds_per_size))
    if args.tensorrt:
        try:
            trt = OnnxEmbedder(models.get("fp16", models["fp32"]), providers="tensorrt")
            b = out.get("fp16", out["fp32"])["best_batch"]
            x = np.random.default_rng(1).random((b, 5, 64, 64), dtype=np.float32)
            out["tensorrt_rate"] = round(_rate(trt, x, b, args.seconds_per_size))
        except ProviderUnavailable as exc:
            out["tensorrt"] = f"not present: {str(exc)[:300]}"
    return out


def _rate(emb, x: np.ndarray, batch: int, seconds: float) -> float:
    emb.embed(x, batch_size=batch, check_range=False)
    calls, t0 = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - t0 < seconds:
        emb.embed(x, batch_size=batch, check_range=False)
        calls += 1
    return calls * len(x) / (time.perf_counter() - t0)


def _ingest_choice(args: argparse.Namespace) -> tuple[str, str, int, float]:
    """(precision, model path, batch, ceiling rate at that batch): the faster model at its best batch."""
    models = _models(args)
    path = args.workdir / "ceiling.json"
    if not path.is_file():  # the ceiling stage failed: ingest anyway, at the embedder's default batch
        return "fp32", models["fp32"], args.ingest_batch or 1024, float("nan")
    ceiling = json.loads(path.read_text())
    options = [(ceiling[p]["best_rate"], p) for p in ("fp32", "fp16") if p in ceiling]
    rate, precision = max(options)
    batch = args.ingest_batch or ceiling[precision]["best_batch"]
    rate = ceiling[precision]["rates"].get(str(batch), rate)
    return precision, models[precision], batch, float(rate)


class _GpuSampler:
    """nvidia-smi utilisation and memory every 0.5 s while a job runs (nothing when there is no nvidia-smi)."""

    def __init__(self) -> None:
        smi = shutil.which("nvidia-smi")
        query = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms", "500"]
        self.proc = subprocess.Popen([smi, *query], stdout=subprocess.PIPE, text=True) if smi else None

    def stop(self) -> dict:
        if self.proc is None:
            return {}
        self.proc.terminate()
        text = self.proc.communicate(timeout=10)[0]
        rows = [[float(v) for v in line.split(",")] for line in text.splitlines() if re.match(r"^\s*\d", line)]
        if not rows:
            return {}
        util = np.array([r[0] for r in rows])
        busy = util[util > 0]
        return {"gpu_util_mean": round(float(busy.mean()) if len(busy) else 0.0, 1), "gpu_util_max": float(util.max()),
                "gpu_mem_max_mib": max(r[1] for r in rows), "samples": len(rows)}  # fmt: skip


def _run_ingest(args: argparse.Namespace, name: str, data: Path, n: int, morphology: bool) -> dict:
    from bench_ingest import run_sampled

    precision, model, batch, ceiling = _ingest_choice(args)
    db = args.workdir / f"db_{name}"
    shutil.rmtree(db, ignore_errors=True)
    cmd = [sys.executable, "-m", "clients.cli", "ingest", "--data", os.fspath(data), "--model", model,
           "--db", os.fspath(db), "--catalogue", os.fspath(args.workdir / "catalogue.parquet"),
           "--batch-size", str(batch), "--no-progress"]  # fmt: skip
    cmd += [] if morphology else ["--no-morphology"]
    _log(f"{name}: {' '.join(cmd[2:])} (SSALD_PROVIDERS={args.provider})")
    os.environ["SSALD_PROVIDERS"] = args.provider
    sampler = _GpuSampler()
    start = time.perf_counter()
    run, cpu_s, rss_mib, rss_sum_mib = run_sampled(cmd)
    wall = time.perf_counter() - start
    gpu = sampler.stop()
    if run.returncode != 0:
        raise RuntimeError(f"ingest failed ({run.returncode}): {run.stdout[-2000:]} {run.stderr[-4000:]}")
    summary = run.stdout.strip().splitlines()[0]
    ingested = int(re.search(r"ingested (\d+)", summary).group(1))
    stages = re.search(r"read-to-commit ([\d.]+) s, indexes and scores ([\d.]+) s", summary)
    pipeline_s, finalize_s = float(stages.group(1)), float(stages.group(2))
    out = {"n": n, "ingested": ingested, "morphology": morphology, "precision": precision, "batch": batch,
           "ceiling_at_batch": round(ceiling), "wall_s": round(wall, 1), "rate_whole_job": round(ingested / wall),
           "ratio_whole_job": round(ingested / wall / ceiling, 3),
           "read_to_commit_s": pipeline_s, "rate_read_to_commit": round(ingested / pipeline_s),
           "ratio_read_to_commit": round(ingested / pipeline_s / ceiling, 3), "finalize_s": finalize_s,
           "cpu_ms_per_stamp": round(1000 * cpu_s / max(ingested, 1), 3), "peak_rss_mib": round(rss_mib),
           "peak_rss_sum_mib": round(rss_sum_mib), "summary": summary, **gpu}  # fmt: skip
    if ingested != n:
        out["warning"] = f"ingested {ingested} of {n}"
    shutil.rmtree(db, ignore_errors=True)
    return out


def _input_pool(args: argparse.Namespace) -> np.ndarray:
    return make_stamps(args.pool, seed=3)


def _fitting_n(args: argparse.Namespace, n: int) -> int:
    """``n``, or fewer stamps where the disk cannot hold ``n`` (5x64x64 float32: 82 kB a stamp, 85 kB as FITS)."""
    free = shutil.disk_usage(args.workdir).free - 4 * 2**30
    fit = int(free / 86_016)
    if fit < n:
        _log(f"only {free / 2**30:.1f} GiB free under {args.workdir}: {fit} stamps instead of {n}")
    return max(min(n, fit), 1000)


def stage_ingest_npy(args: argparse.Namespace) -> dict:
    t = time.perf_counter()
    args.n = _fitting_n(args, args.n)
    objids = sdss_objids(args.n)
    write_catalogue(objids, args.workdir / "catalogue.parquet")
    data = write_npy(_input_pool(args), objids, args.workdir / "npy")
    made = time.perf_counter() - t
    try:
        return {"input_seconds": round(made, 1), **_run_ingest(args, "npy", data, args.n, morphology=False)}
    finally:
        shutil.rmtree(args.workdir / "npy", ignore_errors=True)


def _fits_input(args: argparse.Namespace, n: int, name: str) -> tuple[Path, float]:
    t = time.perf_counter()
    objids = sdss_objids(n)
    write_catalogue(objids, args.workdir / "catalogue.parquet")
    data = write_fits_stamps(_input_pool(args), objids, args.workdir / name)
    return data, time.perf_counter() - t


def _ingest_fits_files(args: argparse.Namespace, n: int, folder: str, name: str, morphology: bool) -> dict:
    data, made = _fits_input(args, n, folder)
    try:
        return {"input_seconds": round(made, 1), **_run_ingest(args, name, data, n, morphology=morphology)}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def stage_ingest_fits(args: argparse.Namespace) -> dict:
    args.n = _fitting_n(args, args.n)
    return _ingest_fits_files(args, args.n, "fits", "fits", morphology=False)


def stage_ingest_morph(args: argparse.Namespace) -> dict:
    if importlib.util.find_spec("photutils") is None:
        return {"skipped": "photutils is not installed (morphology needs it; pip install photutils)"}
    return _ingest_fits_files(args, args.n_morph, "fits_morph", "morph", morphology=True)


def stage_train(args: argparse.Namespace) -> dict:
    import torch

    from encoders.normalise import LuptonParams, lupton_asinh
    from encoders.training.config import TrainConfig
    from encoders.training.train import train

    cuda = torch.cuda.is_available()
    stamps = lupton_asinh(make_stamps(max(4 * args.train_batch, 1024), seed=5), LuptonParams()).astype(np.float32)
    config = TrainConfig(epochs=1000, batch_size=args.train_batch, max_steps=args.train_steps, diag_samples=0,
                         log_every=10 if not args.quick else 4, device="cuda" if cuda else "cpu",
                         precision="bf16" if cuda else "auto")  # fmt: skip
    run = args.workdir / "train_run"
    shutil.rmtree(run, ignore_errors=True)
    t = time.perf_counter()
    train(stamps, run, config, progress=False)
    wall = time.perf_counter() - t
    resolved = json.loads((run / "config.json").read_text())
    windows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    windows = [w for w in windows if w.get("scope") == "window"][1:]  # the first holds start-up and cuDNN tuning
    rates = sorted(w["stamps_per_s"] for w in windows)
    return {"device": resolved["device"], "precision": resolved["precision"], "batch": args.train_batch,
            "steps": args.train_steps, "wall_s": round(wall, 1), "windows": len(windows),
            "stamps_per_s_median": round(rates[len(rates) // 2], 1) if rates else None,
            "gpu": torch.cuda.get_device_name() if cuda else None}  # fmt: skip


def _agree_embeddings(model: str, providers: str) -> np.ndarray:
    from encoders.embedder import OnnxEmbedder

    emb = OnnxEmbedder(model, providers=providers)
    return emb.embed_raw(make_stamps(AGREE_N, seed=AGREE_SEED), batch_size=64)


def _compare(a: np.ndarray, b: np.ndarray) -> dict:
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"max_abs_diff": float(np.abs(a - b).max()), "min_cosine": float(cos.min())}


def stage_agree(args: argparse.Namespace) -> dict:
    model = _models(args)["fp32"]
    cpu = _agree_embeddings(model, "cpu")
    out: dict = {"n": AGREE_N}
    if args.provider != "cpu":
        gpu = _agree_embeddings(model, args.provider)
        out["cpu_vs_cuda"] = _compare(cpu, gpu)
        out["cpu_vs_cuda"]["ok"] = out["cpu_vs_cuda"]["min_cosine"] > 0.999
    if args.reference and Path(args.reference).is_file():
        ref = np.load(args.reference)["embeddings"]
        out["cpu_vs_reference"] = _compare(cpu[:REFERENCE_N], ref)
        out["cpu_vs_reference"]["ok"] = out["cpu_vs_reference"]["max_abs_diff"] < 1e-4
        if args.provider != "cpu":
            out["cuda_vs_reference"] = _compare(gpu[:REFERENCE_N], ref)
    else:
        out["reference"] = f"no reference file {args.reference}"
    return out


# ---------------------------------------------------------------------------------------------- driver


def _run_stage(args: argparse.Namespace, name: str, budget: float) -> dict:
    """Run one stage in a child process (own session, so a timeout kills its whole tree)."""
    cmd = [sys.executable, "-u", os.fspath(Path(__file__).resolve()), "--stage", name, *args.passthrough]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*_nvidia_lib_dirs(), env.get("LD_LIBRARY_PATH", "")]).strip(os.pathsep)
    result = args.workdir / f"{name}.json"
    result.unlink(missing_ok=True)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        code = proc.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return {"status": "timeout", "budget_s": budget, "seconds": round(time.perf_counter() - t, 1)}
    seconds = round(time.perf_counter() - t, 1)
    if code != 0 or not result.is_file():
        return {"status": f"failed (exit {code})", "seconds": seconds}
    return {"status": "ok", "seconds": seconds, **json.loads(result.read_text())}


def _summary(results: dict) -> list[str]:
    lines = []
    c = results.get("ceiling", {})
    for p in ("fp32", "fp16"):
        if p in c:
            lines.append(
                f"ceiling {p}: {c[p]['rates']} stamps/s by batch; best {c[p]['best_batch']} ({c[p]['best_rate']}/s); "
                f"without IO binding {c[p].get('no_io_binding_rate_at_best')}"
            )
    if "cpu_ep_fp32_rate" in c:
        lines.append(f"CPU provider fp32: {c['cpu_ep_fp32_rate']} stamps/s")
    for name in ("ingest_npy", "ingest_fits", "ingest_morph"):
        r = results.get(name, {})
        if r.get("status") == "ok":
            lines.append(
                f"{name}: {r['ingested']} stamps, morphology {'ON' if r['morphology'] else 'OFF'}, {r['precision']} "
                f"batch {r['batch']}: whole job {r['rate_whole_job']}/s ({r['ratio_whole_job']:.0%} of "
                f"{r['ceiling_at_batch']}), read-to-commit {r['rate_read_to_commit']}/s "
                f"({r['ratio_read_to_commit']:.0%}), GPU util {r.get('gpu_util_mean')}%"
            )
        elif r:
            lines.append(f"{name}: {r.get('status')}")
    t = results.get("train", {})
    if t.get("status") == "ok":
        rate = t["stamps_per_s_median"]
        lines.append(f"train: {rate} stamps/s ({t['device']}, {t['precision']}, batch {t['batch']})")
    a = results.get("agree", {})
    for key in ("cpu_vs_cuda", "cpu_vs_reference", "cuda_vs_reference"):
        if key in a:
            lines.append(f"agree {key}: max|diff| {a[key]['max_abs_diff']:.2e}, min cos {a[key]['min_cosine']:.6f}")
    return lines


def orchestrate(args: argparse.Namespace) -> int:
    out_dir = Path(os.environ.get("OUT") or args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    budgets = {k: v * (0.6 if args.quick else 1.0) for k, v in BUDGET.items()}
    budgets.update({k: float(v) for k, v in (b.split("=") for b in args.budget)})
    results: dict = {"args": {k: os.fspath(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    deadline = time.perf_counter() + args.total_seconds
    stages = [s for s in STAGES if s not in args.skip]
    for name in stages:
        left = deadline - time.perf_counter()
        budget = min(budgets[name], left)
        if budget < 0.2 * budgets[name]:
            results[name] = {"status": f"skipped: {left:.0f} s left of --total-seconds"}
        else:
            _log(f"stage {name} (limit {budget:.0f} s)")
            results[name] = _run_stage(args, name, budget)
            _log(f"stage {name}: {results[name]['status']} in {results[name].get('seconds')} s")
        if name == "model" and results[name]["status"] == "ok":
            (args.workdir / "model.json").write_text(json.dumps({k: v for k, v in results[name].items()}))
        if name == "ceiling" and results[name]["status"] == "ok":
            (args.workdir / "ceiling.json").write_text(json.dumps(results[name]))
        results["summary"] = _summary(results)
        (out_dir / "gpu_check.json").write_text(json.dumps(results, indent=1))
    print("\n=== gpu_check summary ===\n" + "\n".join(results["summary"]))
    print(f"(full results: {out_dir}/gpu_check.json)")
    bad = [s for s in stages if results[s]["status"] != "ok"]
    if bad:
        print("stages not ok: " + ", ".join(f"{s} ({results[s]['status']})" for s in bad))
    return 1 if bad else 0


def make_reference(args: argparse.Namespace) -> int:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        print("warning: --make-reference is meant for the CPU build of ONNX Runtime (onnxruntime, not -gpu)")
    paths = build_default_model(args.workdir / "model", seed=0, precisions=("fp32",))
    emb = _agree_embeddings(os.fspath(paths["fp32"]), "cpu")[:REFERENCE_N]
    np.savez_compressed(args.make_reference, embeddings=emb.astype(np.float32), onnxruntime=ort.__version__,
                        seed=AGREE_SEED)  # fmt: skip
    print(f"wrote {args.make_reference}: {emb.shape} embeddings (onnxruntime {ort.__version__})")
    return 0


STAGE_FUNCS = {"env": stage_env, "model": stage_model, "ceiling": stage_ceiling, "ingest_npy": stage_ingest_npy,
               "ingest_fits": stage_ingest_fits, "ingest_morph": stage_ingest_morph, "train": stage_train,
               "agree": stage_agree}  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes on the CPU provider (checks the script)")
    p.add_argument("--out", type=Path, default=Path("gpu_check_out"), help="results folder when $OUT is not set")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/ssald_gpu_check"), help="models, inputs, tables")
    p.add_argument("--model", type=Path, default=None, help="an fp32 model to use instead of the seeded default")
    p.add_argument("--reference", default=None, help="npz from --make-reference (CPU build of ONNX Runtime)")
    p.add_argument("--make-reference", type=Path, default=None, help="write reference embeddings here and stop")
    p.add_argument("--provider", default=None, help="cuda (default; cpu with --quick), tensorrt or cpu")
    p.add_argument("--n", type=int, default=None, help="stamps per ingest, NPY and FITS (default 200000)")
    p.add_argument("--n-morph", type=int, default=None, help="stamps of the morphology-on ingest (default 20000)")
    p.add_argument("--pool", type=int, default=None, help="distinct synthetic stamps, tiled to --n (default 4096)")
    p.add_argument("--batches", default=None, help="batch sizes of the sweep (default 256,...,8192)")
    p.add_argument("--ingest-batch", type=int, default=None, help="ingest batch (default: the sweep's best)")
    p.add_argument("--seconds-per-size", type=float, default=None, help="timed seconds per sweep point")
    p.add_argument("--cpu-sample", type=int, default=None, help="stamps for the CPU provider's rate")
    p.add_argument("--train-steps", type=int, default=None, help="VICReg steps (default 300)")
    p.add_argument("--train-batch", type=int, default=None, help="VICReg batch (default 256)")
    p.add_argument("--tensorrt", action="store_true", help="also time the TensorRT provider (builds engines)")
    p.add_argument("--skip", nargs="*", default=[], choices=STAGES, help="stages to leave out")
    p.add_argument("--budget", nargs="*", default=[], metavar="STAGE=SECONDS", help="per-stage time limits")
    p.add_argument("--total-seconds", type=float, default=470.0, help="stop starting stages after this")
    p.add_argument("--stage", choices=STAGES, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.provider = args.provider or ("cpu" if args.quick else "cuda")
    args.seconds_per_size = args.seconds_per_size or (0.3 if args.quick else 1.0)
    args.passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.make_reference:
        return make_reference(args)
    if args.stage:
        result = STAGE_FUNCS[args.stage](args)
        (args.workdir / f"{args.stage}.json").write_text(json.dumps(result))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    raise SystemExit(main())
