"""The synthetic survey: deterministic multi-band SDSS-like stamps and catalogue with ground truth.

:func:`simulate` writes ``out_dir/stamps/<objid>.fits``, ``out_dir/catalogue.fits`` and
``out_dir/README.txt`` in the layout of ``docs/CONTRACTS.md``. Everything follows from
``seed``: the class of each object comes from an exact, shuffled allocation of the target
prevalences; each object's physics comes from its own generator, seeded by
``SeedSequence(seed, spawn_key=(1, index))``, so the output is identical for any number of
worker processes.

Magnitudes are AB, ``mag = zero_point - 2.5 log10(flux)``, with the flux the object's total
model flux in the stamp's units (neighbouring sources excluded). The default zero point 26.0
makes one flux unit 0.04 nanomaggy, so the r-band sky noise is ~1.2 units per pixel (the
scale ``encoders.normalise`` is tuned for); ``zero_point=22.5`` gives nanomaggies.

Modules
-------
profiles
    Physical models of each class: colours, sizes, PSFs, one builder per class.
render
    GalSim rendering: PSF-convolved, noisy multi-band stamps.
meta
    Catalogue metadata: SDSS-like identifiers, sky positions, redshifts and spectra.
sdss
    SDSS 64-bit identifiers (photometric ``objID``, spectroscopic ``specObjID``).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from tqdm import tqdm

from ingest.synthetic.meta import IDENTIFIER_CAPACITY, draw_redshift, draw_spectrum, identifiers, load_gothic
from ingest.synthetic.profiles import BUILDERS, distance_modulus, neighbours, psfs_for, sample_magnitude
from ingest.synthetic.render import PIXSCALE, KSpaceRenderer, add_noise

__all__ = ["CLASSES", "PREVALENCE", "RARE_CLASSES", "SimulationSummary", "allocate_classes", "load_gothic", "simulate"]

CLASSES: tuple[str, ...] = ("elliptical", "spiral", "edge_on", "point_source", "dual_nucleus", "merger", "ring")
RARE_CLASSES: tuple[str, ...] = ("dual_nucleus", "merger", "ring")
PREVALENCE: dict[str, float] = {
    "elliptical": 0.31,
    "spiral": 0.357,
    "edge_on": 0.15,
    "point_source": 0.15,
    "dual_nucleus": 0.008,
    "merger": 0.015,
    "ring": 0.01,
}
"""Target fraction of each class; :func:`allocate_classes` meets them to within one object."""


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate` wrote.

    Attributes
    ----------
    n : int
        Number of objects.
    seed : int
        The seed.
    counts : dict
        Objects per truth class, in the order of :data:`CLASSES`.
    out_dir : pathlib.Path
        The survey folder.
    seconds : float
        Wall-clock time of the simulation.
    """

    n: int
    seed: int
    counts: dict[str, int]
    out_dir: Path
    seconds: float


@dataclass(frozen=True)
class _Config:
    seed: int
    stamp_size: int
    bands: str
    zero_point: float
    stamps_dir: Path
    gothic: dict[str, np.ndarray] | None = None


def allocate_classes(n: int, seed: int = 0) -> np.ndarray:
    """Truth class of each of ``n`` objects: exact prevalences, shuffled by ``seed``.

    Counts are ``n * PREVALENCE`` rounded by largest remainders; for ``n >= 200`` every rare
    class gets at least one object (taken from the largest class), so small surveys always
    hold each class. The order is a permutation drawn from ``SeedSequence(seed, spawn_key=(0,))``.
    """
    expected = np.array([PREVALENCE[c] for c in CLASSES]) * n
    counts = np.floor(expected).astype(int)
    counts[np.argsort(-(expected - counts), kind="stable")[: n - counts.sum()]] += 1
    if n >= 200:
        for name in RARE_CLASSES:
            i = CLASSES.index(name)
            if counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] = 1
    labels = np.repeat(np.array(CLASSES), counts)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))).permutation(labels)


