"""The synthetic survey: determinism, file formats (docs/CONTRACTS.md), metadata and class balance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from ingest.synthetic import CLASSES, PREVALENCE, RARE_CLASSES, allocate_classes, load_gothic, simulate
from ingest.synthetic.sdss import decode_objid, decode_specobjid

GOTHIC = Path(__file__).resolve().parents[3].parent / "shared/data/catalogues/gothic_double_nuclei_681.csv"
COLUMNS = [
    "objid",
    "ra",
    "dec",
    "mag_u",
    "mag_g",
    "mag_r",
    "mag_i",
    "mag_z",
    "specobjid",
    "z",
    "z_err",
    "spec_class",
    "spec_subclass",
    "bpt_class",
    "truth_class",
]
N, SEED = 240, 3


def read_catalogue(path: Path) -> dict[str, np.ndarray]:
    """Raw columns as NumPy arrays (strings decoded, no masking of '' or NaN)."""
    with fits.open(path) as hdul:
        data = hdul[1].data
        return {
            name: (np.char.strip(data[name].astype(str)) if data[name].dtype.kind in "SU" else np.array(data[name]))
            for name in data.names
        }


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("survey2")
    summary = simulate(out, N, seed=SEED, workers=2, progress=False)
    return out, summary, read_catalogue(out / "catalogue.fits")


def test_same_seed_is_byte_identical_for_one_or_two_workers(survey, tmp_path):
    out, _, cat = survey
    summary = simulate(tmp_path, N, seed=SEED, workers=1, progress=False)
    assert summary.counts == survey[1].counts
    assert (tmp_path / "catalogue.fits").read_bytes() == (out / "catalogue.fits").read_bytes()
    names = sorted(p.name for p in (out / "stamps").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "stamps").iterdir())
    for name in names:
        assert (out / "stamps" / name).read_bytes() == (tmp_path / "stamps" / name).read_bytes(), name


def test_different_seed_gives_a_different_survey(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    simulate(a, 12, seed=4, workers=1, progress=False)
    simulate(b, 12, seed=5, workers=1, progress=False)
    cat_a, cat_b = read_catalogue(a / "catalogue.fits"), read_catalogue(b / "catalogue.fits")
    assert not np.array_equal(cat_a["objid"], cat_b["objid"])
    assert not np.array_equal(cat_a["mag_r"], cat_b["mag_r"])
    first_a = fits.getdata(a / "stamps" / f"{cat_a['objid'][0]}.fits")
    first_b = fits.getdata(b / "stamps" / f"{cat_b['objid'][0]}.fits")
    assert not np.array_equal(first_a, first_b)


def test_catalogue_matches_contract(survey):
    out, summary, cat = survey
    with fits.open(out / "catalogue.fits") as hdul:
        formats = {c.name: c.format for c in hdul[1].columns}
    assert list(formats) == COLUMNS
    assert formats["objid"] == formats["specobjid"] == "K"
    assert formats["ra"] == formats["dec"] == "D"
    assert all(formats[c] == "E" for c in ("mag_u", "mag_g", "mag_r", "mag_i", "mag_z", "z", "z_err"))
    assert all(formats[c].endswith("A") for c in ("spec_class", "spec_subclass", "bpt_class", "truth_class"))
    assert len(cat["objid"]) == N == summary.n
    assert summary.counts == {c: int(np.sum(cat["truth_class"] == c)) for c in CLASSES}
    assert set(cat["truth_class"]) == set(CLASSES)
    readme = (out / "README.txt").read_text()
    assert f"seed {SEED}" in readme and f"{N} objects" in readme


def test_stamps_match_contract(survey):
    out, _, cat = survey
    files = sorted((out / "stamps").glob("*.fits"))
    assert len(files) == N
    index = {int(o): i for i, o in enumerate(cat["objid"])}
    for path in files[:40]:
        with fits.open(path) as hdul:
            hdul.verify("exception")
            header, data = hdul[0].header, hdul[0].data
            assert len(hdul) == 1
        assert data.dtype == np.dtype(">f4") and data.shape == (5, 64, 64)
        assert np.all(np.isfinite(data))
        i = index[header["OBJID"]]
        assert path.name == f"{header['OBJID']}.fits"
        assert header["RA"] == pytest.approx(cat["ra"][i]) and header["DEC"] == pytest.approx(cat["dec"][i])
        assert header["BANDS"] == "u,g,r,i,z"
        assert [header[f"BAND{k}"] for k in range(1, 6)] == list("ugriz")
        assert header["PIXSCALE"] == 0.396 and header["SURVEY"] == "SYNTH"
        assert header["TRUTH"] == cat["truth_class"][i]


def test_sky_noise_level_and_sky_subtraction(survey):
    out, _, cat = survey
    corners = np.concatenate(
        [fits.getdata(out / "stamps" / f"{o}.fits")[:, :6, :6].reshape(5, -1) for o in cat["objid"][:60]], axis=1
    )
    # Sky-subtracted: the median corner pixel is near zero compared with the noise.
    assert np.all(np.abs(np.median(corners, axis=1)) < 0.2 * np.std(corners, axis=1))
    # r-band sky noise ~1.2 units per pixel at the default zero point (26.0).
    assert 0.8 < np.median(np.abs(corners[2])) / 0.6745 < 1.8


def test_objids_are_unique_sdss_layout_and_positions_on_stripe82(survey):
    _, _, cat = survey
    assert len(set(cat["objid"].tolist())) == N
    for objid in cat["objid"]:
        fields = decode_objid(int(objid))
        assert fields["sky_version"] == 2 and fields["rerun"] == 301
        assert 1 <= fields["camcol"] <= 6 and 94 <= fields["run"] <= 8162
    assert np.all(np.abs(cat["dec"]) <= 1.25)
    ra = (cat["ra"] - 310.0) % 360.0
    assert np.all(ra <= 110.0)


def test_spectroscopic_metadata(survey):
    _, _, cat = survey
    has = cat["specobjid"] != 0
    assert 0.75 < has.mean() < 0.95
    assert np.all(has[cat["truth_class"] == "dual_nucleus"])
    assert len(set(cat["specobjid"][has].tolist())) == has.sum()
    for value in cat["specobjid"][has][:20]:
        assert decode_specobjid(int(value))["run2d"] >= 26
    assert np.all(np.isnan(cat["z"][~has])) and np.all(np.isnan(cat["z_err"][~has]))
    assert np.all(cat["spec_class"][~has] == "") and np.all(cat["bpt_class"][~has] == "")
    assert np.all(np.isfinite(cat["z"][has])) and np.all(cat["z_err"][has] > 0)
    assert set(cat["spec_class"][has]) <= {"GALAXY", "QSO", "STAR"}
    assert set(cat["bpt_class"]) <= {"", "star-forming", "composite", "LINER", "Seyfert"}
    point = cat["truth_class"] == "point_source"
    assert set(cat["spec_class"][has & point]) <= {"QSO", "STAR"}
    assert np.all(cat["bpt_class"][point] == "")
    galaxy = has & ~point & (cat["truth_class"] != "dual_nucleus")
    assert np.all(cat["spec_class"][galaxy] == "GALAXY")
    assert np.all((cat["z"][galaxy] > 0.019) & (cat["z"][galaxy] < 0.251))
    qso = cat["spec_class"] == "QSO"
    assert np.all((cat["z"][qso & point] >= 0.09) & (cat["z"][qso & point] <= 2.21))


def test_magnitudes_follow_the_rendered_flux(survey):
    _, _, cat = survey
    mags = np.stack([cat[f"mag_{b}"] for b in "ugriz"])
    assert np.all(np.isfinite(mags))
    assert np.all((cat["mag_r"] >= 14.5) & (cat["mag_r"] <= 17.7))
    colour = cat["mag_g"] - cat["mag_r"]
    truth = cat["truth_class"]
    assert np.median(colour[truth == "elliptical"]) > np.median(colour[truth == "spiral"])


def test_catalogue_flux_equals_stamp_flux_for_point_sources(survey):
    out, _, cat = survey
    ratios = []
    point = cat["truth_class"] == "point_source"
    for objid, mag in zip(cat["objid"][point], cat["mag_r"][point]):
        stamp = fits.getdata(out / "stamps" / f"{objid}.fits")[2].astype(float)
        centre = stamp[22:42, 22:42].sum()  # 8" box: neighbours are kept 3" or more away, mostly outside
        ratios.append(centre / 10 ** (-0.4 * (mag - 26.0)))
    assert 0.9 < np.median(ratios) < 1.02


def test_class_allocation_is_exact_and_keeps_rare_classes():
    for n in (200, 201, 333, 600, 1000, 5000):
        classes = allocate_classes(n, seed=1)
        counts = {c: int(np.sum(classes == c)) for c in CLASSES}
        assert sum(counts.values()) == n
        assert all(counts[c] >= 1 for c in RARE_CLASSES)
        for name, count in counts.items():
            assert abs(count - PREVALENCE[name] * n) <= 1.0, (n, name, count)
    assert sum(PREVALENCE.values()) == pytest.approx(1.0)
    np.testing.assert_array_equal(allocate_classes(500, seed=2), allocate_classes(500, seed=2))
    assert not np.array_equal(allocate_classes(500, seed=2), allocate_classes(500, seed=3))


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Mann-Whitney AUC: P(a positive scores above a negative)."""
    ranks = np.concatenate([positive, negative]).argsort().argsort() + 1
    return float(
        (ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2) / (len(positive) * len(negative))
    )


