"""The support matrix page as a reader sees it, in headless Chromium.

The docs site is built (strictly, as ``make docs`` does) into a temporary folder and the page
loaded from it in Debian's Chromium, driven by Playwright, at two widths: a desktop window
(1400 px), where every case group's grid must fit without scrolling sideways, and a phone
(390 px), where each case's results stack as labelled marks and no text is cut. The browser
reaches nothing but the built files: every other request is refused. Screenshots go to
``test-artifacts/support-matrix/`` (ignored by git) for a person to look at.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from conformance.cases import CASES
from conformance.servers import VARIANTS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

ROOT = Path(__file__).parent.parent
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts" / "support-matrix"
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1024, "height": 768}
#: One grid per case group.
GROUP_COUNT = len({case.group for case in CASES})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs site, built as ``make docs`` builds it (strict), into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=True,
    )
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def only_local(route: Route) -> None:
    """The built files and loopback only: the theme's web fonts and the like are refused."""
    url = urlsplit(route.request.url)
    if url.scheme == "file" or url.hostname in {"127.0.0.1", "localhost"}:
        route.continue_()
    else:
        route.abort()


def open_page(browser: Browser, site: Path, viewport: dict[str, int]) -> Page:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.route("**/*", only_local)
    page = context.new_page()
    page.goto((site / "support-matrix" / "index.html").as_uri())
    page.wait_for_selector("table.wsd-grid")
    return page


@pytest.fixture(scope="module")
def desktop(browser: Browser, site: Path) -> Iterator[Page]:
    page = open_page(browser, site, DESKTOP)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def phone(browser: Browser, site: Path) -> Iterator[Page]:
    page = open_page(browser, site, PHONE)
    yield page
    page.context.close()


def shoot(page: Page, name: str, **options: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), animations="disabled", **options)


def overflow(page: Page) -> dict[str, int]:
    return page.evaluate(  # type: ignore[no-any-return]
        "({scroll: document.documentElement.scrollWidth,"
        " client: document.documentElement.clientWidth, body: document.body.scrollWidth})"
    )


#: For every grid: its box, its scrolled width, and each cell's box and visible mark.
GRIDS = """() => [...document.querySelectorAll('table.wsd-grid')].map(table => {
    const box = table.getBoundingClientRect();
    const heading = table.closest('.wsd-matrix').previousElementSibling;
    return {
        left: box.left, right: box.right, height: box.height,
        scrollWidth: table.parentElement.scrollWidth, clientWidth: table.parentElement.clientWidth,
        header: [...table.querySelectorAll('thead th.wsd-server')].map(th => th.innerText),
        cells: [...table.querySelectorAll('td.wsd-cell')].map(td => {
            const r = td.getBoundingClientRect();
            const shown = [...td.children].filter(c => c.getBoundingClientRect().width > 2);
            return {server: td.dataset.server, title: td.title, left: r.left, right: r.right,
                    shown: shown.map(c => c.innerText)};
        }),
    };
})"""

#: Elements whose content is wider than their box, or whose box leaves the window: cut text.
CUT = """() => {
    const width = document.documentElement.clientWidth;
    const cut = [];
    for (const el of document.querySelectorAll('.md-content *')) {
        const style = getComputedStyle(el);
        if (style.display === 'none' || style.visibility === 'hidden') continue;
        const box = el.getBoundingClientRect();
        if (box.width <= 1 || box.height <= 1) continue;  // visually hidden words for readers
        if (el.closest('.md-typeset__scrollwrap, pre')) continue;  // scrolled on purpose
        const clipped = style.overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 1;
        if (box.left < -0.5 || box.right > width + 0.5 || clipped) {
            cut.push(`${el.tagName}.${el.className}: ${el.innerText.slice(0, 60)}`);
        }
    }
    return cut;
}"""


def test_the_page_uses_the_full_width_without_overflow(desktop: Page) -> None:
    shoot(desktop, "desktop-top")
    shoot(desktop, "desktop-full", full_page=True)
    size = overflow(desktop)
    assert size["scroll"] <= size["client"] == DESKTOP["width"]
    assert size["body"] <= DESKTOP["width"]
    # The navigation and the table of contents are hidden on this page: the grids have the width.
    assert not desktop.locator(".md-sidebar--primary").is_visible()
    assert not desktop.locator(".md-sidebar--secondary").is_visible()
    content = desktop.locator("article").bounding_box()
    assert content is not None
    assert content["width"] > 0.9 * DESKTOP["width"]