_WORKER: dict[str, object] = {}


def _init_worker(config: _Config) -> None:
    _WORKER["config"] = config
    _WORKER["renderer"] = KSpaceRenderer(config.stamp_size, config.bands)
    _WORKER["header"] = _header_template(config)


def _simulate_one(task: tuple) -> tuple:
    """Render, write and describe one object; returns its catalogue values."""
    index, truth, objid, ra, dec, has_spec = task
    config: _Config = _WORKER["config"]  # type: ignore[assignment]
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1, index)))
    # Counts of SDSS spectroscopic galaxies rise as 10^(0.6 m) (Euclidean) down to r = 17.7;
    # one distribution for all classes, so total flux never separates them.
    mag_r = sample_magnitude(rng, 14.5, 17.7, 0.6)
    z, row = draw_redshift(rng, truth, mag_r, config.gothic)
    flux_r = 10.0 ** (-0.4 * (mag_r - config.zero_point))
    parts = BUILDERS[truth](rng, flux_r, mag_r, max(z, 0.0) if truth == "point_source" else max(z, 0.01))
    half_width = 0.5 * config.stamp_size * PIXSCALE
    offset = rng.uniform(-0.5, 0.5, 2) * PIXSCALE  # catalogue centre vs stamp centre
    scene = [p.shifted(*offset) for p in parts] + neighbours(rng, half_width, config.zero_point)
    psfs, _ = psfs_for(rng, config.bands)
    cube = _WORKER["renderer"].render(scene, psfs)  # type: ignore[attr-defined]
    # Sky brightness varies between fields (moon, airmass): log-normal, 15% scatter.
    sky_scale = float(np.exp(rng.normal(0.0, 0.15)))
    cube = add_noise(cube, config.bands, rng, config.zero_point, sky_scale=sky_scale)
    flux = sum(p.flux for p in parts)
    mags = config.zero_point - 2.5 * np.log10(np.clip(flux, 1e-30, None))
    no_spectrum = (math.nan, math.nan, "", "", "")
    spec = draw_spectrum(rng, truth, z, row, config.gothic, mags) if has_spec else no_spectrum
    _write_stamp(config, cube, objid, ra, dec, truth)
    return (index, *mags, *spec)


def _header_template(config: _Config) -> fits.Header:
    """The stamp header shared by every object; :func:`_write_stamp` fills in the per-object cards."""
    size = config.stamp_size
    header = fits.PrimaryHDU(np.zeros((len(config.bands), size, size), np.float32)).header
    header["OBJID"] = (0, "SDSS-layout 64-bit objid")
    header["RA"] = (0.0, "deg (ICRS)")
    header["DEC"] = (0.0, "deg (ICRS)")
    header["BANDS"] = (",".join(config.bands), "band of each plane")
    for i, band in enumerate(config.bands, start=1):
        header[f"BAND{i}"] = band
    header["PIXSCALE"] = (PIXSCALE, "arcsec/pixel")
    header["SURVEY"] = "SYNTH"
    header["BUNIT"] = ("flux", f"linear AB flux, mag = {config.zero_point} - 2.5 log10(flux)")
    header["MAGZERO"] = (config.zero_point, "AB zero point of the pixel values")
    header["TRUTH"] = ("", "ground-truth class")
    return header


def _write_stamp(config: _Config, cube: np.ndarray, objid: int, ra: float, dec: float, truth: str) -> None:
    """Write one stamp: astropy formats the header; the data block is written directly.

    (astropy's full ``writeto`` re-verifies the header and cost as much as rendering the object.)
    """
    header = _WORKER["header"].copy()  # type: ignore[attr-defined]
    header["OBJID"], header["RA"], header["DEC"], header["TRUTH"] = int(objid), float(ra), float(dec), truth
    data = np.ascontiguousarray(cube, dtype=">f4").tobytes()
    with open(config.stamps_dir / f"{objid}.fits", "wb") as handle:
        handle.write(header.tostring().encode("ascii"))
        handle.write(data)
        handle.write(b"\0" * (-len(data) % 2880))


