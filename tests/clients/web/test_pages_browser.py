"""The pages in a real browser (headless Chromium from the system, driven by Playwright) over a real
``ssald serve`` (an ingested synthetic survey with stamps, a tiny ONNX model, a stored map) and the web app
on a real uvicorn: search by objid -> the gallery shows k stamps -> "more like these" -> label 5 objects
with the keyboard -> the candidates list reflects the labels -> export a VOTable and parse it with astropy.
Screenshots of every page are saved under the test's tmp dir.

Without Chromium the test skips with how to install it, except where ``SSALD_REQUIRE_BROWSER=1`` (set by
``.ci/run``): there it fails.
"""

from __future__ import annotations

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
