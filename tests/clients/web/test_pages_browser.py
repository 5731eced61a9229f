"""The pages in a real browser (headless Chromium from the system, driven by Playwright) over a real
``ssald serve`` (an ingested synthetic survey with stamps, a tiny ONNX model, a stored map) and the web app
on a real uvicorn: search by objid -> the gallery shows k stamps -> "more like these" -> label 5 objects
with the keyboard -> the candidates list reflects the labels -> export a VOTable and parse it with astropy.
Screenshots of every page are saved under the test's tmp dir.

Without Chromium the test skips with how to install it, except where ``SSALD_REQUIRE_BROWSER=1`` (set by
``.ci/run``): there it fails.
"""

from __future__ import annotations

import io

import httpx
import numpy as np
from astropy.io import votable

from clients.client import SsaldClient
from tests.clients.web.conftest import chromium

K = 8
LABEL = "merger"


def test_search_gallery_examples_label_candidates_export(site, tmp_path):
    browser_path = chromium()
    from playwright.sync_api import sync_playwright

    url, query = site["url"], site["rows"][10]["objid"]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 900}, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(20_000)

        # Search by objid: the query and its K neighbours, every stamp loaded.
        page.goto(f"{url}/ui/#/search")
        page.fill("#search-form input[name=objid]", str(query))
        page.fill("#search-form input[name=k]", str(K))
        page.press("#search-form input[name=objid]", "Enter")
        cards = page.locator("#results .gallery > .card")
        cards.nth(K).wait_for()
        assert cards.count() == K + 1 and cards.first.get_attribute("data-objid") == str(query)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#results .gallery img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        with SsaldClient(site["address"]) as client:
            expected = [str(n.objid) for n in client.find_similar(query, K)]
        assert [cards.nth(i).get_attribute("data-objid") for i in range(1, K + 1)] == expected
        page.screenshot(path=shots / "1-search-gallery.png", full_page=True)

        # More like these (two positives), unlike that (one negative).
        cards.nth(1).locator("button.mark-pos").click()
        cards.nth(2).locator("button.mark-pos").click()
        cards.nth(3).locator("button.mark-neg").click()
        assert page.inner_text("#more-like-these") == "More like these (2+, 1−)"
        page.click("#more-like-these")
        more = page.locator("#more-results .gallery > .card")
        more.nth(K - 1).wait_for()
        with SsaldClient(site["address"]) as client:
            rocchio = client.find_similar_to_examples([int(expected[0]), int(expected[1])], [int(expected[2])], k=K)
        assert [more.nth(i).get_attribute("data-objid") for i in range(K)] == [str(n.objid) for n in rocchio]
        page.screenshot(path=shots / "2-more-like-these.png", full_page=True)

        # Label five objects with the keyboard: y n y n y; the batch of 5 is stored (and retrained) before
        # the page moves on.
        page.goto(f"{url}/ui/#/label")
        page.fill("#label-form input[name=label]", LABEL)
        page.fill("#label-form input[name=batch]", "5")
        page.click("#label-form button[type=submit]")
        page.locator("#label-objid").wait_for()
        page.evaluate("document.activeElement.blur()")  # the keys go to the page, not the form
        answered = []
        for i, key in enumerate("ynyny"):
            answered.append(page.inner_text("#label-objid").split()[1])
            page.keyboard.press(key)
            page.wait_for_function(f"() => document.querySelector('#n-given')?.textContent === '{i + 1}'")
        page.locator("#saved").wait_for()
        assert page.inner_text("#n-given") == "5" and page.inner_text("#n-positive") == "3"
        assert "retrained" in page.inner_text("#saved")
        page.screenshot(path=shots / "3-label.png", full_page=True)
        with SsaldClient(site["address"]) as client:
            assert client.stats()["label_counts"] == {LABEL: 3, f"not_{LABEL}": 2}

        # Candidates: the classifier trained on those labels, the labelled objects marked.
        page.goto(f"{url}/ui/#/candidates")
        page.fill("#candidates-form input[name=label]", LABEL)
        page.fill("#candidates-form input[name=n]", "300")
        page.click("#candidates-form button[type=submit]")
        page.locator("#candidates tbody tr").first.wait_for()
        assert "trained on 3 positive and 2 negative labels" in page.inner_text("#run")
        labelled = page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('#candidates tbody tr')]"
            ".filter(r => r.querySelector('.current-label').textContent)"
            ".map(r => [r.dataset.objid, r.querySelector('.current-label').textContent]))"
        )
        assert labelled == {o: (LABEL if k == "y" else f"not_{LABEL}") for o, k in zip(answered, "ynyny")}
        assert page.locator("#candidates td.known-mark:has-text('✓')").count() == 2  # the reference's two
        page.screenshot(path=shots / "4-candidates.png")
        shown = page.evaluate("() => [...document.querySelectorAll('#candidates tbody tr')].map(r => r.dataset.objid)")

        # Export the list as a VOTable and read it back.
        with page.expect_download() as download:
            page.click("a.export-votable")
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        table = votable.parse_single_table(str(saved)).to_table()
        assert saved.name == f"candidates-{LABEL}.vot" and [str(o) for o in table["objid"]] == shown
        assert np.all(np.diff(np.asarray(table["score"])) <= 0) and int(np.sum(table["known"])) == 2

        # The other pages render: anomalies, and the map from the stored coordinates.
        page.goto(f"{url}/ui/#/anomalies")
        page.locator(".gallery .card").first.wait_for()
        page.screenshot(path=shots / "5-anomalies.png", full_page=True)
        page.goto(f"{url}/ui/#/map?color_by=truth_class")
        page.wait_for_function("() => window.ssaldMapDrawn !== undefined")
        assert page.inner_text("#map-info").startswith(f"{len(site['rows'])} objects")
        box = page.locator("canvas#map").bounding_box()
        page.mouse.move(box["x"] + 5, box["y"] + 5)
        page.screenshot(path=shots / "6-map.png")
        browser.close()
    assert errors == []
    assert sorted(f.name for f in shots.iterdir()) == [
        "1-search-gallery.png", "2-more-like-these.png", "3-label.png",
        "4-candidates.png", "5-anomalies.png", "6-map.png",
    ]  # fmt: skip


