"""The classroom kit: launch paths, slide marks, versions and licences, and the site checker.

The website, slides and handout themselves are built and checked by ``make site``, ``make
slides`` and ``make handout`` (tools/check_site.py); these tests check what those builds rely
on, and that the checker catches what it must.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import tomllib
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import check_binder  # noqa: E402
import check_site  # noqa: E402
import handout  # noqa: E402
import lesson_marks  # noqa: E402

LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION = PROJECT["version"]
REPOSITORY = PROJECT["urls"]["Repository"]
GITHUB = REPOSITORY.removeprefix("https://github.com/")


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_carries_its_colab_cell_and_slide_marks(path):
    stored = nbformat.read(path, as_version=4)
    marked = copy.deepcopy(stored)
    lesson_marks.apply(marked)
    assert marked == stored, f"{path.name}: run `python tools/lesson_marks.py {path}`"
    first_code = next(cell for cell in stored.cells if cell.cell_type == "code")
    assert first_code.source == lesson_marks.colab_source()
    headings = [c for c in stored.cells if c.cell_type == "markdown" and c.source.startswith("#")]
    assert sum(c.metadata.get("slideshow", {}).get("slide_type") == "slide" for c in headings) > 3


def test_slide_marks_follow_headings():
    cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_markdown_cell("## Step 1"),
        nbformat.v4.new_markdown_cell("### A detail"),
        nbformat.v4.new_markdown_cell("Plain prose with a # sign"),
        nbformat.v4.new_code_cell("# a comment, not a heading"),
    ]
    assert [lesson_marks.slide_type(c) for c in cells] == ["slide", "slide", "subslide", None, None]


def run_colab_cell(modules: dict) -> list[tuple]:
    """Run the Colab cell as IPython would, with ``modules`` loaded; return the magics it ran."""
    calls = []

    class FakeShell:
        def run_line_magic(self, name, line):
            calls.append((name, line))

    python = TransformerManager().transform_cell(lesson_marks.colab_source())
    saved = dict(sys.modules)
    sys.modules.update(modules)
    try:
        exec(python, {"get_ipython": FakeShell})
    finally:
        sys.modules.clear()
        sys.modules.update(saved)
    return calls


def test_colab_cell_does_nothing_outside_colab():
    assert "google.colab" not in sys.modules
    assert run_colab_cell({}) == []


def test_colab_cell_installs_this_version_on_colab():
    calls = run_colab_cell({"google.colab": type(sys)("google.colab")})
    assert len(calls) == 1
    name, line = calls[0]
    assert name == "pip" and line.startswith("install")
    assert f'"{PROJECT["name"]} @ git+{REPOSITORY}@v{VERSION}"' in line


def test_jupyterlab_is_an_extra_not_a_dependency():
    """Installing the package on Colab must not pull a JupyterLab that fights Colab's server."""
    names = [re.split(r"[<>=!~\[ ]", r)[0].lower() for r in PROJECT["dependencies"]]
    assert "jupyterlab" not in names and "notebook" not in names
    assert any(r.startswith("jupyterlab") for r in PROJECT["optional-dependencies"]["lab"])
    assert '".[lab,test,site]"' in (ROOT / "Makefile").read_text()


