"""Re-execute lessons in place so that their stored outputs are fresh (``make notebooks``).

Each notebook runs top to bottom in a new kernel, from the notebooks/ folder, exactly as nbval
will re-run it in ``make test``. Widget state is not stored: the explorers show their PNG
snapshot where no widget manager runs (GitHub), and a live widget in JupyterLab. Before it
runs, each lesson gets its Colab set-up cell and slide marks (tools/lesson_marks.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from lesson_marks import apply as apply_marks
from nbclient import NotebookClient

TIMEOUT_PER_CELL = 600  # seconds


def run(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    apply_marks(notebook)
    client = NotebookClient(
        notebook,
        timeout=TIMEOUT_PER_CELL,
        kernel_name="python3",
        record_timing=False,  # no per-cell timestamps: diffs show only what changed
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, path)
    print(f"{path}: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: run_notebooks.py NOTEBOOK.ipynb [...]")
    for name in sys.argv[1:]:
        run(Path(name))