def _readme(config: _Config, n: int, counts: dict[str, int]) -> str:
    """The one-paragraph README.txt of a survey."""
    listing = ", ".join(f"{count} {name}" for name, count in counts.items())
    size, bands = config.stamp_size, config.bands
    gothic = " (drawn from the GOTHIC catalogue)" if config.gothic is not None else ""
    return (
        f"Synthetic SDSS-like survey (SSALD ingest.synthetic), seed {config.seed}, {n} objects: {listing}. "
        f"Each stamps/<objid>.fits holds a float32 ({len(bands)}, {size}, {size}) cube in bands "
        f'{",".join(bands)} at {PIXSCALE}"/pixel, rendered with GalSim: de Vaucouleurs bulges, '
        "exponential discs, spiral arms, dust lanes, rings, tidal tails and point-like nuclei, convolved "
        'with a per-object, per-band Kolmogorov PSF (r-band FWHM 1.05-1.8"), with neighbouring stars and '
        "galaxies, SDSS-depth sky and Poisson noise, sky-subtracted; pixel values are linear AB fluxes "
        f"with mag = {config.zero_point} - 2.5 log10(flux). catalogue.fits lists SDSS-layout objids, "
        "Stripe 82 positions, model ugriz magnitudes (r drawn from one distribution for every class), "
        "spectroscopic redshifts, classes and BPT classes for 85% of objects and all dual nuclei"
        f"{gothic}, and the ground-truth class (truth_class).\n"
    )


def _pool_context() -> multiprocessing.context.BaseContext:
    """``fork`` where the platform has it: workers inherit the imported modules, start in
    milliseconds, and scripts need no ``if __name__ == "__main__"`` guard; else ``spawn``."""
    # Python >= 3.12 warns about forking a process with threads (OpenBLAS's idle pool here);
    # the workers never use BLAS threads across the fork, so the warning is noise.
    warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def _validate(n, seed, stamp_size, bands, workers, zero_point) -> None:
    def is_int(v) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(n) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not is_int(stamp_size) or stamp_size < 16:
        raise ValueError(f"stamp_size must be an integer >= 16, got {stamp_size!r}")
    if not isinstance(bands, str) or not bands or set(bands) - set("ugriz") or len(set(bands)) != len(bands):
        raise ValueError(f"bands must be a non-empty string of distinct letters from 'ugriz', got {bands!r}")
    if workers is not None and (not is_int(workers) or workers < 1):
        raise ValueError(f"workers must be None or an integer >= 1, got {workers!r}")
    if not isinstance(zero_point, (int, float)) or not math.isfinite(zero_point):
        raise ValueError(f"zero_point must be a finite number, got {zero_point!r}")
    if n > IDENTIFIER_CAPACITY:
        raise ValueError(f"n must be at most {IDENTIFIER_CAPACITY} (distinct SDSS-layout objids), got {n}")