def test_a_plain_install_runs_a_lesson_from_another_folder(tmp_path):
    """What Colab does: a non-editable install, then a lesson run away from the repository."""
    wheels, target, lesson = tmp_path / "wheels", tmp_path / "site-packages", tmp_path / "lesson"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, ROOT], check=True
    )
    (wheel,) = wheels.glob("ssd_lesson-*.whl")
    assert wheel.name.startswith(f"ssd_lesson-{VERSION}-")
    subprocess.run([*pip, "install", "--no-deps", "--target", target, wheel], check=True)
    lesson.mkdir()
    notebook = nbformat.read(ROOT / "notebooks" / "01_anchors.ipynb", as_version=4)
    # Stop after the first figure: enough to import the package and draw with it.
    cut = next(i for i, c in enumerate(notebook.cells) if c.metadata.get("alt")) + 1
    notebook.cells = notebook.cells[:cut] + [
        nbformat.v4.new_code_cell("import ssd_lesson\nprint(ssd_lesson.__file__)")
    ]
    nbformat.write(notebook, lesson / "lesson.ipynb")
    script = (
        "import nbformat, sys\nfrom nbclient import NotebookClient\n"
        "nb = nbformat.read('lesson.ipynb', as_version=4)\n"
        "NotebookClient(nb, timeout=120, kernel_name='python3').execute()\n"
        "print(nb.cells[-1].outputs[0]['text'])\n"
    )
    env = {"PYTHONPATH": str(target), "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=lesson, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith(str(target)), result.stdout


def test_versions_and_addresses_agree():
    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(rf"^version: {re.escape(VERSION)}$", citation, re.M)
    assert f'repository-code: "{REPOSITORY}"' in citation
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.findall(r"^## (\d+\.\d+\.\d+)", changelog, re.M)[0] == VERSION
    site = (ROOT / "site" / "_config.yml").read_text()
    assert f'url: "{REPOSITORY}"' in site and f'branch: "v{VERSION}"' in site


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_readme_has_launch_buttons_for_each_lesson(path):
    readme = (ROOT / "README.md").read_text()
    colab = (
        f"https://colab.research.google.com/github/{GITHUB}/blob/v{VERSION}/notebooks/{path.name}"
    )
    binder = (
        f"https://mybinder.org/v2/gh/{GITHUB}/v{VERSION}?urlpath=lab/tree/notebooks/{path.name}"
    )
    assert f"]({colab})" in readme
    assert f"]({binder})" in readme


def test_constraints_pin_the_installed_torch_and_torchvision():
    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name in ("torch", "torchvision"):
        installed = importlib.metadata.version(name).split("+")[0]
        assert pins[name] == installed, f"stored outputs were made with {name} {pins[name]}"


def _conda_names(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [m.group(1) for line in lines if (m := re.match(r"^  - ([A-Za-z0-9_.-]+)", line))]


def test_binder_installs_the_environment_then_the_package_alone():
    binder = ROOT / "binder"
    names = _conda_names(binder / "environment.yml")
    assert set(names) - {"setuptools"} == set(_conda_names(ROOT / "environment.yml"))
    text = (binder / "environment.yml").read_text()
    assert "-e ." not in text and not re.search(r"^\s*- \.", text, re.M)  # no local path
    post_build = binder / "postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    assert "pip install --no-deps" in post_build.read_text()
    mode = subprocess.run(
        ["git", "ls-files", "-s", "binder/postBuild"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert not mode or mode.startswith("100755"), "git must keep postBuild executable"


def test_binder_order_check_fails_when_the_copy_comes_first():
    good = "RUN mamba env update --file binder/environment.yml\nCOPY --chown=0:0 src/ /repo/\n"
    bad = "COPY --chown=0:0 src/ /repo/\nRUN mamba env update --file binder/environment.yml\n"
    assert check_binder.order_problems(good) == []
    assert check_binder.order_problems(bad) != []
    assert check_binder.order_problems("COPY --chown=0:0 src/ /repo/\n") != []


def test_licences_and_project_files():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "CC BY 4.0" in (ROOT / "LICENSE-CONTENT.md").read_text()
    assert PROJECT["license"] == "MIT"
    assert set(PROJECT["license-files"]) == {"LICENSE", "LICENSE-CONTENT.md"}
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    for command in ("make test", "make notebooks", "make site", "make slides"):
        assert command in contributing
    lock = json.loads((ROOT / "site" / "package-lock.json").read_text())
    reveal = lock["packages"]["node_modules/reveal.js"]["version"]
    assert reveal.startswith("4."), "nbconvert's slide template is written for reveal.js 4"


def test_handout_numbers_come_from_the_package():
    from ssd_lesson.anchors import ssd300_anchors
    from ssd_lesson.inference import NMS_IOU_THRESHOLD, TOP_K
    from ssd_lesson.loss import NEG_POS_RATIO

    values = {what.split(" (")[0]: value for what, value, _ in handout.key_numbers()}
    assert values["Anchors of SSD300"] == f"{len(ssd300_anchors()):,}" == "8,732"
    assert "8,732 × 25 = 218,300" in " ".join(values.values())
    assert values["Hard negatives kept per positive"] == f"{NEG_POS_RATIO} : 1"
    assert values["Non-maximum suppression, per class, at IoU"] == str(NMS_IOU_THRESHOLD)
    assert values["Detections kept per image"] == f"top {TOP_K}"


def test_handout_figures_are_tagged_lesson_figures_with_alt_text(tmp_path):
    figures = handout.tagged_figures(LESSONS)
    assert len(figures) == 4
    assert all(png.startswith(b"\x89PNG") and len(alt) > 40 for _, alt, png, _ in figures)
    assert all(caption.endswith(".") for *_, caption in figures)
    page = handout.write_print_page(tmp_path / "handout.html").read_text()
    assert page.count("<img alt=") == 4 and "http" not in page


def problems_of(tmp_path: Path, html: str, other: str = "") -> list[str]:
    (tmp_path / "page.html").write_text(html)
    (tmp_path / "other.html").write_text(other or '<h1 id="top">Other</h1>')
    pages = {p.resolve(): check_site.parse(p) for p in tmp_path.glob("*.html")}
    return check_site.page_problems((tmp_path / "page.html").resolve(), pages, tmp_path.resolve())


def test_site_checker_accepts_a_clean_offline_page(tmp_path):
    html = (
        '<script src="_static/local.js"></script><a href="other.html#top">x</a>'
        '<a href="https://example.org">a link is not a load</a>'
        '<img src="other.html" alt="A real description">'
    )
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "local.js").write_text("")
    assert problems_of(tmp_path, html) == []


@pytest.mark.parametrize(
    ("html", "phrase"),
    [
        ('<script src="https://cdn.example.org/mathjax.js"></script>', "another host"),
        ('<link rel="stylesheet" href="//fonts.example.org/a.css">', "another host"),
        ('<a href="missing.html">x</a>', "missing file"),
        ('<a href="other.html#nowhere">x</a>', "missing anchor"),
        ('<img src="other.html">', "no alt text"),
        ('<img src="_images/a.png" alt="_images/a.png">', "no alt text"),
    ],
)
def test_site_checker_catches(tmp_path, html, phrase):
    found = problems_of(tmp_path, html)
    assert any(phrase in problem for problem in found), found


def test_site_checker_catches_remote_fonts_in_stylesheets(tmp_path):
    (tmp_path / "a.css").write_text("@font-face { src: url(https://fonts.example.org/x.woff2); }")
    assert check_site.stylesheet_problems(tmp_path)


def test_handout_check_counts_pdf_pages():
    assert check_site.pdf_pages(b"<< /Type /Pages /Count 2 >> << /Type /Page >> ") == 1
    assert check_site.pdf_pages(b"/Type /Page\n/Type/Page ") == 2


def _cells(row: str) -> int:
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


@pytest.mark.parametrize(
    "path",
    [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "teaching").glob("*.md"))],
    ids=lambda p: p.name,
)
def test_markdown_tables_have_as_many_columns_as_their_header(path):
    """GitHub shows a table only when its separator row has the header's columns."""
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines[1:], start=1):
        if re.fullmatch(r"\|(\s*:?-{3,}:?\s*\|)+", line.strip()):
            header = _cells(lines[number - 1])
            assert _cells(line) == header, f"{path.name}:{number + 1}: {line}"
            for row in lines[number + 1 :]:
                if not row.startswith("|"):
                    break
                assert _cells(row) == header, f"{path.name}: row {row[:60]}"
