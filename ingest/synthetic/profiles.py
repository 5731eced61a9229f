"""Physical models of the synthetic survey's objects: colours, sizes, PSFs and one builder per class.

Each builder takes the object's random generator, its r-band flux and redshift, and returns
a list of :class:`~ingest.synthetic.render.Part` whose r-band fluxes sum to exactly the
requested flux, so that the magnitude distribution (drawn once, for every class alike) never
tells the classes apart. Colours and sizes depend on redshift through
:func:`sed_offsets` and :func:`angular_size`; every random choice is documented where it is
drawn. Positions are in arcsec from the stamp centre, x to the right and y up.
"""

from __future__ import annotations

from functools import lru_cache

import galsim
import numpy as np

from ingest.synthetic.render import BAND_WAVELENGTH_NM, GSPARAMS, Part

__all__ = [
    "BUILDERS",
    "SED_KINDS",
    "angular_size",
    "distance_modulus",
    "knots",
    "neighbours",
    "psfs_for",
    "sample_magnitude",
    "sed_offsets",
]

_BANDS = "ugriz"
_WAVELENGTH = np.array([BAND_WAVELENGTH_NM[b] for b in _BANDS])

# Colours as m_band - m_r at z = 0 (u, g, r, i, z) and their change per unit redshift: a linear
# k-correction chosen by eye to approximate SDSS red-sequence, blue-cloud and HII-region colours
# (e.g. red sequence g - r 0.75 at z = 0 -> 0.95 at z = 0.1, as in the Blanton & Roweis 2007
# templates): redder with redshift, most in u and g.
SED_KINDS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "old": ((2.45, 0.75, 0.0, -0.40, -0.75), (3.0, 2.0, 0.0, -1.0, -1.5)),
    "young": ((1.20, 0.40, 0.0, -0.20, -0.30), (1.5, 1.0, 0.0, -0.5, -0.8)),
    "hii": ((0.80, 0.25, 0.0, -0.10, -0.10), (1.0, 0.7, 0.0, -0.3, -0.4)),
    # f_nu ~ nu^-0.5 power law (Vanden Berk et al. 2001 quasar continuum): bluer than any host.
    "agn": ((0.30, 0.15, 0.0, -0.10, -0.19), (0.0, 0.0, 0.0, 0.0, 0.0)),
}
_SED_SCATTER = {"old": 0.05, "young": 0.08, "hii": 0.08, "agn": 0.10}


def sed_offsets(kind: str, z: float, rng: np.random.Generator) -> np.ndarray:
    """Colours ``m_band - m_r`` (u, g, r, i, z) of one stellar population or nucleus.

    ``kind`` is a key of :data:`SED_KINDS` or ``"star"``. Galaxy colours are the table's
    z = 0 colours plus slope x z plus N(0, 0.05-0.1) mag scatter per band. Stars follow the
    SDSS stellar locus (Covey et al. 2007) parametrised by ``t ~ Beta(2, 2)`` from A to M.
    """
    if kind == "star":
        t = rng.beta(2.0, 2.0)
        g_r, u_g = 0.25 + 1.2 * t, min(0.9 + 1.6 * t, 2.8)
        r_i, i_z = 0.05 + 1.3 * t**2, 0.02 + 0.55 * t**2
        base = np.array([u_g + g_r, g_r, 0.0, -r_i, -r_i - i_z])
        return base + rng.normal(0.0, 0.04, 5) * (np.arange(5) != 2)
    zero, slope = (np.array(v) for v in SED_KINDS[kind])
    return zero + slope * z + rng.normal(0.0, _SED_SCATTER[kind], 5) * (np.arange(5) != 2)


def _fluxes(flux_r: float, colours: np.ndarray) -> np.ndarray:
    return flux_r * 10.0 ** (-0.4 * colours)


@lru_cache(maxsize=1)
def _cosmology_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=70.0, Om0=0.3)
    z = np.geomspace(1e-3, 5.0, 400)
    return z, cosmo.kpc_proper_per_arcmin(z).value / 60.0, cosmo.distmod(z).value


