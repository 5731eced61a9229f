"""Training data: stamp sources (in memory or streamed from files) and two-view augmented batches.

A *source* hands out normalised stamps by index: :class:`ArraySource` wraps an array (in
memory, a ``numpy.memmap`` of an ``.npy`` file or an ``h5py`` dataset, read lazily) and
:class:`FileSource` reads stamp files on demand with :func:`encoders.stamps.read_stamp`,
the reader ingestion uses, so training data can exceed RAM. Both normalise with
:func:`normaliser` (the one Lupton implementation of :mod:`encoders.normalise`, or the
identity for images that are already stretched, such as 8-bit PNG composites).

:class:`TwoViewBatches` is the ``torch`` dataset the training loop iterates: each item is a
whole batch, keyed by ``(epoch, batch, rank, indices)``, returned as two augmented views.
The augmentation runs in the DataLoader's worker processes and its generator is seeded by
the key, so a run is reproducible whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from encoders.fit import Fit
from encoders.normalise import NORMALISATIONS, normaliser
from encoders.stamps import Stamp, StampError, read_stamp
from encoders.training.augment import centre_view

__all__ = [
    "NORMALISATIONS",
    "ArrayFileSource",
    "ArraySource",
    "FileSource",
    "StampSource",
    "TwoViewBatches",
    "epoch_keys",
    "normaliser",
]


class StampSource(Protocol):
    """Indexable normalised stamps: ``len(source)``, ``source.shape`` and ``source.get(indices)``."""

    shape: tuple[int, int, int]

    def __len__(self) -> int: ...

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """Normalised float32 stamps ``(len(indices), B, H, W)`` at ``indices``, in that order."""
        ...


class ArraySource:
    """Stamps from an array-like ``(N, B, H, W)``: a NumPy array, memmap or h5py dataset.

    Parameters
    ----------
    array : array-like
        Anything with ``shape`` and fancy indexing by a sorted list of ints. Rows are read only
        when asked for, so a memmapped ``.npy`` (``np.load(path, mmap_mode="r")``) or an HDF5
        dataset larger than RAM streams.
    normalise : callable, optional
        Applied to each fetched batch (default: none, the array is already normalised).
    """

    def __init__(self, array: Any, normalise: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        shape = tuple(getattr(array, "shape", ()))
        if len(shape) != 4:
            raise ValueError(f"ArraySource expects an array of shape (N, B, H, W), got shape {shape}")
        self.array = array
        self.normalise = normalise
        self.shape = shape[1:]

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """Return float32 ``(len(indices), B, H, W)`` stamps in the order of ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        rows = np.asarray(self.array[idx[order].tolist()], dtype=np.float32)  # h5py wants increasing indices
        out = np.empty_like(rows)
        out[order] = rows
        return out if self.normalise is None else self.normalise(out)


class ArrayFileSource(ArraySource):
    """Stamps in one ``.npy`` (memory-mapped) or HDF5 file, opened lazily in each process.

    Parameters
    ----------
    path : path-like
        ``.npy`` file or HDF5 file (``.h5``, ``.hdf5``) holding an ``(N, B, H, W)`` array.
    key : str
        Dataset name inside an HDF5 file (default ``"stamps"``).
    normalise : callable, optional
        Applied to each fetched batch (e.g. ``normaliser("lupton", params)`` for fluxes).

    Notes
    -----
    The file handle is not pickled: DataLoader workers reopen the file, which h5py requires.
    """

    def __init__(
        self, path: str | Path, key: str = "stamps", normalise: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> None:
        self.path, self.key = Path(path), key
        if not self.path.is_file():
            raise FileNotFoundError(f"stamp array file {self.path} does not exist")
        super().__init__(self._open(), normalise)

    def _open(self) -> Any:
        if self.path.suffix.lower() == ".npy":
            return np.load(self.path, mmap_mode="r")
        import h5py

        handle = h5py.File(self.path, "r")
        if self.key not in handle:
            raise KeyError(f"HDF5 file {self.path} has no dataset {self.key!r}; it has {sorted(handle)}")
        return handle[self.key]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "array": None}

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """Return float32 ``(len(indices), B, H, W)`` stamps, opening the file in this process if needed."""
        if self.array is None:
            self.array = self._open()
        return super().get(indices)


