"""The package a learner opens: each algorithm is its public function, short, checks first.

These tests read the source, not the behaviour: they keep the shape the lessons rely on (one
screen per algorithm, no private twins, no reaching into another module's private names).
"""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ssd_lesson"
# The algorithms the lessons teach: module -> public functions.
CORE = {
    "boxes": ["box_iou"],
    "matching": ["match_anchors"],
    "encoding": ["encode", "decode"],
    "loss": ["ssd_loss", "hard_negatives"],
    "inference": ["nms", "batched_nms"],
}
CONCEPT_MODULES = ["boxes", "anchors", "matching", "encoding", "loss", "inference", "metrics"]
MAX_CODE_LINES = 30
MAX_MODULE_LINES = 250


def _function(module: str, name: str) -> tuple[ast.FunctionDef, list[str]]:
    source = (PACKAGE / f"{module}.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node, source.splitlines()
    raise AssertionError(f"ssd_lesson.{module} has no top-level function {name}")


def _body(node: ast.FunctionDef) -> list[ast.stmt]:
    """The statements after the docstring."""
    first = node.body[0]
    is_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    return node.body[1:] if is_docstring else node.body


def _code_lines(node: ast.FunctionDef, lines: list[str]) -> list[str]:
    body = _body(node)
    text = lines[body[0].lineno - 1 : node.end_lineno]
    return [line for line in text if line.strip() and not line.strip().startswith("#")]


CASES = [(module, name) for module, names in CORE.items() for name in names]


@pytest.mark.parametrize(("module", "name"), CASES)
def test_core_function_fits_one_screen(module, name):
    node, lines = _function(module, name)
    code = _code_lines(node, lines)
    assert len(code) <= MAX_CODE_LINES, f"{module}.{name} has {len(code)} code lines"


@pytest.mark.parametrize(("module", "name"), CASES)
def test_core_function_starts_with_one_check_and_checks_nowhere_else(module, name):
    node, _ = _function(module, name)
    body = _body(node)
    first = ast.unparse(body[0])
    assert "checks." in first, f"{module}.{name} does not start with its input check: {first}"
    later = [ast.unparse(statement) for statement in body[1:]]
    assert not any("checks." in s or "raise " in s for s in later), f"{module}.{name}: {later}"


@pytest.mark.parametrize(("module", "name"), CASES)
def test_core_function_has_no_private_twin(module, name):
    source = (PACKAGE / f"{module}.py").read_text()
    twins = re.findall(rf"def _{name}\b", source)
    assert not twins, f"ssd_lesson.{module} has a private _{name}"


def test_matching_shows_both_rules_in_match_anchors():
    node, lines = _function("matching", "match_anchors")
    text = "\n".join(lines[node.lineno - 1 : node.end_lineno])
    assert "Rule 1" in text and "Rule 2" in text
    assert "box_iou(" in text  # the IoU table, not a helper that hides it


@pytest.mark.parametrize("module", CONCEPT_MODULES)
def test_concept_modules_are_short(module):
    count = len((PACKAGE / f"{module}.py").read_text().splitlines())
    assert count <= MAX_MODULE_LINES, f"ssd_lesson/{module}.py has {count} lines"


def _python_files():
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in _python_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ssd_lesson"):
                private = [a.name for a in node.names if a.name[0] == "_" and a.name[-2:] != "__"]
                offenders += [f"{path.name}: {name}" for name in private]
    assert not offenders, offenders


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
def test_notebooks_use_public_names_only(path):
    code = _notebook_code(path)
    imported = re.findall(r"from ssd_lesson[\w.]* import \(?([^)\n]*)", code)
    private_imports = [n for names in imported for n in re.findall(r"\b_\w+", names)]
    modules = set(re.findall(r"from ssd_lesson import ([\w, ]+)", code))
    module_names = {m.strip() for group in modules for m in group.split(",")}
    attribute_uses = [
        m
        for m in re.findall(r"\b(\w+)\.(_[a-z]\w*)", code)
        if m[0] in module_names or m[0] == "ssd_lesson"
    ]
    assert not private_imports and not attribute_uses, (private_imports, attribute_uses)