def distance_modulus(z: float) -> float:
    """Distance modulus at redshift ``z`` in a flat LambdaCDM (H0 = 70, Omega_m = 0.3)."""
    zs, _, dm = _cosmology_table()
    return float(np.interp(z, zs, dm))


def angular_size(kpc: float, z: float) -> float:
    """Angle in arcsec subtended by ``kpc`` proper kiloparsecs at redshift ``z``."""
    zs, kpc_per_arcsec, _ = _cosmology_table()
    return kpc / float(np.interp(z, zs, kpc_per_arcsec))


def _half_light(rng: np.random.Generator, mag_r: float, z: float, kind: str) -> float:
    """Half-light radius in arcsec from a size-luminosity relation at the object's redshift.

    After the SDSS relations of Shen et al. (2003): R50 ~ L^0.6 for early types (bulges) and
    ~ L^0.3 for discs, 4 and 5 kpc at M_r = -21.5, 0.12 dex log-normal scatter; clipped to
    0.3"-8" so objects stay on a 25" stamp. Higher redshift gives smaller angular sizes.
    """
    absolute = float(np.clip(mag_r - distance_modulus(z), -24.0, -17.0))
    r0, slope = (4.0, 0.6) if kind == "bulge" else (5.0, 0.3)
    kpc = r0 * 10.0 ** (-0.4 * slope * (absolute + 21.5) + rng.normal(0.0, 0.12))
    return float(np.clip(angular_size(kpc, z), 0.3, 8.0))


def sample_magnitude(rng: np.random.Generator, low: float, high: float, slope: float) -> float:
    """A magnitude from number counts ``N(<m) ~ 10^(slope m)`` truncated to ``[low, high]``."""
    span = 10.0 ** (slope * (high - low)) - 1.0
    return float(low + np.log10(1.0 + rng.random() * span) / slope)


def _angle(rng: np.random.Generator) -> galsim.Angle:
    return float(rng.uniform(0.0, np.pi)) * galsim.radians


def _bulge(hlr: float) -> galsim.GSObject:
    # Untruncated: GalSim's cached de Vaucouleurs k-table is reused for every radius.
    return galsim.DeVaucouleurs(half_light_radius=hlr, gsparams=GSPARAMS)


def _exponential(hlr: float) -> galsim.GSObject:
    return galsim.Exponential(half_light_radius=hlr, gsparams=GSPARAMS)


def _disk_q(cos_i: float, thickness: float = 0.12) -> float:
    """Projected axis ratio of an oblate disc of intrinsic thickness ``thickness`` at inclination i."""
    return float(np.sqrt(cos_i**2 + thickness**2 * (1.0 - cos_i**2)))


def knots(
    rng: np.random.Generator,
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    sigma: float,
    colours: np.ndarray,
    flux_r: float,
    q: float = 1.0,
    beta: galsim.Angle = 0.0 * galsim.radians,
) -> Part:
    """Gaussian knots at face-on positions ``(x, y)``, projected by axis ratio ``q`` at angle ``beta``.

    Knot fluxes are ``weights`` times a log-normal clumpiness factor (0.25 dex, the scatter of
    HII-region luminosities along arms), normalised to ``flux_r`` in r, all of one colour.
    """
    w = weights * 10.0 ** rng.normal(0.0, 0.25, len(x))
    # The area-preserving map galsim's shear(q, beta) applies, R(beta) diag(1/sqrt(q), sqrt(q)) R(-beta).
    c, s = np.cos(beta.rad), np.sin(beta.rad)
    u, v = (c * x + s * y) / np.sqrt(q), (-s * x + c * y) * np.sqrt(q)
    profile = galsim.Gaussian(sigma=sigma, gsparams=GSPARAMS).shear(q=q, beta=beta)
    return Part(profile, c * u - s * v, s * u + c * v, w / w.sum(), _fluxes(flux_r, colours))