@pytest.mark.skipif(not GOTHIC.exists(), reason="shared GOTHIC catalogue not present")
def test_total_flux_does_not_separate_dual_nuclei_and_gothic_metadata(tmp_path):
    # r band only to keep this fast; the class models and the flux draw are the same.
    simulate(tmp_path, 2000, seed=11, bands="r", progress=False, gothic_csv=GOTHIC)
    cat = read_catalogue(tmp_path / "catalogue.fits")
    flux = np.array([fits.getdata(tmp_path / "stamps" / f"{o}.fits")[0].sum() for o in cat["objid"]], float)
    dual = cat["truth_class"] == "dual_nucleus"
    assert dual.sum() == 16
    assert 0.25 < auc(flux[dual], flux[~dual]) < 0.75
    assert 0.25 < auc(-cat["mag_r"][dual], -cat["mag_r"][~dual]) < 0.75
    gothic = load_gothic(GOTHIC)
    assert set(np.round(cat["z"][dual], 3)) <= set(np.round(gothic["z"].astype(np.float32), 3))
    assert set(cat["bpt_class"][dual]) <= set(gothic["bpt_class"])


def test_load_gothic_reads_primary_components():
    assert GOTHIC.exists(), f"the shared GOTHIC catalogue must sit beside the repo at {GOTHIC}"
    gothic = load_gothic(GOTHIC)
    assert len(gothic["z"]) == 681
    assert set(gothic["bpt_class"]) == {"", "star-forming", "composite", "LINER", "Seyfert"}
    assert set(gothic["spec_class"]) == {"GALAXY", "QSO"}
    assert 0.08 < np.median(gothic["z"]) < 0.11


