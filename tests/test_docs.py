"""The documentation site builds strictly and works in a real browser: every page of the
navigation opens from file://, its images load, the API reference shows the functions the
README uses, and search is there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _nav_pages(nav: list) -> list[str]:
    pages = []
    for entry in nav:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def test_every_docs_page_is_in_the_navigation() -> None:
    """A page left out of mkdocs.yml's nav would be built but found by no one."""
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    pages = set(_nav_pages(config["nav"]))
    written = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert written == pages


def test_the_site_works_in_a_browser(site: Path, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    for page in _nav_pages(config["nav"]):
        html = site / page.replace(".md", ".html")
        browser.get(html.as_uri())
        assert "GenerateMore" in browser.title, page
        heading = browser.find_elements(By.CSS_SELECTOR, "article h1")
        assert heading and heading[0].text.strip(), f"{page} has no title"
        for img in browser.find_elements(By.CSS_SELECTOR, "article img"):
            # A large picture may still be decoding when the page says it has loaded.
            loaded = WebDriverWait(browser, 10).until(
                lambda b, img=img: (
                    b.execute_script(
                        "return arguments[0].complete && arguments[0].naturalWidth", img
                    )
                    or None
                )
            )
            assert loaded > 0, f"{page}: {img.get_attribute('src')} does not load"
    # The home page leads into the guide and the API by its navigation.
    browser.get((site / "index.html").as_uri())
    # (The theme's script builds the navigation after the page's load event.)
    anchors = WebDriverWait(browser, 10).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "nav a") or None
    )
    links = {a.get_attribute("href") for a in anchors}
    assert (site / "api.html").as_uri() in links and (
        site / "guide" / "training.html"
    ).as_uri() in links
    browser.get((site / "api.html").as_uri())
    for name in ("gm.api.load", "gm.api.evaluate", "gm.api.sample", "gm.models.build_model"):
        (entry,) = browser.find_elements(By.ID, name)
        assert name.rsplit(".", 1)[1] in entry.text
    assert browser.find_elements(By.CSS_SELECTOR, "input[type=search], .md-search__input")
