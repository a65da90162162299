"""Is lesson 06's training reliable? The same recipe with 10 seeds.

Run with ``.venv/bin/python benchmarks/bench_seeds.py`` (about 10-12 minutes on 2 cores).

Each seed draws its own training images and its own initial weights (the held-out images are
the same for all) and runs ``ssd_lesson.recipe.lesson_recipe``, the function lesson 06 calls.
Prints one row per seed (held-out mAP@0.5, final training loss, whether any loss was NaN,
training seconds) and the lowest mAP. Exits non-zero if any seed ends below 0.85 or with a NaN.
"""

from __future__ import annotations

import argparse
import math
import sys

import torch

# Run as a script: its folder is on sys.path, so the sibling benchmark's helper imports.
from bench_training import load_average  # noqa: E402

from ssd_lesson.recipe import lesson_recipe
from ssd_lesson.train import TrainingDiverged

MIN_MAP = 0.85


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average {load_average()}")
    print(f"{'seed':>4}  {'mAP@0.5':>7}  {'final loss':>10}  {'NaN':>3}  {'seconds':>7}")
    worst, failed = math.inf, False
    for seed in range(args.seeds):
        try:
            history = lesson_recipe(seed=seed).history
        except TrainingDiverged as err:
            print(f"{seed:>4}  diverged: {err}")
            failed = True
            continue
        values = history.train_loss + history.val_loss + history.val_map
        has_nan = not all(math.isfinite(v) for v in values)
        final_map = history.val_map[-1]
        worst = min(worst, final_map)
        failed |= has_nan or final_map < MIN_MAP
        print(
            f"{seed:>4}  {final_map:7.3f}  {history.train_loss[-1]:10.3f}  "
            f"{'yes' if has_nan else 'no':>3}  {history.train_seconds:7.1f}",
            flush=True,
        )
    print(f"lowest mAP@0.5: {worst:.3f} (needed >= {MIN_MAP}); load average now {load_average()}")
    print("all seeds passed" if not failed else "FAILED: a seed is below the bar or NaN")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