def test_load_gothic_names_missing_columns(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Number,Redshift\n1,0.1\n")
    with pytest.raises(ValueError, match="lacks column"):
        load_gothic(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be"),
        ({"n": 2.5}, "n must be"),
        ({"seed": -1}, "seed must be"),
        ({"stamp_size": 8}, "stamp_size must be"),
        ({"bands": ""}, "bands must be"),
        ({"bands": "ugrx"}, "bands must be"),
        ({"bands": "gg"}, "bands must be"),
        ({"workers": 0}, "workers must be"),
        ({"zero_point": float("nan")}, "zero_point must be"),
    ],
)
def test_bad_arguments_raise_value_error_before_writing(tmp_path, kwargs, message):
    args = {"n": 5} | kwargs
    with pytest.raises(ValueError, match=message):
        simulate(tmp_path / "out", progress=False, **args)
    assert not (tmp_path / "out").exists()


def test_leftover_stamps_without_catalogue_need_overwrite(tmp_path):
    (tmp_path / "stamps").mkdir()
    (tmp_path / "stamps" / "1.fits").write_bytes(b"")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        simulate(tmp_path, 2, workers=1, progress=False, bands="r", stamp_size=16)
    simulate(tmp_path, 2, workers=1, progress=False, bands="r", stamp_size=16, overwrite=True)
    assert not (tmp_path / "stamps" / "1.fits").exists()


def test_existing_survey_needs_overwrite(tmp_path):
    simulate(tmp_path, 5, seed=0, workers=1, progress=False, bands="r", stamp_size=16)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        simulate(tmp_path, 5, seed=0, workers=1, progress=False)
    simulate(tmp_path, 3, seed=1, workers=1, progress=False, bands="gr", stamp_size=16, overwrite=True)
    assert len(list((tmp_path / "stamps").glob("*.fits"))) == 3
    assert len(read_catalogue(tmp_path / "catalogue.fits")["objid"]) == 3
    header = fits.getheader(next((tmp_path / "stamps").glob("*.fits")))
    assert header["BANDS"] == "g,r" and header["NAXIS3"] == 2 and header["NAXIS1"] == 16
