"""The built site as a person uses it: a real headless Chromium (Playwright) against the site served by
``python -m http.server`` (and from ``file://``), plus the Nu HTML checker over every page.

Screenshots go to ``tests/artifacts/`` (git-ignored). Skipped only where Chromium or Java is missing
locally; under CI (``CI`` set) a missing tool is a failure, since ``.ci/install-tools`` installs them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_site import REPO_ROOT, build_real

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
VNU = REPO_ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing; .ci/install-tools installs it in CI")
    pytest.skip(f"{what} is not installed here (CI installs it with .ci/install-tools)")


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    return build_real(tmp_path_factory)


@pytest.fixture(scope="session")
def server(site: Path):
    """The site served over HTTP on a free local port, as a static host would."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(site)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "index.html", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.terminate()
                raise RuntimeError("http.server did not start") from None
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        _missing("Chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page whose console errors, page errors and failed requests are recorded."""

    def __init__(self, browser, **context_options) -> None:
        self.context = browser.new_context(**context_options)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda msg: self.errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on("requestfailed", self._failed)

    def _failed(self, request) -> None:
        if "ERR_ABORTED" not in (request.failure or ""):  # a navigation cancels what the last page was loading
            self.errors.append(f"request failed: {request.url} ({request.failure})")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser):
    items: list[Watched] = []

    def make(**options) -> Watched:
        w = Watched(browser, **options)
        items.append(w)
        return w

    yield make
    for w in items:
        w.close()


def _authority_mentioned_in_an_update() -> tuple[str, str]:
    """(authority slug, its label) for an authority that some update section mentions."""
    import pyoxigraph as ox

    from emkg.load import load_graph
    from emkg.project import open_project

    project = open_project(REPO_ROOT)
    store = load_graph(project).store
    rows = list(store.query(f"""
        PREFIX emkg: <{project.ontology_iri}>
        PREFIX schema: <https://schema.org/>
        PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        SELECT DISTINCT ?a ?label WHERE {{
          ?section a emkg:UpdateSection ; schema:mentions ?a .
          ?a a/rdfs:subClassOf* emkg:LocalAuthority ; rdfs:label ?label .
        }} ORDER BY ?a LIMIT 1"""))
    assert rows, "no update mentions a local authority"
    iri = rows[0][0].value
    assert isinstance(rows[0][0], ox.NamedNode)
    return iri[len(project.id_base + "authority/"):], rows[0][1].value


def test_search_for_rutland_reaches_its_council(server: str, watched) -> None:
    w = watched()
    page = w.page
    page.goto(server + "index.html")
    page.fill("#site-search-q", "Rutland")
    page.press("#site-search-q", "Enter")
    page.wait_for_url("**/search/index.html?q=Rutland")
    results = page.locator("#search-results")
    results.get_by_role("link", name="Rutland County Council", exact=True).first.click()
    page.wait_for_url("**/id/authority/rutland-county-council/index.html")
    assert page.locator("h1").inner_text() == "Rutland County Council"
    assert w.errors == []


def test_from_an_authority_to_an_update_and_back(server: str, watched) -> None:
    slug, label = _authority_mentioned_in_an_update()
    w = watched()
    page = w.page
    page.goto(server + f"id/authority/{slug}/index.html")
    assert page.locator("h1").inner_text() == label
    involvement = page.locator("section[aria-labelledby='h-involvement']")
    link = involvement.locator("a[href*='id/update/']").first
    update_title = link.inner_text()
    link.click()
    page.wait_for_url("**/id/update/*/index.html")
    assert page.locator("h1").inner_text() == update_title
    back = page.locator(f"main a[href$='id/authority/{slug}/index.html']").first
    assert back.count() == 1, "the update links the authority it mentions"
    back.click()
    page.wait_for_url(f"**/id/authority/{slug}/index.html")
    assert page.locator("h1").inner_text() == label
    assert w.errors == []


def test_screenshots_and_small_screens(server: str, watched) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    slug, _label = _authority_mentioned_in_an_update()
    shots = {"home": "index.html", "authority": f"id/authority/{slug}/index.html"}
    wide = watched(viewport={"width": 1280, "height": 900})
    for name, rel in shots.items():
        wide.page.goto(server + rel)
        wide.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    narrow = watched(viewport={"width": 360, "height": 740}, device_scale_factor=1)
    for name, rel in {**shots, "update": "id/update/2019-09/index.html", "authorities": "authorities/index.html",
                      "ontology": "def/index.html", "search": "search/index.html?q=council"}.items():
        narrow.page.goto(server + rel)
        width = narrow.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{rel} is {width}px wide at a 360px viewport"
        if name in shots:
            narrow.page.screenshot(path=str(ARTIFACTS / f"{name}-360.png"), full_page=True)
    for name in shots:
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000
    assert wide.errors == [] and narrow.errors == []


def test_works_from_file_urls(site: Path, watched) -> None:
    w = watched()
    page = w.page
    page.goto(site.joinpath("index.html").as_uri())
    page.get_by_role("link", name="Authorities", exact=True).first.click()
    page.wait_for_url("**/authorities/index.html")
    page.get_by_role("link", name="Rutland County Council", exact=True).first.click()
    assert page.locator("h1").inner_text() == "Rutland County Council"
    page.fill("#site-search-q", "Derby")
    page.press("#site-search-q", "Enter")
    page.wait_for_url("**/search/index.html?q=Derby")
    assert page.locator("#search-results li").count() > 0
    assert page.locator("link[rel=stylesheet]").count() == 1
    assert page.evaluate("getComputedStyle(document.querySelector('.site-header')).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert [e for e in w.errors if "favicon" not in e] == []


def test_no_console_errors_across_the_site(server: str, site: Path, watched) -> None:
    w = watched()
    pages = ["index.html", "authorities/index.html", "updates/index.html", "programmes/index.html", "people/index.html",
             "organisations/index.html", "events/index.html", "publications/index.html", "themes/index.html",
             "glossary/index.html", "views/index.html", "def/index.html", "quality/index.html", "search/index.html?q=send",
             "id/update/2018-06/index.html", "def/LocalAuthority/index.html", "dataset/index.html"]
    pages += sorted(str(p.relative_to(site)) for p in (site / "views").glob("*.html"))[:3]
    for rel in pages:
        response = w.page.goto(server + rel)
        assert response is not None and response.status == 200, rel
    assert w.errors == []


def test_search_without_javascript_lists_everything(server: str, watched) -> None:
    w = watched(java_script_enabled=False)
    page = w.page
    page.goto(server + "index.html")
    page.fill("#site-search-q", "Rutland")
    page.press("#site-search-q", "Enter")
    page.wait_for_url("**/search/index.html?q=Rutland")
    listing = page.locator("#search-all")
    assert listing.is_visible()
    listing.get_by_role("link", name="Rutland County Council", exact=True).click()
    assert page.locator("h1").inner_text() == "Rutland County Council"


def test_keyboard_skip_link_and_print_layout(server: str, watched) -> None:
    w = watched()
    page = w.page
    page.goto(server + "index.html")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip-link"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    page.emulate_media(media="print")
    assert not page.locator(".site-nav").is_visible()
    assert not page.locator(".site-search").is_visible()


def test_nu_html_checker_reports_no_errors(site: Path) -> None:
    if shutil.which("java") is None:
        _missing("Java (default-jre-headless)")
    if not VNU.is_file():
        _missing(f"the Nu HTML checker ({VNU.relative_to(REPO_ROOT)}, npm vnu-jar)")
    done = subprocess.run(["java", "-jar", str(VNU), "--errors-only", "--skip-non-html", str(site)],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[:5000]