def _page(playwright, browser_path: str):
    browser = playwright.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return browser, page, errors


def _gallery(page, k: int) -> list[str]:
    cards = page.locator("#results .gallery > .card")
    cards.nth(k - 1).wait_for()
    return [cards.nth(i).get_attribute("data-objid") for i in range(cards.count())]


def test_search_by_uploaded_stamp_by_filters_and_send_over_samp(site, hub, tmp_path):
    browser_path = chromium()
    from playwright.sync_api import sync_playwright

    url, rows = site["url"], site["rows"]
    stamp_file = site["survey"] / "stamps" / f"{rows[3]['objid']}.fits"
    query = rows[20]["objid"]
    with SsaldClient(site["address"]) as client:
        by_image = [str(n.objid) for n in client.find_similar_to_image(stamp_file.read_bytes(), k=6)]
        plain = client.find_similar(query, k=K)
        zs = sorted(n.z for n in plain if n.z is not None)
        z_max = zs[len(zs) // 2]  # some of the plain neighbours lie beyond
        mag_r_max = sorted(n.mag_r for n in plain if n.mag_r is not None)[-2]
        filters = {"z_max": z_max, "magnitudes": {"mag_r": (None, mag_r_max)}}
        filtered = [str(n.objid) for n in client.find_similar(query, k=K, exclude_radius_arcsec=3600, **filters)]
    assert filtered != [str(n.objid) for n in plain]
    received, arrived = hub
    with sync_playwright() as p:
        browser, page, errors = _page(p, browser_path)

        # Search by an uploaded FITS stamp: the client's neighbours of the same bytes.
        page.goto(f"{url}/ui/#/search?mode=image")
        page.set_input_files("#search-form input[name=image]", str(stamp_file))
        page.fill("#search-form input[name=k]", "6")
        page.click("#search-form button[type=submit]")
        assert _gallery(page, 6) == by_image
        page.screenshot(path=tmp_path / "upload.png", full_page=True)

        # Search by objid with a z range, a magnitude range and an exclusion radius from the form.
        page.goto(f"{url}/ui/#/search")
        page.fill("#search-form input[name=objid]", str(query))
        page.fill("#search-form input[name=k]", str(K))
        page.fill("#search-form input[name=exclude_radius]", "3600")
        page.fill("#search-form input[name=z_max]", repr(z_max))
        page.click("#magnitude-filters summary")
        page.fill("#search-form input[name=mag_r_max]", repr(mag_r_max))
        page.click("#search-form button[type=submit]")
        page.wait_for_function("() => location.hash.includes('mag_r_max=')")
        page.locator("#results .gallery > .card").first.wait_for()
        assert _gallery(page, len(filtered) + 1)[1:] == filtered  # the query's card, then its neighbours

        # Send the result to TOPCAT (a recording SAMP client): it loads this result's VOTable.
        page.click("#results button.samp-send")
        assert arrived.wait(10)
        page.wait_for_function("() => !document.querySelector('#results button.samp-send').disabled")
        assert page.inner_text("#results button.samp-send") == "sent to 1 SAMP client(s)"
        table = votable.parse_single_table(io.BytesIO(httpx.get(received[0]["url"]).content)).to_table()
        assert [str(o) for o in table["objid"]] == filtered and received[0]["url"].startswith(f"{url}/api/similar?")
        browser.close()
    assert errors == []


def test_map_lasso_selection_is_exported_and_labelled(site, tmp_path):
    browser_path = chromium()
    from matplotlib.path import Path as Polygon
    from playwright.sync_api import sync_playwright

    url = site["url"]
    with sync_playwright() as p:
        browser, page, errors = _page(p, browser_path)
        page.goto(f"{url}/ui/#/map?color_by=cluster")
        page.wait_for_function("() => window.ssaldMapDrawn !== undefined")
        page.select_option("#select-mode", "lasso")
        box = page.locator("canvas#map").bounding_box()
        at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in
              [(0.2, 0.2), (0.8, 0.3), (0.45, 0.85)]]  # fmt: skip
        page.keyboard.down("Shift")
        page.mouse.move(*at[0])
        page.mouse.down()
        for point in (*at[1:], at[0]):
            page.mouse.move(*point, steps=8)
        page.mouse.up()
        page.keyboard.up("Shift")
        page.locator("#selection-count").wait_for()
        selected = page.evaluate("() => window.ssaldMap.selected()")
        polygon = np.array(page.evaluate("() => window.ssaldMap.polygon"))
        assert page.inner_text("#selection-count") == f"{len(selected)} selected"
        page.screenshot(path=tmp_path / "lasso.png")

        # The selection is the points inside the lasso, fewer than inside its bounding box.
        with SsaldClient(site["address"]) as client:
            points = client.map_points()
        xy = np.column_stack([points.x, points.y]).astype(float)
        inside = points.objids[Polygon(polygon).contains_points(xy)]
        low, high = polygon.min(axis=0), polygon.max(axis=0)
        in_box = np.all((xy >= low) & (xy <= high), axis=1)
        assert sorted(selected) == sorted(str(o) for o in inside) and 0 < len(selected) < in_box.sum()

        # Export it through the API as a VOTable: the catalogue rows of the selection.
        with page.expect_download() as download:
            page.click("#export-selection-votable")
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        table = votable.parse_single_table(str(saved)).to_table()
        assert saved.name == "selection.vot" and [str(o) for o in table["objid"]] == selected
        assert np.all(np.isfinite(np.asarray(table["ra"]))) and "map_x" in table.colnames

        # Label it "no" for a label: every selected object gets not_ring.
        page.fill("#selection-label", "ring")
        page.select_option("#selection-polarity", "no")
        page.click("#label-selection")
        page.wait_for_function("() => document.querySelector('#label-selection').textContent.startsWith('labelled')")
        assert page.inner_text("#label-selection") == f"labelled {len(selected)} not_ring"
        browser.close()
    with SsaldClient(site["address"]) as client:
        assert client.stats()["label_counts"].get("not_ring") == len(selected)
    assert errors == []
