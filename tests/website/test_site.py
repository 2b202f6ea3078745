"""The built website as a reader meets it: math, images, animation, no outside requests, links."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _chapter_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f"{f}.html" for f in files if (ROOT / f"{f}.ipynb").exists()]


CHAPTERS = _chapter_pages()


class _Refs(HTMLParser):
    """Collects ids and the (tag, attribute, url) of every reference in a page."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key):
                self.refs.append((tag, key, attrs[key]))


def _parse(path: Path) -> _Refs:
    parser = _Refs()
    parser.feed(path.read_text(errors="replace"))
    return parser


def _pages(site: Path) -> list[Path]:
    """The site's HTML pages (not the theme's template fragments under _static/)."""
    return [p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts]


def test_every_internal_link_and_reference_resolves(site):
    pages = {p: _parse(p) for p in _pages(site)}
    broken = []
    for page, refs in pages.items():
        for tag, attr, url in refs.refs:
            parts = urlsplit(url)
            if parts.scheme or url.startswith(("//", "mailto:", "javascript:", "data:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: <{tag} {attr}={url!r}> (missing file)")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: <{tag} {attr}={url!r}> (missing anchor)")
    assert not broken, "\n".join(broken[:30])


def test_no_script_or_stylesheet_from_another_host(site):
    outside = []
    for page in _pages(site):
        for tag, attr, url in _parse(page).refs:
            external = bool(urlsplit(url).scheme in ("http", "https") or url.startswith("//"))
            if external and (tag == "script" or (tag == "link" and attr == "href" and url.endswith(".css"))
                             or tag == "img"):
                outside.append(f"{page.relative_to(site)}: <{tag} {attr}={url}>")
    assert not outside, "\n".join(outside[:20])


def test_chapters_are_in_the_site(site):
    assert len(CHAPTERS) >= 2
    for page in CHAPTERS:
        assert (site / page).exists(), page


def _open(browser, base_url, path):
    """Open a page, recording console errors and any request that leaves localhost (aborted)."""
    page = browser.new_page()
    errors, outside = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        host = urlsplit(r.request.url).hostname
        if r.request.url.startswith("data:") or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(f"{base_url}/{path}", wait_until="load")
    return page, errors, outside


# Every code block (cells and included library code; not printed output) and display equation
# fits its box (the browser test's window is 1280 px wide):
# dropdowns and hidden cells are opened first, so solutions and hidden code are measured too.
_WIDE_BLOCKS_JS = """() => {
  document.querySelectorAll('main details').forEach(d => { d.open = true; });
  const wide = [];
  for (const el of document.querySelectorAll('main pre')) {
    if (el.closest('.cell_output')) continue;  // printed output: a table may be wide
    if (el.scrollWidth > el.clientWidth + 1) {
      const line = el.innerText.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), '');
      wide.push(`code (${el.scrollWidth - el.clientWidth} px too wide): ${line.slice(0, 90)}`);
    }
  }
  for (const el of document.querySelectorAll('main mjx-container[display="true"]')) {
    if (el.scrollWidth > el.clientWidth + 1) {
      const label = (el.closest('div.math') || el).id || el.closest('section[id]')?.id;
      wide.push(`equation (${el.scrollWidth - el.clientWidth} px too wide) in #${label}`);
    }
  }
  return wide;
}"""


@pytest.mark.parametrize("path", CHAPTERS)
def test_chapter_page_in_a_real_browser(browser, base_url, site, path):
    page, errors, outside = _open(browser, base_url, path)
    page.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0", timeout=30_000)
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    page.evaluate("() => MathJax.startup.promise")
    prose = page.evaluate(
        """() => { const m = document.querySelector('main').cloneNode(true);
                   m.querySelectorAll('pre, code, .cell_input, .highlight').forEach(e => e.remove());
                   return m.innerText; }""")
    for raw in ("\\frac", "\\mathbb", "$$", "\\E_", "\\Dstar"):
        assert raw not in prose, f"untypeset TeX {raw!r} on {path}"
    assert page.locator("mjx-container merror, mjx-container [data-mjx-error]").count() == 0, "MathJax errors"
    images = page.evaluate(
        "() => Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth])")
    figures = page.locator(".cell_output img").count()  # a chapter's own figures, not the theme's logo
    assert figures > 0, f"{path} has no figures"
    bad = [src[:80] for src, complete, width in images if not (complete and width > 0)]
    assert not bad, f"images that did not load on {path}: {bad}"
    if 'class="animation"' in (site / path).read_text():  # a matplotlib animation player on the page
        assert page.locator(".anim-controls button").count() >= 5, "animation controls missing"
    assert not outside, f"requests leaving localhost from {path}: {outside[:5]}"
    assert not errors, f"console errors on {path}: {errors[:5]}"
    wide = page.evaluate(_WIDE_BLOCKS_JS)
    assert not wide, f"blocks that scroll sideways at 1280 px on {path}: {wide[:8]}"
    if path == CHAPTERS[-1]:
        shots = site.parent / "screenshots"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / (Path(path).stem + ".png")), full_page=False)
    page.close()


def test_click_through_the_table_of_contents(browser, base_url):
    page, errors, outside = _open(browser, base_url, "book/intro.html")
    links = page.locator("nav.bd-docs-nav a.reference.internal")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert len(hrefs) >= len(CHAPTERS)
    for i, href in enumerate(hrefs):
        page.locator("nav.bd-docs-nav a.reference.internal").nth(i).click()
        page.wait_for_load_state("load")
        assert page.url.split("#")[0].endswith(href.split("#")[0].lstrip("./")), (page.url, href)
        assert page.locator("main h1").count() >= 1, f"no heading on {page.url}"
    assert not outside and not errors, (outside[:5], errors[:5])
    page.close()


def test_search_finds_discriminator(browser, base_url):
    page, errors, outside = _open(browser, base_url, "search.html?q=discriminator")
    page.wait_for_function(
        "() => document.querySelectorAll('#search-results li').length > 0", timeout=30_000)
    text = page.locator("#search-results").inner_text()
    assert re.search(r"adversarial game|optimal discriminator", text, re.I), text[:300]
    assert not outside, outside[:5]
    page.close()


def test_execution_statistics_page_lists_every_chapter_as_run(site):
    """The execution table (myst-nb) names each chapter with its run time and a success mark."""
    text = (site / "book" / "execution.html").read_text()
    table = text[text.index("<table"):text.index("</table>")]
    for page in CHAPTERS:
        name = page.removesuffix(".html")
        row = re.search(re.escape(name) + r".*?</tr>", table, re.S)
        assert row, f"{name} is missing from the execution statistics"
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
        assert any(re.fullmatch(r"\s*[0-9]+(\.[0-9]+)?\s*", re.sub("<.*?>", "", c)) for c in cells), row.group(0)
        assert "\u2705" in row.group(0) or "&#9989;" in row.group(0), f"{name} did not run successfully"
