"""Check that Binder installs the environment before it copies the repository.

Run by ``make check-classroom``.

repo2docker prints the Dockerfile it would build without building it (``--no-build``, works
offline). If binder/environment.yml is installed in a step that comes before the step that
copies the whole repository, Docker caches the PyTorch install and a change to a lesson does
not reinstall it. A local path in the environment (``-e .``) would move that step after the copy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dockerfile(repository: Path) -> str:
    repo2docker = Path(sys.executable).with_name("jupyter-repo2docker")
    result = subprocess.run(
        [str(repo2docker), "--no-build", "--debug", str(repository)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout + result.stderr


def order_problems(text: str) -> list[str]:
    lines = text.splitlines()
    environment = [
        i
        for i, line in enumerate(lines)
        if "binder/environment.yml" in line and re.search(r"env (update|create)", line)
    ]
    copies = [i for i, line in enumerate(lines) if re.match(r"COPY .*src/ ", line)]
    if not environment:
        return ["Dockerfile: binder/environment.yml is never installed"]
    if not copies:
        return ["Dockerfile: the repository is never copied"]
    if environment[0] > copies[0]:
        return ["Dockerfile: the environment is installed after the repository is copied"]
    return []


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "repository"
        files = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for name in files:
            if (ROOT / name).is_file():
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, copy / name)
        problems = order_problems(dockerfile(copy))
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print("binder: the environment (PyTorch included) is installed before the repository is copied")
