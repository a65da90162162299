"""The instructor guides (teaching/NN_*.md) follow one template and agree with their lessons.

Every lesson notebook has a guide with the same stem. Each guide has the template's sections in
order, 3 to 5 checkable objectives, a 45-minute timing table, pause points at the lesson's own
headings, the lesson's explorer (if it has one), and an answer for every exercise. Letter, number
and code answers are run through the lesson's own self-check, so a guide cannot drift from
``ssd_lesson/exercises/lessonNN.py``. Every relative link in teaching/ resolves.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEACHING = ROOT / "teaching"
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
GUIDES = sorted(TEACHING.glob("[0-9][0-9]_*.md"))

SECTIONS = [
    "Learning objectives",
    "Before class",
    "Timing plan (45 minutes)",
    "Where to pause and what to ask",
    "Explorer to project",
    "Confusions this lesson answers",
    "Exercise answers",
]
KINDS = {"teaching", "explorer", "exercises", "discussion"}
CLASS_MINUTES = 45


# ------------------------------------------------------------------------------ reading lessons


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def explorers_called(notebook: Path) -> set[str]:
    """Names of the ``*_explorer`` functions the lesson's code cells call."""
    code = "\n".join(source(c) for c in cells(notebook) if c["cell_type"] == "code")
    return set(re.findall(r"(?<![\w.])(\w+_explorer)\(", code))


def headings(notebook: Path) -> set[str]:
    """The text of every ## and ### heading of the lesson's markdown cells."""
    found = set()
    for cell in cells(notebook):
        if cell["cell_type"] == "markdown":
            found |= set(re.findall(r"^#{2,3} (.+?)\s*$", source(cell), flags=re.M))
    return found


EXERCISE_HEADING = re.compile(r"^\*\*(?:Exercise )?(\d+)\b", re.M)


def lesson_exercises(notebook: Path) -> dict[int, list[str]]:
    """Exercise number -> the code of its cells, from the lesson's "## Exercises" section.

    Lessons number exercises as "**Exercise 1 (code).**" or "**1. Write IoU.**" at the start of
    a markdown line; the code cells up to the next exercise belong to it."""
    exercises: dict[int, list[str]] = {}
    current = None
    in_section = False
    for cell in cells(notebook):
        text = source(cell)
        if cell["cell_type"] == "markdown":
            for line in text.splitlines():
                if line.startswith("## "):
                    in_section = line.strip() == "## Exercises"
                    current = None
            numbers = EXERCISE_HEADING.findall(text) if in_section else []
            for number in numbers:
                current = int(number)
                exercises.setdefault(current, [])
        elif in_section and current is not None:
            exercises[current].append(text)
    return exercises


class CheckCall:
    """How a lesson calls the self-check of one exercise: ``check_x(answer, *literals)``."""

    def __init__(self, code: str):
        self.name = None
        self.answer_name = None
        self.extra_args: tuple = ()
        self.extra_kwargs: dict = {}
        self.literal_args = True
        self.kind = None
        tree = ast.parse(code)
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("check_")
        ]
        if not calls:
            return
        call = max(calls, key=lambda node: node.lineno)
        self.name = call.func.id
        if call.args and isinstance(call.args[0], ast.Name):
            self.answer_name = call.args[0].id
        try:
            self.extra_args = tuple(ast.literal_eval(arg) for arg in call.args[1:])
            self.extra_kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except ValueError:  # the lesson passes its own objects (a model, a loss result)
            self.literal_args = False
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        letters = re.search(r"""["'][a-d]["']""", code) is not None
        self.kind = "function" if self.answer_name in defined else "letters" if letters else "value"


# ------------------------------------------------------------------------------ reading guides


def guide_for(notebook: Path) -> Path:
    return TEACHING / f"{notebook.stem}.md"