def _arc(
    r_in: float, r_out: float, tan_pitch: float, phase: float, n: int, sign: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points along a logarithmic spiral from radius ``r_in`` to ``r_out``."""
    theta = np.linspace(0.0, np.log(r_out / r_in) / tan_pitch, n)
    radius = r_in * np.exp(theta * tan_pitch)
    phi = phase + sign * theta
    return radius * np.cos(phi), radius * np.sin(phi), radius


def _disc_galaxy(
    rng: np.random.Generator,
    flux_r: float,
    mag_r: float,
    z: float,
    cos_i: tuple[float, float],
    bulge_frac: tuple[float, float],
    arms: bool,
) -> tuple[list[Part], float, float, galsim.Angle]:
    """Bulge (de Vaucouleurs, old colours) + exponential disc (young colours), optional spiral arms.

    Arms: 2 (70%), 3 or 4 logarithmic arms with pitch U(10, 30) deg (typical of Sb-Sc spirals)
    from 0.4 to 2.2 disc half-light radii, holding U(0.3, 0.5) of the disc light in HII colours.
    Returns the parts, the disc half-light radius, axis ratio and position angle.
    """
    hlr = _half_light(rng, mag_r, z, "disk")
    q, beta = _disk_q(rng.uniform(*cos_i)), _angle(rng)
    f_bulge = rng.uniform(*bulge_frac)
    hlr_b = float(np.clip(hlr * rng.uniform(0.15, 0.35), 0.25, 3.0))
    bulge = _bulge(hlr_b).shear(q=max(q, rng.uniform(0.6, 0.95)), beta=beta)
    parts = [Part.single(bulge, _fluxes(f_bulge * flux_r, sed_offsets("old", z, rng)))]
    f_disk = (1.0 - f_bulge) * flux_r
    if arms:
        f_arms = rng.uniform(0.3, 0.5) * f_disk
        n_arms = int(rng.choice([2, 3, 4], p=[0.7, 0.2, 0.1]))
        tan_pitch, phase = np.tan(np.radians(rng.uniform(10.0, 30.0))), rng.uniform(0, 2 * np.pi)
        sigma = max(0.08 * hlr, 0.2)
        arcs = [_arc(0.4 * hlr, 2.2 * hlr, tan_pitch, phase + 2 * np.pi * arm / n_arms, 24) for arm in range(n_arms)]
        x, y, radius = (np.concatenate(v) for v in zip(*arcs))
        weights = radius * np.exp(-1.68 * radius / hlr)  # exponential-disc surface density x arc length
        parts.append(knots(rng, x, y, weights, sigma, sed_offsets("hii", z, rng), f_arms, q, beta))
        f_disk -= f_arms
    disk = _exponential(hlr).shear(q=q, beta=beta)
    parts.append(Part.single(disk, _fluxes(f_disk, sed_offsets("young", z, rng))))
    return parts, hlr, q, beta


def _normalise(parts: list[Part], flux_r: float) -> list[Part]:
    total = sum(float(p.flux[2]) for p in parts)
    return [p.scaled(flux_r / total) for p in parts]


def elliptical(rng: np.random.Generator, flux_r: float, mag_r: float, z: float) -> list[Part]:
    """de Vaucouleurs profile with axis ratio U(0.5, 1) (E0-E5) and old colours."""
    hlr, q = _half_light(rng, mag_r, z, "bulge"), rng.uniform(0.5, 1.0)
    profile = _bulge(hlr).shear(q=q, beta=_angle(rng))
    return [Part.single(profile, _fluxes(flux_r, sed_offsets("old", z, rng)))]


def spiral(rng: np.random.Generator, flux_r: float, mag_r: float, z: float) -> list[Part]:
    """Bulge fraction U(0.05, 0.45), cos(inclination) U(0.3, 1), spiral arms (:func:`_disc_galaxy`)."""
    parts = _disc_galaxy(rng, flux_r, mag_r, z, (0.3, 1.0), (0.05, 0.45), arms=True)[0]
    return _normalise(parts, flux_r)


def edge_on(rng: np.random.Generator, flux_r: float, mag_r: float, z: float) -> list[Part]:
    """Disc with cos(inclination) U(0, 0.15), bulge fraction U(0, 0.3), a dust lane in 60% of them.

    The lane is a negative, 0.35x thinner exponential with the same major-axis scale length,
    so its depth relative to the disc is the same all along the mid-plane: U(0.3, 0.6) in r,
    scaled as lambda^-1 (Cardelli et al. 1989) and capped at 0.85 (darker in u, g; never negative).
    """
    parts, hlr, q, beta = _disc_galaxy(rng, flux_r, mag_r, z, (0.0, 0.15), (0.0, 0.3), arms=False)
    if rng.random() < 0.6:
        thin = 0.35
        depth = np.minimum(rng.uniform(0.3, 0.6) * (_WAVELENGTH / BAND_WAVELENGTH_NM["r"]) ** -1.0, 0.85)
        lane = _exponential(hlr * np.sqrt(thin)).shear(q=q * thin, beta=beta)
        parts.append(Part.single(lane, -parts[-1].flux * depth * thin))
    return _normalise(parts, flux_r)


def point_source(rng: np.random.Generator, flux_r: float, mag_r: float, z: float) -> list[Part]:
    """A PSF-like nucleus: a star when ``z < 0.01``, else a quasar.

    Stars have stellar-locus colours. Quasars have power-law colours and, below z = 0.7 and
    in 60% of cases, a faint exponential host (half-light 2-6 kpc, U(0.05, 0.3) of the light).
    """
    if z < 0.01:
        return [Part.single(None, _fluxes(flux_r, sed_offsets("star", z, rng)))]
    parts = [Part.single(None, _fluxes(flux_r, sed_offsets("agn", z, rng)))]
    if z < 0.7 and rng.random() < 0.6:
        hlr = angular_size(rng.uniform(2.0, 6.0), z)
        host = _exponential(hlr).shear(q=rng.uniform(0.4, 1.0), beta=_angle(rng))
        host_flux = _fluxes(rng.uniform(0.05, 0.3) * flux_r, sed_offsets("old", z, rng))
        parts.append(Part.single(host, host_flux))
    return _normalise(parts, flux_r)


def dual_nucleus(rng: np.random.Generator, flux_r: float, mag_r: float, z: float) -> list[Part]:
    """A host with two point-like AGN cores 0.5"-3" apart (GOTHIC-like double nucleus).

    Host: an elliptical (50%) or a bulge+disc without arms. Cores: U(0.25, 0.5) of the light,
    flux ratio U(0.3, 1), separation U(0.5, 3) arcsec (the GOTHIC range at SDSS resolution),
    each with its own power-law colour; their midpoint sits N(0, 0.15") from the host centre.
    """
    if rng.random() < 0.5:
        host = elliptical(rng, flux_r, mag_r, z)
    else:
        host = _disc_galaxy(rng, flux_r, mag_r, z, (0.3, 1.0), (0.2, 0.6), arms=False)[0]
    f_cores, ratio, sep = rng.uniform(0.25, 0.5), rng.uniform(0.3, 1.0), rng.uniform(0.5, 3.0)
    angle, (cx, cy) = rng.uniform(0.0, 2 * np.pi), rng.normal(0.0, 0.15, 2)
    dx, dy = 0.5 * sep * np.cos(angle), 0.5 * sep * np.sin(angle)
    f1 = f_cores * flux_r / (1.0 + ratio)
    cores = [
        Part.single(None, _fluxes(f1, sed_offsets("agn", z, rng)), cx + dx, cy + dy),
        Part.single(None, _fluxes(f1 * ratio, sed_offsets("agn", z, rng)), cx - dx, cy - dy),
    ]
    return _normalise([p.scaled(1.0 - f_cores) for p in host] + cores, flux_r)


def merger(rng: np.random.Generator, flux_r: float, mag_r: float, z: float) -> list[Part]:
    """Two overlapping galaxies with tidal tails, and shells in 40% of them.

    Pair: flux ratio U(0.25, 1) (major mergers), each a bulge+disc with bulge fraction
    U(0.1, 0.9), separated by U(0.8, 2) mean half-light radii (1.5"-9"). Tails: one from the
    primary and, in 60% of cases, one from the secondary; open logarithmic arcs (pitch
    U(20, 45) deg) of broad knots out to 3-5 half-light radii holding U(0.15, 0.3) of the light.
    Shells: one or two concentric arcs around the primary with 3-8% of the light.
    """
    ratio = rng.uniform(0.25, 1.0)
    fa, fb = flux_r / (1.0 + ratio), flux_r * ratio / (1.0 + ratio)
    ma, mb = mag_r + 2.5 * np.log10(flux_r / fa), mag_r + 2.5 * np.log10(flux_r / fb)
    a, hlr_a, _, _ = _disc_galaxy(rng, fa, ma, z, (0.2, 1.0), (0.1, 0.9), arms=False)
    b, hlr_b, _, _ = _disc_galaxy(rng, fb, mb, z, (0.2, 1.0), (0.1, 0.9), arms=False)
    sep = float(np.clip(rng.uniform(0.8, 2.0) * 0.5 * (hlr_a + hlr_b), 1.5, 9.0))
    angle = rng.uniform(0.0, 2 * np.pi)
    ux, uy = np.cos(angle), np.sin(angle)
    pa, pb = (-sep * ratio / (1 + ratio), sep / (1 + ratio))  # light-weighted centre at the origin
    parts = [p.shifted(pa * ux, pa * uy) for p in a] + [p.shifted(pb * ux, pb * uy) for p in b]
    f_tails = rng.uniform(0.15, 0.3) * flux_r
    origins = [(pa, hlr_a)] + ([(pb, hlr_b)] if rng.random() < 0.6 else [])
    for offset, hlr in origins:
        tan_pitch, sign = np.tan(np.radians(rng.uniform(20.0, 45.0))), rng.choice([-1, 1])
        x, y, radius = _arc(
            0.5 * hlr, min(rng.uniform(3.0, 5.0) * hlr, 11.0), tan_pitch, rng.uniform(0, 2 * np.pi), 20, sign
        )
        tail = knots(
            rng,
            x,
            y,
            np.exp(-radius / (2.0 * hlr)),
            max(0.3 * hlr, 0.5),
            sed_offsets("young", z, rng),
            f_tails / len(origins),
        )
        parts.append(tail.shifted(offset * ux, offset * uy))
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(1, 3))):
            span, start = rng.uniform(1.5, 2.5), rng.uniform(0, 2 * np.pi)
            phi = start + np.linspace(0.0, span, 14)
            radius = rng.uniform(1.5, 2.5) * hlr_a
            shell = knots(
                rng,
                radius * np.cos(phi),
                radius * np.sin(phi),
                np.ones(14),
                max(0.08 * radius, 0.35),
                sed_offsets("old", z, rng),
                rng.uniform(0.03, 0.08) * flux_r,
            )
            parts.append(shell.shifted(pa * ux, pa * uy))
    return _normalise(parts, flux_r)


def ring(rng: np.random.Generator, flux_r: float, mag_r: float, z: float) -> list[Part]:
    """A bulge, a star-forming ring and a faint disc (collisional / resonance ring galaxy).

    Bulge: U(0.35, 0.55) of the light. Ring: radius U(2.5, 4) bulge half-light radii
    (2"-9"), Gaussian cross-section of width U(0.08, 0.15) x radius, U(0.3, 0.45) of the light
    in HII colours, as 16-60 overlapping knots. Disc: the rest, half-light 0.8 x ring radius.
    Ring and disc are inclined together (cos i ~ U(0.5, 1)).
    """
    hlr_b = float(np.clip(0.5 * _half_light(rng, mag_r, z, "bulge"), 0.4, 2.5))
    radius = float(np.clip(rng.uniform(2.5, 4.0) * hlr_b, 2.0, 9.0))
    sigma = max(rng.uniform(0.08, 0.15) * radius, 0.3)
    q, beta = _disk_q(rng.uniform(0.5, 1.0)), _angle(rng)
    f_bulge, f_ring = rng.uniform(0.35, 0.55), rng.uniform(0.3, 0.45)
    n = int(np.clip(2 * np.pi * radius / (1.2 * sigma), 16, 60))
    phi = np.linspace(0.0, 2 * np.pi, n, endpoint=False) + rng.normal(0.0, 0.05, n)
    bulge = _bulge(hlr_b).shear(q=rng.uniform(0.7, 1.0), beta=_angle(rng))
    disk = _exponential(0.8 * radius).shear(q=q, beta=beta)
    return _normalise(
        [
            Part.single(bulge, _fluxes(f_bulge * flux_r, sed_offsets("old", z, rng))),
            knots(
                rng,
                radius * np.cos(phi),
                radius * np.sin(phi),
                np.ones(n),
                sigma,
                sed_offsets("hii", z, rng),
                f_ring * flux_r,
                q,
                beta,
            ),
            Part.single(disk, _fluxes((1.0 - f_bulge - f_ring) * flux_r, sed_offsets("young", z, rng))),
        ],
        flux_r,
    )


BUILDERS = {
    "elliptical": elliptical,
    "spiral": spiral,
    "edge_on": edge_on,
    "point_source": point_source,
    "dual_nucleus": dual_nucleus,
    "merger": merger,
    "ring": ring,
}
"""Builder of each truth class: ``builder(rng, flux_r, mag_r, z) -> list[Part]``."""


def neighbours(rng: np.random.Generator, half_width: float, zero_point: float) -> list[Part]:
    """Unrelated sources in the stamp: Poisson(1.2) of them, none within 3" of the centre.

    60% stars with r from counts ~10^(0.3 m) on [16.5, 22.5] (high-latitude star counts);
    40% galaxies with r from ~10^(0.45 m) on [17.5, 22.5], half-light radius 0.8" x
    10^N(0, 0.2), exponential or de Vaucouleurs, redshift U(0.05, 0.5) for their colours.
    """
    parts = []
    for _ in range(int(rng.poisson(1.2))):
        x, y = rng.uniform(-half_width, half_width, 2)
        while np.hypot(x, y) < 3.0:
            x, y = rng.uniform(-half_width, half_width, 2)
        if rng.random() < 0.6:
            flux = 10.0 ** (-0.4 * (sample_magnitude(rng, 16.5, 22.5, 0.3) - zero_point))
            parts.append(Part.single(None, _fluxes(flux, sed_offsets("star", 0.0, rng)), x, y))
        else:
            flux = 10.0 ** (-0.4 * (sample_magnitude(rng, 17.5, 22.5, 0.45) - zero_point))
            old = rng.random() < 0.5
            hlr = 0.8 * 10.0 ** rng.normal(0.0, 0.2)
            shape = _bulge(hlr) if old else _exponential(hlr)
            shape = shape.shear(q=rng.uniform(0.3, 1.0), beta=_angle(rng))
            colours = sed_offsets("old" if old else "young", rng.uniform(0.05, 0.5), rng)
            parts.append(Part.single(shape, _fluxes(flux, colours), x, y))
    return parts


def psfs_for(rng: np.random.Generator, bands: str) -> tuple[list[galsim.GSObject], float]:
    """One Kolmogorov PSF per band for one object, and its r-band FWHM in arcsec.

    r-band FWHM: 1.35" x exp(N(0, 0.12)) clipped to [1.05, 1.8] (SDSS median r seeing ~1.3-1.4");
    Kolmogorov turbulence gives both the profile (core plus r^-11/3 wings) and the scaling of
    the other bands, FWHM ~ lambda^-0.2, times 1 + N(0, 0.02) per band; a small ellipticity
    shared by the bands, g1, g2 ~ N(0, 0.015) (guiding and optics).
    """
    fwhm_r = float(np.clip(1.35 * np.exp(rng.normal(0.0, 0.12)), 1.05, 1.8))
    g1, g2 = rng.normal(0.0, 0.015, 2)
    psfs = []
    for band in bands:
        chromatic = (BAND_WAVELENGTH_NM[band] / BAND_WAVELENGTH_NM["r"]) ** -0.2
        fwhm = fwhm_r * chromatic * (1.0 + rng.normal(0.0, 0.02))
        psfs.append(galsim.Kolmogorov(fwhm=fwhm, gsparams=GSPARAMS).shear(g1=g1, g2=g2))
    return psfs, fwhm_r
