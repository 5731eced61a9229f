"""Inputs of ``bench/gpu_check.py`` made from seeds alone, so that two machines make the same ones.

* :func:`make_stamps`: 5-band 64x64 flux stamps, sky noise plus one to three Sérsic-like blobs with
  colours, fast enough to make 10^5 stamps in seconds.
* :func:`build_default_model`: the default encoder (``TrainConfig()``: ResNet, 5 bands, 64x64, D = 256)
  with weights drawn from a NumPy seed instead of torch's initialisation (which may change between torch
  versions), written as a run directory and exported with the repo's own
  :func:`encoders.training.onnx_export.export_onnx`.
  The reference embeddings computed here and the device's embeddings are then of the same function.
* :func:`write_fits_stamps`: one FITS file per object from a pool of stamps, the ``OBJID`` card rewritten.
* :func:`sdss_objids`: objids in the SDSS 64-bit layout.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

__all__ = [
    "build_default_model",
    "fits_bytes",
    "make_stamps",
    "sdss_objids",
    "write_catalogue",
    "write_fits_stamps",
    "write_npy",
]

BANDS = ("u", "g", "r", "i", "z")


def make_stamps(n: int, seed: int, size: int = 64, bands: int = 5) -> np.ndarray:
    """``(n, bands, size, size)`` float32 fluxes: Gaussian sky noise (sigma 1) and 1-3 Sérsic-like blobs.

    Blob profile ``exp(-(r / r_e) ** (1 / n_s))`` with index ``n_s`` in [0.5, 4], ``r_e`` in [1.5, 8] px,
    axis ratio in [0.3, 1], peak 5-500 sky sigmas, a band colour slope; the first blob near the centre.
    Only ``Generator.random`` and ``Generator.integers`` are used (their streams are the most stable across
    NumPy versions).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) - (size - 1) / 2
    out = np.empty((n, bands, size, size), np.float32)
    for i in range(n):
        # Sky: sum of 4 uniforms, rescaled to unit variance (cheaper than normal() and stream-stable).
        sky = (rng.random((4, bands, size, size), dtype=np.float32).sum(axis=0) - 2.0) * np.float32(np.sqrt(3.0))
        cube = sky
        for b in range(int(rng.integers(1, 4))):
            u = rng.random(8)
            cx, cy = ((u[0] - 0.5) * 6, (u[1] - 0.5) * 6) if b == 0 else ((u[0] - 0.5) * 40, (u[1] - 0.5) * 40)
            index, re, q, angle = 0.5 + 3.5 * u[2], 1.5 + 6.5 * u[3], 0.3 + 0.7 * u[4], np.pi * u[5]
            peak, slope = 5 * 100 ** u[6], 0.6 * (u[7] - 0.5)
            c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
            dx, dy = xx - cx, yy - cy
            r = np.sqrt((dx * c + dy * s) ** 2 + ((-dx * s + dy * c) / q) ** 2)
            image = np.exp(-((r / re) ** (1 / index))).astype(np.float32)
            colours = peak * np.exp(slope * (np.arange(bands) - bands // 2))
            cube += colours[:, None, None].astype(np.float32) * image
        out[i] = cube
    return out


def sdss_objids(n: int, start: int = 0) -> np.ndarray:
    """``n`` distinct objids in the SDSS 64-bit layout (run 94, rerun 301, camcol 1-6, fields 11-..., obj 1-1000)."""
    from ingest.synthetic.sdss import encode_objid

    k = np.arange(start, start + n)
    obj, field = k % 1000 + 1, k // 1000
    return np.array(
        [encode_objid(94, 301, int(f % 6) + 1, 11 + int(f // 6), int(o)) for o, f in zip(obj, field)], np.int64
    )


def build_default_model(out_dir: Path, seed: int = 0, precisions: tuple[str, ...] = ("fp32", "fp16")) -> dict:
    """Write ``out_dir/run`` (default TrainConfig, NumPy-seeded weights) and export ``model_<precision>.onnx``.

    Returns ``{precision: path}``.
    """
    import torch

    from encoders.training.checkpoint import build, save_checkpoint
    from encoders.training.config import TrainConfig
    from encoders.training.onnx_export import export_onnx

    config = TrainConfig()
    model, expander = build(config)
    rng = np.random.default_rng(seed)
    state = {}
    for name, tensor in model.state_dict().items():
        shape = tuple(tensor.shape)
        if name.endswith("running_mean"):
            value = np.zeros(shape)
        elif name.endswith("running_var"):
            value = np.ones(shape)
        elif name.endswith("num_batches_tracked"):
            state[name] = tensor
            continue
        elif len(shape) >= 2:  # conv / linear: uniform with He variance
            fan_in = int(np.prod(shape[1:]))
            value = (rng.random(shape) * 2 - 1) * np.sqrt(6.0 / fan_in)
        elif name.endswith("weight"):
            value = 1 + 0.1 * (rng.random(shape) * 2 - 1)
        else:
            value = 0.1 * (rng.random(shape) * 2 - 1)
        state[name] = torch.from_numpy(value.astype(np.float32))
    model.load_state_dict(state)
    run = out_dir / "run"
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    save_checkpoint(run / "checkpoint.pt", model, expander, opt, 0, 0, 0.0, config)
    (run / "config.json").write_text(__import__("json").dumps(config.to_dict()))
    return {p: export_onnx(run, out_dir / f"model_{p}.onnx", precision=p) for p in precisions}


def write_npy(pool: np.ndarray, objids: np.ndarray, out: Path) -> Path:
    """``out/stamps.npy`` (the pool tiled to ``len(objids)`` rows) and ``out/stamps_objid.npy``; returns the array."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "stamps.npy"
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(objids), *pool.shape[1:]))
    for lo in range(0, len(objids), len(pool)):
        hi = min(len(objids), lo + len(pool))
        images[lo:hi] = pool[: hi - lo]
    images.flush()
    del images
    np.save(out / "stamps_objid.npy", objids)
    return path


def _card(key: str, value: str) -> bytes:
    return f"{key:<8}= {value:>20}".ljust(80).encode("ascii")


def fits_bytes(cube: np.ndarray, objid: int, ra: float, dec: float) -> bytes:
    """One FITS file: primary HDU with the cube (big-endian float32) and OBJID, RA, DEC, BANDS cards."""
    nb, ny, nx = cube.shape
    cards = [b"SIMPLE  =                    T".ljust(80), _card("BITPIX", "-32"), _card("NAXIS", "3")]
    cards += [_card("NAXIS1", str(nx)), _card("NAXIS2", str(ny)), _card("NAXIS3", str(nb))]
    cards += [_card("OBJID", str(int(objid))), _card("RA", f"{ra:.8f}"), _card("DEC", f"{dec:.8f}")]
    cards += [f"BANDS   = '{','.join(BANDS[:nb])}'".ljust(80).encode("ascii"), b"SURVEY  = 'SYNTH'".ljust(80)]
    header = b"".join(cards) + b"END".ljust(80)
    header += b" " * (-len(header) % 2880)
    data = np.ascontiguousarray(cube, dtype=">f4").tobytes()
    return header + data + b"\0" * (-len(data) % 2880)


def write_fits_stamps(pool: np.ndarray, objids: np.ndarray, out: Path, threads: int | None = None) -> Path:
    """Write ``out/stamps/<objid>.fits`` for every objid (stamp ``i`` is ``pool[i % len(pool)]``); returns ``out``."""
    stamps = out / "stamps"
    stamps.mkdir(parents=True, exist_ok=True)
    ra, dec = _positions(objids)

    def write(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            (stamps / f"{objids[i]}.fits").write_bytes(fits_bytes(pool[i % len(pool)], objids[i], ra[i], dec[i]))

    step = 2000
    with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool_:
        list(pool_.map(lambda lo: write(lo, min(lo + step, len(objids))), range(0, len(objids), step)))
    return out


def _positions(objids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(len(objids))
    return 150.0 + (k % 1000) * 1e-3, 2.0 + (k // 1000) * 1e-3


def write_catalogue(objids: np.ndarray, path: Path) -> Path:
    """A minimal Parquet catalogue: objid, ra, dec, z."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ra, dec = _positions(objids)
    z = 0.02 + 0.2 * ((np.arange(len(objids)) * 0.6180339887) % 1.0)
    pq.write_table(pa.table({"objid": objids, "ra": ra, "dec": dec, "z": z}), path)
    return path
