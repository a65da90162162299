"""Every lesson uses only words its own lesson or an earlier one has introduced.

The glossary (notebooks/glossary.md) says which lesson introduces each term. These tests read the
prose (markdown cells) of every lesson and fail when a lesson uses a term, or one of its other
names, before the lesson that introduces it.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "notebooks" / "glossary.md"
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def glossary() -> list[tuple[list[str], str]]:
    """(names of a term: the term first, then its other names; the lesson that introduces it)."""
    rows = []
    for line in GLOSSARY.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("Term", "") or set(cells[0]) <= {"-"}:
            continue
        term, aliases, lesson, meaning = cells
        assert meaning, f"glossary: {term} has no meaning"
        names = [term] + [a.strip() for a in aliases.split(";") if a.strip()]
        rows.append((names, lesson))
    return rows


def pattern(name: str) -> re.Pattern:
    """A name as a word (plural or verb endings allowed); acronyms such as IoU match their case."""
    words = r"\s+".join(re.escape(word) for word in name.split())
    flags = 0 if any(c.isupper() for c in name) else re.IGNORECASE
    return re.compile(rf"(?<![\w-]){words}(?:s|es|d|ed|ing)?(?![\w-])", flags)


def prose(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    text = re.sub(r"```.*?```", " ", text, flags=re.S)  # code blocks in prose are code
    return re.sub(r"\(https?://[^)]*\)|<[^>]+>", " ", text)  # link targets and HTML tags


def test_glossary_has_enough_terms_each_with_a_lesson():
    rows = glossary()
    assert len(rows) >= 40
    lessons = {path.name[:2] for path in LESSONS}
    for names, lesson in rows:
        assert lesson == "—" or lesson in lessons, f"{names[0]}: no lesson {lesson}"
    all_names = [name.lower() for names, _ in rows for name in names]
    repeated = {name for name in all_names if all_names.count(name) > 1}
    assert not repeated, f"names listed twice: {sorted(repeated)}"


def early_uses(text: str, lesson: str) -> list[str]:
    """Terms (and other names) in ``text`` that a later lesson introduces."""
    found = []
    # Longest names first, and blanked once found: "mean average precision" must not also count
    # as "average precision".
    names = sorted(
        ((n, lesson_, ns[0]) for ns, lesson_ in glossary() for n in ns), key=lambda x: -len(x[0])
    )
    for name, introduced, term in names:
        regex = pattern(name)
        if introduced != "—" and introduced > lesson and regex.search(text):
            found.append(f"{name!r} ({term}, lesson {introduced})")
        text = regex.sub(" ", text)
    return found


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_uses_no_term_before_it_is_introduced(path):
    early = early_uses(prose(path), path.name[:2])
    assert not early, f"{path.name} uses before their lesson: {', '.join(early)}"


def test_the_check_can_fail():
    assert early_uses("We then apply NMS to the boxes.", "02")
    assert not early_uses("We then apply NMS to the boxes.", "07")
    assert early_uses("its mean average precision", "05")
    assert not early_uses("its mean average precision", "06")  # not "average precision" (07)