class FileSource:
    """Stamps read from files on demand (FITS cubes, PNG/JPEG, NPY), fitted to the model's size and normalised.

    Parameters
    ----------
    paths : sequence of path-like
        One stamp per file; all must have the bands of the first, and its shape once fitted.
    normalise : callable
        E.g. ``normaliser("lupton", params)``.
    bands : sequence of str, optional
        Passed to :func:`~encoders.stamps.read_stamp` (band names of files that carry none).
    fit : Fit, optional
        Applied to every stamp as it is read (:meth:`encoders.fit.Fit.apply`), so images of any size
        become ``size x size``; ingestion and the server apply the same fit from the model's metadata.
    size : int, optional
        The stamp side ``fit`` produces (required with a fit other than ``none``).

    Raises
    ------
    ValueError
        If ``paths`` is empty.
    StampError
        From :meth:`get`, naming the file, if a stamp is unreadable or differs in shape.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        normalise: Callable[[np.ndarray], np.ndarray],
        bands: Sequence[str] | None = None,
        fit: Fit | None = None,
        size: int | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("FileSource got no stamp paths")
        self.fit = fit or Fit()
        if self.fit.mode != "none" and size is None:
            raise ValueError(f"FileSource with fit {self.fit} needs the stamp size to fit to")
        self.size = size
        self.normalise = normalise
        self._bands = None if bands is None else tuple(bands)
        first = self._read(0)
        self.shape = first.shape
        self.bands = first.bands

    def _read(self, i: int) -> Stamp:
        stamp = read_stamp(self.paths[i], bands=self._bands)
        if self.size is not None:
            stamp.data = self.fit.apply(stamp.data, self.size)
        return stamp

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """Read, check and normalise the stamps at ``indices``; float32 ``(n, B, H, W)``."""
        out = np.empty((len(indices), *self.shape), dtype=np.float32)
        for j, i in enumerate(indices):
            stamp = self._read(int(i))
            if stamp.shape != self.shape:
                raise StampError(
                    f"{self.paths[int(i)]}: stamp has shape {stamp.shape} (fit {self.fit}) "
                    f"but the first has {self.shape}"
                )
            out[j] = stamp.data
        return self.normalise(out)


def _key_seed(seed: int, epoch: int, batch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, batch, rank]).generate_state(1, np.uint64)[0] >> 1)


class TwoViewBatches(torch.utils.data.Dataset):
    """Two augmented views of a batch; the item key is ``(epoch, batch, rank, indices)``.

    Parameters
    ----------
    source : StampSource
        Where stamps come from.
    augment : callable
        ``augment(x, generator) -> x'`` on a ``(n, B, H, W)`` tensor (e.g. :class:`GalaxyAugment`).
    seed : int
        Run seed; with the key it seeds the augmentation of each batch.
    centre_prob : float
        Probability that a stamp is replaced, in both of its views, by its
        :func:`~encoders.training.augment.centre_view` before augmentation, so the backbone also learns the
        enlarged nuclear region that a ``full,centre`` export embeds.
    """

    def __init__(
        self, source: StampSource, augment: Callable[..., torch.Tensor], seed: int = 0, centre_prob: float = 0.0
    ) -> None:
        if not 0.0 <= centre_prob <= 1.0:
            raise ValueError(f"centre_prob must be in [0, 1], got {centre_prob}")
        self.source = source
        self.augment = augment
        self.seed = int(seed)
        self.centre_prob = float(centre_prob)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int, int, Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, batch, rank, indices = key
        x = torch.from_numpy(self.source.get(indices))
        gen = torch.Generator().manual_seed(_key_seed(self.seed, epoch, batch, rank))
        if self.centre_prob > 0:
            centre = torch.rand(len(x), generator=gen) < self.centre_prob
            if centre.any():
                x = x.clone()
                x[centre] = centre_view(x[centre])
        return self.augment(x, gen), self.augment(x, gen)


def epoch_keys(
    n: int, batch: int, epoch: int, seed: int, rank: int = 0, world: int = 1
) -> list[tuple[int, int, int, list[int]]]:
    """The item keys of one epoch: a seeded permutation cut into global batches, one share per rank.

    Parameters
    ----------
    n : int
        Number of stamps.
    batch : int
        Global batch size (divisible by ``world``); the last incomplete batch is dropped.
    epoch, seed : int
        Seed the permutation.
    rank, world : int
        This process's share of each global batch under data parallelism.

    Returns
    -------
    list
        ``(epoch, batch_index, rank, indices)`` for each batch of the epoch.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    share = batch // world
    return [
        (epoch, b, rank, order[b * batch + rank * share : b * batch + (rank + 1) * share]) for b in range(n // batch)
    ]