def sections(text: str) -> list[tuple[str, str]]:
    """(## heading, its body) in order; the title and the text before the first ## are left out."""
    parts = re.split(r"^## (.+?)\s*$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def section(text: str, name: str) -> str:
    return dict(sections(text)).get(name, "")


def timing_rows(text: str) -> list[tuple[str, str, str]]:
    """The rows of the timing table, as (minutes, activity, kind) strings."""
    rows = []
    for line in section(text, "Timing plan (45 minutes)").splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        row = [c.strip() for c in line.strip("|").split("|")]
        if row == ["Minutes", "Activity", "Kind"] or set("".join(row)) <= {"-", ":"}:
            continue
        rows.append(tuple(row) if len(row) == 3 else (line, "", ""))
    return rows


def answers(text: str) -> dict[int, str]:
    """Exercise number -> the body of its "### Exercise N — name" answer."""
    body = section(text, "Exercise answers")
    parts = re.split(r"^### Exercise (\d+) — .+$", body, flags=re.M)
    return {int(n): answer for n, answer in zip(parts[1::2], parts[2::2], strict=True)}


def answer_line(answer: str) -> str:
    line = next((ln for ln in answer.splitlines() if ln.startswith("**Answer:**")), "")
    return line.removeprefix("**Answer:**")


def python_block(answer: str) -> str | None:
    match = re.search(r"```python\n(.*?)```", answer, flags=re.S)
    return match.group(1) if match else None


# ------------------------------------------------------------------------------ the checkers
# Each returns a list of problems, so that a test can also show that a broken guide fails.


def title_problems(text: str, notebook: Path) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    number = notebook.stem[:2]
    problems = []
    if not lines or not re.fullmatch(rf"# Lesson {number} — .+: instructor guide", lines[0]):
        problems.append(f"first line should be '# Lesson {number} — <title>: instructor guide'")
    link = f"[the lesson](../notebooks/{notebook.name})"
    if len(lines) < 2 or link not in lines[1]:
        problems.append(f"second line should link {link}")
    return problems


def section_problems(text: str) -> list[str]:
    found = [name for name, _ in sections(text)]
    return [] if found == SECTIONS else [f"## sections are {found}, expected {SECTIONS}"]


def objective_problems(text: str) -> list[str]:
    bullets = re.findall(r"^- (.+(?:\n  .+)*)", section(text, "Learning objectives"), flags=re.M)
    problems = []
    if not 3 <= len(bullets) <= 5:
        problems.append(f"{len(bullets)} learning objectives, expected 3 to 5")
    for bullet in bullets:
        if not bullet.startswith("By the end, a learner can ") or "Check:" not in bullet:
            problems.append(f"objective without 'By the end, a learner can' or 'Check:': {bullet}")
    return problems


def timing_problems(text: str, has_explorer: bool) -> list[str]:
    rows = timing_rows(text)
    if not rows:
        return ["no timing table with columns | Minutes | Activity | Kind |"]
    problems = []
    for minutes, activity, kind in rows:
        if not minutes.isdigit() or int(minutes) <= 0:
            problems.append(f"minutes {minutes!r} are not a positive whole number")
        if kind not in KINDS:
            problems.append(f"kind {kind!r} of {activity!r} is not one of {sorted(KINDS)}")
        if not activity:
            problems.append(f"row {minutes!r} has no activity")
    total = sum(int(m) for m, _, _ in rows if m.isdigit())
    if total > CLASS_MINUTES:
        problems.append(f"the minutes add to {total}, more than {CLASS_MINUTES}")
    kinds = {kind for _, _, kind in rows}
    for needed in ("teaching", "exercises"):
        if needed not in kinds:
            problems.append(f"no {needed} row")
    if has_explorer != ("explorer" in kinds):
        expected = "an explorer row" if has_explorer else "no explorer row (it calls none)"
        problems.append(f"the lesson calls {'an' if has_explorer else 'no'} explorer: {expected}")
    return problems


def pause_problems(text: str, notebook: Path) -> list[str]:
    body = section(text, "Where to pause and what to ask")
    items = re.findall(r"^\d+\. (.+(?:\n   .+)*)", body, flags=re.M)
    problems = [] if len(items) >= 2 else [f"{len(items)} pause points, expected at least 2"]
    known = headings(notebook)
    for item in items:
        named = re.match(r"\*\*(.+?)\.?\*\*", item)
        if not named or named.group(1) not in known:
            problems.append(f"pause point does not start with a lesson heading in bold: {item}")
        if "Ask:" not in item or "Expect:" not in item:
            problems.append(f"pause point without 'Ask:' and 'Expect:': {item}")
    return problems


def explorer_problems(text: str, notebook: Path) -> list[str]:
    body = section(text, "Explorer to project")
    called = explorers_called(notebook)
    missing = sorted(name for name in called if f"`{name}(" not in body)
    problems = [f"Explorer to project does not name `{name}(`" for name in missing]
    if not called and "no explorer" not in body:
        problems.append("the lesson has no explorer: say so under Explorer to project")
    return problems


def exercise_problems(text: str, notebook: Path) -> list[str]:
    """Every exercise of the lesson has an answer and vice versa; answers pass the self-checks."""
    exercises, given = lesson_exercises(notebook), answers(text)
    problems = []
    if set(exercises) != set(given):
        problems.append(f"exercises {sorted(exercises)} but answers {sorted(given)}")
    module = importlib.import_module(f"ssd_lesson.exercises.lesson{notebook.stem[:2]}")
    for number in sorted(set(exercises) & set(given)):
        answer = given[number]
        if "**Answer:**" not in answer:
            problems.append(f"exercise {number}: no '**Answer:**' line")
            continue
        call = CheckCall("\n".join(exercises[number]))
        if call.name is None:  # a question the lesson discusses without a self-check
            continue
        check = getattr(module, call.name)
        if call.kind == "letters":
            letters = re.findall(r"`([a-d])`", answer_line(answer))
            if not letters:
                problems.append(f"exercise {number}: give the letter(s) in backticks, e.g. `b`")
                continue
            verdict = check(letters[0] if len(letters) == 1 else set(letters))
        elif call.kind == "function":
            code = python_block(answer)
            if code is None:
                problems.append(f"exercise {number}: no ```python block with the answer")
                continue
            namespace: dict = {}
            exec(compile(code, f"{notebook.stem} exercise {number}", "exec"), namespace)
            function = namespace.get(call.answer_name)
            if not callable(function):
                problems.append(f"exercise {number}: the code does not define {call.answer_name}")
                continue
            verdict = check(function, *call.extra_args, **call.extra_kwargs)
        else:
            if not call.literal_args:  # the check needs the lesson's own objects
                continue
            value = re.search(r"`([^`]+)`", answer_line(answer))
            if value is None:
                problems.append(f"exercise {number}: give the answer in backticks")
                continue
            try:
                value = ast.literal_eval(value.group(1))
            except (ValueError, SyntaxError):
                problems.append(f"exercise {number}: {value.group(1)!r} is not a Python value")
                continue
            verdict = check(value, *call.extra_args, **call.extra_kwargs)
        if not verdict:
            problems.append(f"exercise {number}: {call.name} rejects the guide's answer: {verdict}")
    return problems


def link_problems(path: Path) -> list[str]:
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (path.parent / target.split("#")[0]).exists():
            problems.append(f"{path.name}: link {target} does not resolve")
    return problems


# ------------------------------------------------------------------------------ the tests


def test_every_lesson_has_a_guide_and_every_guide_a_lesson():
    assert LESSONS, "no lessons found"
    missing = [guide_for(n).name for n in LESSONS if not guide_for(n).is_file()]
    assert not missing, f"lessons without an instructor guide in teaching/: {missing}"
    orphans = {g.stem for g in GUIDES} - {n.stem for n in LESSONS}
    assert not orphans, f"guides without a lesson: {sorted(orphans)}"


def test_readme_links_every_guide():
    readme = (TEACHING / "README.md").read_text()
    for notebook in LESSONS:
        assert f"]({notebook.stem}.md)" in readme, f"teaching/README.md does not link {notebook}"


LESSON_IDS = [n.stem for n in LESSONS]


@pytest.fixture(params=LESSONS, ids=LESSON_IDS)
def lesson(request) -> tuple[Path, str]:
    notebook = request.param
    guide = guide_for(notebook)
    if not guide.is_file():
        pytest.fail(f"{notebook.name} has no guide {guide.relative_to(ROOT)}")
    return notebook, guide.read_text()


def test_title_and_link(lesson):
    notebook, text = lesson
    assert title_problems(text, notebook) == []


def test_sections_in_order(lesson):
    _, text = lesson
    assert section_problems(text) == []


def test_three_to_five_checkable_objectives(lesson):
    _, text = lesson
    assert objective_problems(text) == []


def test_timing_plan_fits_the_class(lesson):
    notebook, text = lesson
    assert timing_problems(text, has_explorer=bool(explorers_called(notebook))) == []


def test_pause_points_name_lesson_headings(lesson):
    notebook, text = lesson
    assert pause_problems(text, notebook) == []


def test_explorer_section_names_the_lessons_explorers(lesson):
    notebook, text = lesson
    assert explorer_problems(text, notebook) == []


def test_every_exercise_answered_and_accepted_by_its_check(lesson):
    notebook, text = lesson
    assert exercise_problems(text, notebook) == []


@pytest.mark.parametrize("path", sorted(TEACHING.glob("*.md")), ids=lambda p: p.name)
def test_relative_links_resolve(path):
    assert link_problems(path) == []


def test_guide_length_is_about_a_page_or_two():
    for guide in GUIDES:
        words = len(guide.read_text().split())
        assert 500 <= words <= 1300, f"{guide.name}: {words} words"


# ------------------------------------------------------------------------------ the checkers fail


def broken_copy(notebook: Path, old: str, new: str) -> str:
    text = guide_for(notebook).read_text()
    assert old in text, f"the test's fixture moved: {old!r} is not in {notebook.stem}.md"
    return text.replace(old, new, 1)


LESSON_01 = ROOT / "notebooks" / "01_anchors.ipynb"


def test_checkers_reject_broken_guides():
    # Minutes adding to 50: 45 in the guide, one row made 5 minutes longer.
    over = broken_copy(LESSON_01, "| 11 | Exercises 1 to 4 | exercises |", "| 16 | x | exercises |")
    assert any("add to 50" in p for p in timing_problems(over, has_explorer=True))
    # An unknown kind, no explorer row for a lesson with an explorer, and the wrong claim.
    odd = broken_copy(LESSON_01, "| explorer |", "| lecture |")
    problems = timing_problems(odd, has_explorer=True)
    assert any("'lecture'" in p for p in problems) and any("explorer row" in p for p in problems)
    assert any("no explorer row" in p for p in timing_problems(over, has_explorer=False))
    # A wrong letter, a wrong number, and code that gets IoU wrong.
    wrong = broken_copy(LESSON_01, "**Answer:** `b`.", "**Answer:** `c`.")
    wrong = wrong.replace("**Answer:** `24564`.", "**Answer:** `24560`.")
    wrong = wrong.replace("max(0.0, min(", "(min(")  # no clamp: the classic bug
    problems = exercise_problems(wrong, LESSON_01)
    assert [p.split(":")[0] for p in problems] == ["exercise 1", "exercise 2", "exercise 4"]
    # A missing answer, sections out of order, six objectives, a pause at no heading.
    no_four = broken_copy(LESSON_01, "### Exercise 4 —", "### Exercise 5 —")
    assert "exercises [1, 2, 3, 4] but answers [1, 2, 3, 5]" in exercise_problems(
        no_four, LESSON_01
    )
    swapped = broken_copy(LESSON_01, "## Before class", "## Before the class")
    assert section_problems(swapped)
    six = broken_copy(
        LESSON_01,
        "## Before class",
        "- By the end, a learner can dance. Check: 1.\n\n## Before class",
    )
    assert any("6 learning objectives" in p for p in objective_problems(six))
    renamed = broken_copy(LESSON_01, "**Step 2 · How well", "**Step 9 · How well")
    assert pause_problems(renamed, LESSON_01)


def test_exercise_reader_finds_both_numbering_styles():
    # "**Exercise 1 (code).**" in lesson 00, "**1. Write IoU.**" in lesson 01.
    assert sorted(lesson_exercises(ROOT / "notebooks" / "00_ssd_in_plain_english.ipynb")) == [
        1,
        2,
        3,
    ]
    assert sorted(lesson_exercises(LESSON_01)) == [1, 2, 3, 4]
    kinds = {n: CheckCall("\n".join(code)).kind for n, code in lesson_exercises(LESSON_01).items()}
    assert kinds == {1: "function", 2: "letters", 3: "value", 4: "value"}