def simulate(
    out_dir: Path | str,
    n: int,
    seed: int = 0,
    stamp_size: int = 64,
    bands: str = "ugriz",
    workers: int | None = None,
    progress: bool = True,
    gothic_csv: Path | str | None = None,
    overwrite: bool = False,
    zero_point: float = 26.0,
) -> SimulationSummary:
    """Write the synthetic survey: one FITS stamp per object, a catalogue and a README.

    Parameters
    ----------
    out_dir : path-like
        Folder to write ``stamps/<objid>.fits``, ``catalogue.fits`` and ``README.txt`` into.
    n : int
        Number of objects, >= 1.
    seed : int, optional
        Seed; the same seed and arguments give byte-identical output.
    stamp_size : int, optional
        Stamp side in pixels, >= 16 (0.396" pixels).
    bands : str, optional
        Bands to render, distinct letters from ``"ugriz"``; the catalogue always has all five mags.
    workers : int, optional
        Rendering processes; default ``min(2, os.cpu_count())``. Does not change the output.
    progress : bool, optional
        Show a tqdm progress bar.
    gothic_csv : path-like, optional
        GOTHIC double-nucleus catalogue; dual nuclei then take redshift, spectral class and BPT
        class from a random GOTHIC primary (see :func:`load_gothic`).
    overwrite : bool, optional
        Replace a survey already in ``out_dir`` (its stamps are deleted first).
    zero_point : float, optional
        AB zero point of the pixel values (22.5 = nanomaggies).

    Returns
    -------
    SimulationSummary

    Raises
    ------
    ValueError
        If an argument is out of range; the message names it and its value.
    FileExistsError
        If ``out_dir`` already holds ``catalogue.fits`` and ``overwrite`` is false.
    """
    _validate(n, seed, stamp_size, bands, workers, zero_point)
    start = time.perf_counter()
    gothic = load_gothic(gothic_csv) if gothic_csv is not None else None
    out_dir = Path(out_dir)
    catalogue_path, stamps_dir = out_dir / "catalogue.fits", out_dir / "stamps"
    old_stamps = sorted(stamps_dir.glob("*.fits"))
    if catalogue_path.exists() or old_stamps:
        if not overwrite:
            raise FileExistsError(
                f"{out_dir} already holds a survey (catalogue.fits or stamps/*.fits); pass overwrite=True to replace it"
            )
        catalogue_path.unlink(missing_ok=True)
        for old in old_stamps:
            old.unlink()
    stamps_dir.mkdir(parents=True, exist_ok=True)
    workers = min(2, os.cpu_count() or 1) if workers is None else int(workers)

    classes = allocate_classes(int(n), int(seed))
    objid, ra, dec, specobjid = identifiers(classes, int(seed))
    config = _Config(int(seed), int(stamp_size), bands, float(zero_point), stamps_dir, gothic)
    tasks = ((i, str(classes[i]), int(objid[i]), float(ra[i]), float(dec[i]), bool(specobjid[i])) for i in range(n))
    rows: list[tuple] = [()] * n
    distance_modulus(0.1)  # build the cosmology table once, before forked workers would each build it
    with tqdm(total=n, disable=not progress, desc="simulate", unit="obj") as bar:
        if workers == 1:
            _init_worker(config)
            results = map(_simulate_one, tasks)
            for row in results:
                rows[row[0]] = row
                bar.update()
        else:
            with warnings.catch_warnings(), _pool_context().Pool(workers, _init_worker, (config,)) as pool:
                chunk = max(1, min(32, n // (8 * workers)))
                for row in pool.imap_unordered(_simulate_one, tasks, chunksize=chunk):
                    rows[row[0]] = row
                    bar.update()

    columns = list(zip(*rows))
    table = Table()
    table["objid"], table["ra"], table["dec"] = objid, ra, dec
    for i, band in enumerate("ugriz"):
        table[f"mag_{band}"] = np.array(columns[1 + i], np.float32)
    table["specobjid"] = specobjid
    table["z"], table["z_err"] = np.array(columns[6], np.float32), np.array(columns[7], np.float32)
    for i, name in enumerate(("spec_class", "spec_subclass", "bpt_class"), start=8):
        table[name] = np.array(columns[i], dtype=str)
    table["truth_class"] = classes.astype(str)
    partial = out_dir / "catalogue.fits.partial"
    table.write(partial, format="fits", overwrite=True)
    os.replace(partial, catalogue_path)  # the catalogue appears only once every stamp is written

    counts = {c: int(np.sum(classes == c)) for c in CLASSES}
    (out_dir / "README.txt").write_text(_readme(config, n, counts))
    return SimulationSummary(int(n), int(seed), counts, out_dir, time.perf_counter() - start)
