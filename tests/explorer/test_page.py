"""The explorer's page in a real browser: headless Chromium opens it from file:// with no
console errors; hovering a character shows its top-5 in each mode; picking a unit redraws
the colours; a screenshot is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_script


@pytest.fixture(scope="module")
def page(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("explore") / "explore.html"
    proc = run_script("gm.explore", f"ckpt={trained_run}", f"out={out}", "chars=600")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"explorer: {out}"
    return out


def test_bad_input_is_one_sentence(trained_run: Path, tmp_path: Path) -> None:
    mine = tmp_path / "notes.html"
    mine.write_text("mine")
    figure = tmp_path / "new_gates.png"  # where a page named new.html would put its figure
    figure.write_text("mine too")
    for args, needle in (
        ([f"out={mine}"], "is not an explorer page"),
        ([f"out={tmp_path / 'new.html'}"], "is no explorer page's"),
        (["layer=5"], "the model has 1 layers"),
        (["chars=abc"], "chars must be an integer"),
        (["nonsense"], "is not KEY=VALUE"),
    ):
        proc = run_script("gm.explore", f"ckpt={trained_run}", *args)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
    assert mine.read_text() == "mine" and figure.read_text() == "mine too"


@pytest.mark.slow
def test_the_page_works_in_a_browser(page: Path, browser) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get_log("browser")  # (what pages opened before this one logged)
    browser.get(page.as_uri())
    spans = browser.find_elements(By.CSS_SELECTOR, "#text span")
    assert len(spans) == 600
    ActionChains(browser).move_to_element(spans[40]).perform()
    tip = browser.find_element(By.ID, "tip")
    assert tip.is_displayed() and tip.get_attribute("data-i") == "40"
    rows = tip.find_elements(By.CSS_SELECTOR, "tr")[1:]
    assert len(rows) == 3 and all(row.text.count("%") == 5 for row in rows)
    # A unit from the list: the view switches to it and the colours change with the unit.
    first = browser.find_element(By.CSS_SELECTOR, "#units li")
    first.click()
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-view") == "unit"
    before = [s.value_of_css_property("background-color") for s in spans[:200]]
    unit = browser.find_element(By.ID, "unit")
    unit.clear()
    unit.send_keys(str((int(first.get_attribute("data-unit")) + 1) % 128))
    after = [s.value_of_css_property("background-color") for s in spans[:200]]
    assert before != after
    # The gates' table, and their figure beside the page, loaded.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#gates tr")) == 3  # header, r, z
    img = browser.find_element(By.CSS_SELECTOR, "img[alt='gate saturation']")
    assert browser.execute_script("return arguments[0].naturalWidth", img) > 0
    shot = page.with_suffix(".png")
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_a_bundle_is_explored_like_its_run(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle.html"
    proc = run_script("gm.explore", f"ckpt={trained_run / 'export'}", f"out={out}", "chars=300")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "<title>gm explorer: astra_alpha</title>" in out.read_text()  # its record's name
    assert (tmp_path / "bundle_gates.png").stat().st_size > 0