def test_every_case_group_fits_on_one_screen(desktop: Page) -> None:
    grids = desktop.evaluate(GRIDS)
    assert len(grids) == GROUP_COUNT
    names = list(VARIANTS)
    for number, grid in enumerate(grids, 1):
        table = desktop.locator("table.wsd-grid").nth(number - 1)
        table.scroll_into_view_if_needed()
        table.screenshot(path=str(ARTIFACTS / f"desktop-group-{number}.png"), animations="disabled")
        assert grid["left"] >= 0
        assert grid["right"] <= DESKTOP["width"]
        assert grid["scrollWidth"] <= grid["clientWidth"], f"group {number} scrolls sideways"
        # Below the theme's header bar, the whole grid is in the window at once.
        assert grid["height"] <= DESKTOP["height"] - 48, f"group {number} is taller than a screen"
        assert [th.replace("\n", "-") for th in grid["header"]] == names
        assert {cell["server"] for cell in grid["cells"]} == set(names)
        for cell in grid["cells"]:
            assert cell["left"] >= 0
            assert cell["right"] <= DESKTOP["width"]
            # A mark (or an observation's words) is visible; the rest is in the title.
            assert len(cell["shown"]) == 1
            assert cell["shown"][0]
            assert cell["title"].startswith(f"{cell['server']}, ")


def test_a_case_opens_on_every_servers_result(desktop: Page) -> None:
    row = desktop.locator("tr#case-2-3")
    row.locator("summary").click()
    results = row.locator("ul.wsd-results li")
    results.first.wait_for(state="visible")
    assert results.count() == len(VARIANTS)
    assert row.locator("ul.wsd-results li b").all_inner_texts() == list(VARIANTS)
    row.screenshot(path=str(ARTIFACTS / "desktop-case-2-3-open.png"), animations="disabled")
    row.locator("summary").click()


def test_every_link_within_the_page_has_its_target(desktop: Page) -> None:
    missing = desktop.evaluate(
        """() => [...document.querySelectorAll('.md-content a[href^="#"]')]
            .map(a => decodeURIComponent(a.getAttribute('href').slice(1)))
            .filter(id => !document.getElementById(id))"""
    )
    assert missing == []
    # A server's column leads to what it gets wrong.
    desktop.locator("table.wsd-grid thead a[href='#granian']").first.click()
    assert desktop.locator("h3#granian").is_visible()
    shoot(desktop, "desktop-granian")


def test_a_laptop_width_keeps_every_grid_in_the_window(browser: Browser, site: Path) -> None:
    page = open_page(browser, site, LAPTOP)
    try:
        page.locator("table.wsd-grid").nth(1).scroll_into_view_if_needed()
        shoot(page, "laptop-group-2")
        size = overflow(page)
        assert size["scroll"] <= size["client"] == LAPTOP["width"]
        for grid in page.evaluate(GRIDS):
            assert grid["right"] <= LAPTOP["width"]
            assert grid["scrollWidth"] <= grid["clientWidth"]
    finally:
        page.context.close()


def test_the_server_bugs_links_follow_that_page(desktop: Page) -> None:
    links = desktop.evaluate(
        """() => [...document.querySelectorAll('.md-content a')]
            .filter(a => a.getAttribute('href').includes('server-bugs')).map(a => a.href)"""
    )
    if not (ROOT / "docs" / "server-bugs.md").exists():
        assert links == []
        return
    assert len(links) == len(VARIANTS), "docs/server-bugs.md is new: run make conformance"
    target = desktop.context.new_page()
    try:
        for link in links:
            address, _, anchor = link.partition("#")
            target.goto(address + ("index.html" if address.endswith("/") else ""))
            assert target.locator("h1").count() == 1, link
            if anchor:
                assert target.locator(f"[id='{anchor}']").count() == 1, link
    finally:
        target.close()


def test_the_phone_layout_stacks_each_case_and_cuts_nothing(phone: Page) -> None:
    shoot(phone, "phone-top")
    shoot(phone, "phone-full", full_page=True)
    size = overflow(phone)
    assert size["scroll"] <= size["client"] == PHONE["width"]
    assert size["body"] <= PHONE["width"]
    assert phone.evaluate(CUT) == []
    grids = phone.evaluate(GRIDS)
    assert len(grids) == GROUP_COUNT
    table = phone.locator("table.wsd-grid").nth(1)
    table.scroll_into_view_if_needed()
    shoot(phone, "phone-group-2")
    assert not phone.locator("table.wsd-grid thead").first.is_visible()
    for grid in grids:
        for cell in grid["cells"]:
            assert cell["left"] >= 0
            assert cell["right"] <= PHONE["width"]
            # Each result says its server: the mark (or the observation) and the server's name.
            assert cell["server"] in cell["shown"]
    # The results come below the case's title, not beside it.
    row = phone.locator("tr#case-2-3")
    title = row.locator("th.wsd-case").bounding_box()
    first = row.locator("td.wsd-cell").first.bounding_box()
    assert title is not None
    assert first is not None
    assert first["y"] >= title["y"] + title["height"] - 1
