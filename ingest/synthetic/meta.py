"""Catalogue metadata of the synthetic survey: SDSS identifiers, sky positions, redshifts and spectra.

Everything here is drawn from NumPy generators handed in by :mod:`ingest.synthetic`, so the
metadata is as deterministic as the images. The dual-nucleus redshifts and BPT classes can be
drawn from the real GOTHIC catalogue (:func:`load_gothic`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ingest.synthetic.sdss import encode_objid, encode_specobjid

__all__ = ["IDENTIFIER_CAPACITY", "draw_redshift", "draw_spectrum", "identifiers", "load_gothic"]

_BPT = ("", "star-forming", "composite", "LINER", "Seyfert")
# P(BPT class) per truth class, in the order of _BPT. Quiescent ellipticals mostly lack lines
# (or are LINERs); discs are mostly star-forming (Brinchmann et al. 2004); the dual-nucleus
# default is the frequency among the primary components of the 681 GOTHIC systems.
_BPT_P = {
    "elliptical": (0.70, 0.0, 0.07, 0.20, 0.03),
    "spiral": (0.13, 0.60, 0.15, 0.07, 0.05),
    "edge_on": (0.20, 0.50, 0.15, 0.10, 0.05),
    "merger": (0.10, 0.50, 0.20, 0.10, 0.10),
    "ring": (0.15, 0.45, 0.20, 0.15, 0.05),
    "dual_nucleus": (0.18, 0.33, 0.19, 0.22, 0.08),
}
_GOTHIC_BPT = {
    "SF": "star-forming",
    "star-forming": "star-forming",
    "composite": "composite",
    "LINER": "LINER",
    "seyfert": "Seyfert",
    "Seyfert": "Seyfert",
}
_SPEC_FRACTION = 0.85  # objects with a spectrum, except dual nuclei (all, as in GOTHIC)
_OBJECTS_PER_FIELD, _FIELDS_PER_CAMCOL, _FIRST_FIELD = 8, 700, 11
_STRIPE_RA0, _STRIPE_RA_SPAN, _STRIPE_DEC = 310.0, 110.0, 1.25  # SDSS Stripe 82
_FIBERS, _PLATES = 600, (266, 8191)
IDENTIFIER_CAPACITY = _OBJECTS_PER_FIELD * 6 * _FIELDS_PER_CAMCOL * (8163 - 94)
"""Most objects that get distinct objids (8 per field, 700 fields per camcol, one run each 33,600)."""


def load_gothic(path: Path | str) -> dict[str, np.ndarray]:
    """Redshift, BPT class, spectral class and subclass of the primary component of each GOTHIC system.

    Parameters
    ----------
    path : path-like
        The GOTHIC double-nucleus CSV (Bhattacharya et al. 2022): columns ``Component number``,
        ``Redshift``, ``CLASS``, ``SUBCLASS``, ``Class (From BPT)``; ``...`` means none.

    Returns
    -------
    dict
        Arrays ``z`` (float), ``bpt_class``, ``spec_class``, ``spec_subclass`` (str, ``''`` = none).
    """
    needed = ("Component number", "Redshift", "CLASS", "SUBCLASS", "Class (From BPT)")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    missing = [c for c in needed if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"gothic_csv {str(path)!r} lacks column(s) {missing}")
    rows = [r for r in rows if r["Component number"].strip() == "1" and r["Redshift"].strip() not in ("", "...")]
    if not rows:
        raise ValueError(f"gothic_csv {str(path)!r} holds no primary component with a redshift")

    def clean(value: str) -> str:
        return "" if value.strip() in ("", "...") else value.strip()

    return {
        "z": np.array([float(r["Redshift"]) for r in rows]),
        "bpt_class": np.array([_GOTHIC_BPT.get(clean(r["Class (From BPT)"]), "") for r in rows]),
        "spec_class": np.array([clean(r["CLASS"]) or "GALAXY" for r in rows]),
        "spec_subclass": np.array([clean(r["SUBCLASS"]) for r in rows]),
    }


def identifiers(classes: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """objid, ra, dec and specobjid (0 = no spectrum) of every object.

    Objects fill SDSS fields 8 at a time, field after field along camcols 1-6 of runs drawn
    without replacement from 94-8162 (the SDSS imaging run range), rerun 301. Positions follow
    the same layout on Stripe 82: a camcol is a 2.5/6 deg strip in Dec, a field a 0.157 deg step
    in RA (the size of an SDSS field), so objects of one field are neighbours on the sky.
    Spectra (85% of objects, every dual nucleus) get consecutive fibres on legacy plates
    266-8191, the MJD rising with the plate; past plate 8191 the run2d code moves on.

    Parameters
    ----------
    classes : numpy.ndarray
        Truth class of each object (dual nuclei always get a spectrum).
    seed : int
        Survey seed; the draws use ``SeedSequence(seed, spawn_key=(2,))``.

    Returns
    -------
    objid, ra, dec, specobjid : numpy.ndarray
        int64, float64 (deg), float64 (deg), int64 arrays of length ``len(classes)``.
    """
    n = len(classes)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    group, slot = np.divmod(np.arange(n), _OBJECTS_PER_FIELD)
    camcol = 1 + group % 6
    field_ = _FIRST_FIELD + (group // 6) % _FIELDS_PER_CAMCOL
    run_index = group // (6 * _FIELDS_PER_CAMCOL)
    runs = rng.permutation(np.arange(94, 8163))[: int(run_index.max()) + 1]
    obj = 1 + 50 * slot + rng.integers(0, 50, n)
    objid = np.array(
        [encode_objid(int(r), 301, int(c), int(f), int(o)) for r, c, f, o in zip(runs[run_index], camcol, field_, obj)],
        np.int64,
    )
    dec = -_STRIPE_DEC + (camcol - 1 + rng.random(n)) * (2 * _STRIPE_DEC / 6)
    field_width = _STRIPE_RA_SPAN / _FIELDS_PER_CAMCOL
    ra = (_STRIPE_RA0 + (field_ - _FIRST_FIELD + rng.random(n)) * field_width) % 360.0
    has_spec = (rng.random(n) < _SPEC_FRACTION) | (classes == "dual_nucleus")
    k = np.cumsum(has_spec) - 1
    n_plates = _PLATES[1] - _PLATES[0] + 1
    cycle, within = np.divmod(k, n_plates * _FIBERS)
    plate = _PLATES[0] + within // _FIBERS
    mjd = 51578 + (plate - _PLATES[0]) // 2
    specobjid = np.array(
        [
            encode_specobjid(int(p), int(1 + kk % _FIBERS), int(m), 26 + int(c)) if s else 0
            for p, kk, m, c, s in zip(plate, k, mjd, cycle, has_spec)
        ],
        np.int64,
    )
    return objid, ra, dec, specobjid


def draw_redshift(
    rng: np.random.Generator, truth: str, mag_r: float, gothic: dict[str, np.ndarray] | None
) -> tuple[float, int]:
    """True redshift of one object, and the GOTHIC row it came from (-1 if none).

    Galaxies: log10 z ~ N(log10(0.1) + 0.2 (r - 17), 0.15) clipped to [0.02, 0.25], fainter
    objects further away as in the SDSS main galaxy sample (median z ~ 0.1). Point sources:
    35% stars (z ~ N(0, 0.0003)), else quasars with log10 z ~ N(log10 0.8, 0.25) in [0.1, 2.2].
    Dual nuclei: a GOTHIC primary's redshift if given, else log10 z ~ N(log10 0.094, 0.30)
    clipped to [0.01, 0.5] (the GOTHIC median and spread).

    Parameters
    ----------
    rng : numpy.random.Generator
        The object's generator.
    truth : str
        Truth class.
    mag_r : float
        r magnitude (sets the distance of galaxies).
    gothic : dict or None
        :func:`load_gothic` output, or None for the built-in dual-nucleus distribution.

    Returns
    -------
    (z, row) : tuple of (float, int)
    """
    if truth == "point_source":
        if rng.random() < 0.35:
            return float(rng.normal(0.0, 3e-4)), -1
        return float(np.clip(10.0 ** rng.normal(np.log10(0.8), 0.25), 0.1, 2.2)), -1
    if truth == "dual_nucleus":
        if gothic is not None:
            row = int(rng.integers(len(gothic["z"])))
            return float(gothic["z"][row]), row
        return float(np.clip(10.0 ** rng.normal(np.log10(0.094), 0.30), 0.01, 0.5)), -1
    log_z = rng.normal(np.log10(0.1) + 0.2 * (mag_r - 17.0), 0.15)
    return float(np.clip(10.0**log_z, 0.02, 0.25)), -1


def draw_spectrum(
    rng: np.random.Generator, truth: str, z: float, row: int, gothic: dict[str, np.ndarray] | None, mags: np.ndarray
) -> tuple[float, float, str, str, str]:
    """What a spectroscopic pipeline reports for one object: (z, z_err, spec_class, spec_subclass, bpt_class).

    z_err: 1.5e-5 (1 + z) for galaxies, 4e-4 for quasars, 1e-5 for stars, each x 10^N(0, 0.2).
    Subclasses follow the BPT class: star-forming -> STARFORMING (75%) or STARBURST; LINER and
    Seyfert -> AGN (50%); stars get a spectral type from their g - r colour; BPT classes are
    drawn from per-class frequencies (``_BPT_P``) or, for GOTHIC rows, copied with z and classes.

    Parameters
    ----------
    rng : numpy.random.Generator
        The object's generator.
    truth : str
        Truth class.
    z : float
        True redshift from :func:`draw_redshift`.
    row : int
        GOTHIC row from :func:`draw_redshift` (-1 if none).
    gothic : dict or None
        :func:`load_gothic` output.
    mags : numpy.ndarray
        The object's u, g, r, i, z magnitudes.

    Returns
    -------
    tuple
        ``(z, z_err, spec_class, spec_subclass, bpt_class)``; strings are ``''`` when none.
    """
    if truth == "point_source":
        err = 10.0 ** rng.normal(0.0, 0.2)
        if abs(z) < 0.01:
            g_r = mags[1] - mags[2]
            types = ("F5", "G2", "K3", "K7", "M2")
            return z, 1e-5 * err, "STAR", types[int(np.searchsorted([0.3, 0.5, 0.8, 1.2], g_r))], ""
        return z, 4e-4 * err, "QSO", "BROADLINE", ""
    z_err = 1.5e-5 * (1.0 + z) * 10.0 ** rng.normal(0.0, 0.2)
    if row >= 0:
        return z, z_err, *(str(gothic[k][row]) for k in ("spec_class", "spec_subclass", "bpt_class"))
    if truth == "dual_nucleus" and rng.random() < 0.02:
        return z, z_err, "QSO", "BROADLINE", ""
    bpt = _BPT[int(rng.choice(len(_BPT), p=_BPT_P[truth]))]
    u = rng.random()
    subclass = {
        "star-forming": "STARFORMING" if u < 0.75 else "STARBURST",
        "LINER": "AGN" if u < 0.5 else "",
        "Seyfert": "AGN" if u < 0.5 else "",
    }.get(bpt, "")
    return z + z_err * rng.normal(), z_err, "GALAXY", subclass, bpt
