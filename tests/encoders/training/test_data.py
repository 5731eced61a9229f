"""Stamp sources (in memory, memmap, HDF5, files) and the two-view batches the training loop reads."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from astropy.io import fits
from PIL import Image

from encoders.normalise import LuptonParams, lupton_asinh, normaliser
from encoders.stamps import StampError
from encoders.training.augment import GalaxyAugment, centre_view
from encoders.training.data import ArraySource, FileSource, TwoViewBatches, epoch_keys
from encoders.training.train import TrainConfig, train


def test_array_sources_read_lazily_in_index_order(tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((10, 2, 8, 8), dtype=np.float32)
    np.save(tmp_path / "a.npy", data)
    with h5py.File(tmp_path / "a.h5", "w") as fh:
        fh["stamps"] = data
    idx = [7, 2, 5]
    with h5py.File(tmp_path / "a.h5", "r") as fh:
        for array in (data, np.load(tmp_path / "a.npy", mmap_mode="r"), fh["stamps"]):
            source = ArraySource(array)
            assert len(source) == 10 and source.shape == (2, 8, 8)
            np.testing.assert_array_equal(source.get(idx), data[idx])
    scaled = ArraySource(data * 100, normalise=normaliser("lupton", LuptonParams()))
    np.testing.assert_allclose(scaled.get([1]), lupton_asinh(data[[1]] * 100), rtol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(N, B, H, W\)"):
        ArraySource(data[0])


def test_file_source_streams_fits_and_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    cubes = rng.normal(5, 20, size=(3, 3, 16, 16)).astype(np.float32)
    for i, cube in enumerate(cubes):
        fits.PrimaryHDU(cube.astype(">f4")).writeto(tmp_path / f"{i}.fits")
    source = FileSource(sorted(tmp_path.glob("*.fits")), normaliser("lupton"))
    np.testing.assert_allclose(source.get([2, 0]), lupton_asinh(cubes[[2, 0]]), rtol=1e-6)
    rgb = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    png = FileSource([tmp_path / "x.png"], normaliser("identity"))
    np.testing.assert_allclose(png.get([0])[0], np.moveaxis(rgb[..., ::-1], -1, 0) / 255.0, atol=1e-6)
    fits.PrimaryHDU(np.zeros((3, 8, 8), ">f4")).writeto(tmp_path / "small.fits")
    mixed = FileSource([tmp_path / "0.fits", tmp_path / "small.fits"], normaliser("lupton"))
    with pytest.raises(StampError, match=r"small.fits: stamp has shape \(3, 8, 8\)"):
        mixed.get([0, 1])
    with pytest.raises(ValueError, match="unknown normalisation"):
        normaliser("sqrt")


def test_two_view_batches_are_seeded_by_their_key() -> None:
    data = ArraySource(np.random.default_rng(2).random((12, 3, 16, 16), dtype=np.float32))
    batches = TwoViewBatches(data, GalaxyAugment(), seed=5)
    a1, b1 = batches[(0, 1, 0, [3, 4, 5])]
    a2, b2 = batches[(0, 1, 0, [3, 4, 5])]
    assert torch.equal(a1, a2) and torch.equal(b1, b2) and not torch.equal(a1, b1)
    assert not torch.equal(batches[(1, 1, 0, [3, 4, 5])][0], a1)


def test_centre_prob_shows_both_views_the_enlarged_centre() -> None:
    stamps = np.random.default_rng(4).random((64, 2, 16, 16), dtype=np.float32)
    data = ArraySource(stamps)
    identity = lambda x, generator=None: x  # noqa: E731 - no augmentation: the views are what was chosen
    key = (0, 0, 0, list(range(64)))
    a, b = TwoViewBatches(data, identity, seed=1, centre_prob=1.0)[key]
    assert torch.equal(a, b)
    torch.testing.assert_close(a, centre_view(torch.from_numpy(stamps)))
    plain, _ = TwoViewBatches(data, identity, seed=1)[key]
    assert torch.equal(plain, torch.from_numpy(stamps))
    half, half_b = TwoViewBatches(data, identity, seed=1, centre_prob=0.5)[key]
    centred = [not torch.equal(half[i], plain[i]) for i in range(64)]
    assert torch.equal(half, half_b) and 16 < sum(centred) < 48  # each stamp one way, the same in both views
    for i in range(64):
        torch.testing.assert_close(half[i], a[i] if centred[i] else plain[i])
    with pytest.raises(ValueError, match="centre_prob"):
        TwoViewBatches(data, identity, centre_prob=1.5)


def test_epoch_keys_share_each_global_batch_between_ranks() -> None:
    single = epoch_keys(20, 8, epoch=3, seed=1)
    assert len(single) == 2 and all(len(k[3]) == 8 for k in single)
    ranks = [epoch_keys(20, 8, epoch=3, seed=1, rank=r, world=2) for r in range(2)]
    for b in range(2):
        assert ranks[0][b][3] + ranks[1][b][3] == single[b][3]
    assert epoch_keys(20, 8, epoch=4, seed=1)[0][3] != single[0][3]


def test_streamed_training_equals_in_memory_training(tmp_path: Path, tiny_config: dict) -> None:
    cubes = np.random.default_rng(3).normal(10, 30, size=(16, 3, 32, 32)).astype(np.float32)
    paths = []
    for i, cube in enumerate(cubes):
        paths.append(tmp_path / f"{i:02d}.npy")
        np.save(paths[-1], cube)
    config = TrainConfig(**{**tiny_config, "num_workers": 1})
    streamed = train(FileSource(paths, normaliser("lupton")), tmp_path / "a", config, progress=False)
    memory = train(lupton_asinh(cubes), tmp_path / "b", TrainConfig(**tiny_config), progress=False)
    sa = torch.load(streamed / "checkpoint.pt", weights_only=True)["model"]
    sb = torch.load(memory / "checkpoint.pt", weights_only=True)["model"]
    for key, value in sa.items():
        torch.testing.assert_close(value, sb[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["s.h5", "s.npy"])
def test_array_file_source_trains_with_workers(tmp_path: Path, tiny_config: dict, name: str) -> None:
    from encoders.training.data import ArrayFileSource

    cubes = np.random.default_rng(4).normal(10, 30, size=(16, 3, 32, 32)).astype(np.float32)
    if name.endswith(".h5"):
        with h5py.File(tmp_path / name, "w") as fh:
            fh["stamps"] = cubes
    else:
        np.save(tmp_path / name, cubes)
    source = ArrayFileSource(tmp_path / name, normalise=normaliser("lupton"))
    np.testing.assert_allclose(source.get([5, 1]), lupton_asinh(cubes[[5, 1]]), rtol=1e-6)
    run = train(source, tmp_path / "run", TrainConfig(**{**tiny_config, "num_workers": 1}), progress=False)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2
    if name.endswith(".h5"):
        with pytest.raises(KeyError, match="no dataset 'cubes'"):
            ArrayFileSource(tmp_path / name, key="cubes")
