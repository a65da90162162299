"""Check a built website or slide deck: complete, accessible, and usable with no internet.

``python tools/check_site.py site`` checks build/site (``make site`` runs it after the build):
- every lesson has its page, and the page shows every figure the lesson stored (the explorers'
  PNG snapshots included), each with alt text;
- the glossary, the handout and an instructor guide per lesson have their pages;
- no page loads a script, stylesheet, font, image or frame from another host, and no
  stylesheet imports one;
- every internal link and ``#anchor`` resolves.
``python tools/check_site.py handout`` checks build/handout.pdf: one A4 page.
``python tools/check_site.py slides`` checks build/slides: one deck per lesson, several slides
each, every image with alt text, nothing loaded from another host, local files all present.
Exits non-zero with one line per problem.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SITE_HTML = ROOT / "build" / "site" / "_build" / "html"
SLIDES = ROOT / "build" / "slides"
# (tag, attribute) pairs whose URL the browser fetches when the page loads.
LOADS = {("script", "src"), ("img", "src"), ("iframe", "src"), ("source", "src")}
LOADS |= {("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data")}
FETCHED_LINKS = {"stylesheet", "preload", "modulepreload", "icon", "prefetch", "manifest"}


class Page(HTMLParser):
    """What a page loads, links to, names with ids, and its images with their alt text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.images: list[tuple[str, str | None]] = []  # (src, alt)
        self.sections = 0
        self.math = False
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        for name in ("id", "name"):
            if attributes.get(name):
                self.ids.add(attributes[name])
        for element, attribute in LOADS:
            if tag == element and attributes.get(attribute):
                self.loads.append(attributes[attribute])
        if tag == "link" and attributes.get("href"):
            rel = set((attributes.get("rel") or "").lower().split())
            (self.loads if rel & FETCHED_LINKS else self.links).append(attributes["href"])
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if tag == "img":
            self.images.append((attributes.get("src", ""), attributes.get("alt")))
        if tag == "section":
            self.sections += 1
        self.in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:  # an inline script that imports a module from a URL loads it
            imports = re.findall(r"""\bimport\b[^'"]*?['"]([^'"]+)['"]""", data)
            self.loads += [url for url in imports if is_remote(url)]
            return
        self.math = self.math or bool(re.search(r"\\\(|\\\[|\$\$", data))


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def is_remote(url: str) -> bool:
    return bool(urlsplit(url).netloc) or url.startswith("//")


def local_target(page_path: Path, url: str) -> tuple[Path | None, str]:
    """The file a local URL points to (None for the page itself) and its #fragment."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None, ""
    target = (page_path.parent / unquote(parts.path)).resolve() if parts.path else page_path
    if target.is_dir():
        target = target / "index.html"
    return target, parts.fragment


def page_problems(path: Path, pages: dict[Path, Page], root: Path) -> list[str]:
    """Remote loads, broken local links and images without alt text on one page."""
    page = pages[path]
    name = path.relative_to(root)
    problems = [f"{name}: loads {url} from another host" for url in page.loads if is_remote(url)]
    for url in page.loads + page.links:
        if is_remote(url) or url.startswith(("mailto:", "javascript:", "data:")):
            continue
        target, fragment = local_target(path, url)
        if not target.is_file():
            problems.append(f"{name}: link {url} points to a missing file")
        elif fragment and target.suffix == ".html":
            other = pages.get(target) or parse(target)
            if fragment not in other.ids and unquote(fragment) not in other.ids:
                problems.append(f"{name}: link {url} names a missing anchor #{fragment}")
    for src, alt in page.images:
        alt = (alt or "").strip()
        if not alt or alt == src or alt.endswith((".png", ".jpg", ".svg")):  # a file name is no alt
            shown = src if len(src) < 80 else src[:60] + "..."
            problems.append(f"{name}: image {shown} has no alt text")
    return problems


def stylesheet_problems(root: Path) -> list[str]:
    problems = []
    for css in root.rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        pattern = r"""(?:url\(\s*|@import\s+(?:url\(\s*)?)['"]?([^'")\s;]+)"""
        for url in re.findall(pattern, text):
            if is_remote(url):
                problems.append(f"{css.relative_to(root)}: fetches {url} from another host")
    return problems


def stored_figures(notebook: Path) -> int:
    """How many figures (PNG outputs) a lesson stores, the Colab cell aside."""
    count = 0
    for cell in nbformat.read(notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            count += "image/png" in output.get("data", {})
    return count


def lessons() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def check_site(root: Path = SITE_HTML) -> list[str]:
    if not (root / "index.html").is_file():
        return [f"{root}: no website here; run make site"]
    pages = {
        path.resolve(): parse(path)
        for path in root.rglob("*.html")
        if path.relative_to(root).parts[0] not in ("_static", "_sources")  # theme templates
    }
    problems = []
    expected = ["notebooks/glossary.html", "handout.html", "teaching/README.html"]
    for lesson in lessons():
        expected += [f"notebooks/{lesson.stem}.html", f"teaching/{lesson.stem}.html"]
        page = pages.get((root / "notebooks" / f"{lesson.stem}.html").resolve())
        if page is None:
            continue
        figures = [src for src, _ in page.images if "_images/" in src]
        if len(figures) < stored_figures(lesson):
            problems.append(
                f"notebooks/{lesson.stem}.html: shows {len(figures)} figures, "
                f"the lesson stores {stored_figures(lesson)}"
            )
        if page.math and not any("mathjax" in url for url in page.loads):
            problems.append(f"notebooks/{lesson.stem}.html: has equations but loads no MathJax")
    problems += [f"{name}: page missing" for name in expected if not (root / name).is_file()]
    for path in sorted(pages):
        problems += page_problems(path, pages, root.resolve())
    return problems + stylesheet_problems(root)


def check_slides(root: Path = SLIDES) -> list[str]:
    problems = []
    pages = {path.resolve(): parse(path) for path in root.glob("*.slides.html")}
    for lesson in lessons():
        page = pages.get((root / f"{lesson.stem}.slides.html").resolve())
        if page is None:
            problems.append(f"{lesson.stem}.slides.html: deck missing; run make slides")
        elif page.sections < 2:
            problems.append(f"{lesson.stem}.slides.html: only {page.sections} slide(s)")
    for path in sorted(pages):
        problems += page_problems(path, pages, root.resolve())
    return problems + stylesheet_problems(root)


def pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))


def check_handout(path: Path = ROOT / "build" / "handout.pdf") -> list[str]:
    if not path.is_file():
        return [f"{path}: no handout; run make handout"]
    pages = pdf_pages(path.read_bytes())
    return [] if pages == 1 else [f"{path.name}: {pages} pages, expected one"]


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "site"
    found = {"site": check_site, "slides": check_slides, "handout": check_handout}[what]()
    for problem in found:
        print(problem)
    if found:
        sys.exit(f"{what}: {len(found)} problem(s)")
    print(f"{what}: every check passed")
