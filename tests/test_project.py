"""The project's set-up files agree with each other."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names for PyPI packages whose names differ.
CONDA_NAMES = {"torch": "pytorch-cpu"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower()


def _conda_dependencies() -> set[str]:
    names = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        match = re.match(r"^  - ([A-Za-z0-9_.-]+)", line)
        if match:
            names.add(_name(match.group(1)))
    return names


def test_environment_yml_names_every_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    conda = _conda_dependencies()
    missing = {CONDA_NAMES.get(name, name) for name in runtime} - conda
    assert not missing, f"environment.yml lacks {sorted(missing)}"
    assert "pip" in conda and "-e ." in (ROOT / "environment.yml").read_text()


def test_readme_shows_the_two_commands_and_every_lesson():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert notebook.name in readme, f"README.md does not list {notebook.name}"


def test_ci_calls_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_subpackage_is_installed():
    """A plain (non-editable) install ships every folder of ssd_lesson, not just the top one."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["ssd_lesson*"]
    for folder in sorted({path.parent for path in (ROOT / "ssd_lesson").rglob("*.py")}):
        assert (folder / "__init__.py").is_file(), f"{folder} has no __init__.py"
