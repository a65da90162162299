"""Lesson 06's training on a laptop-sized CPU: how long, how fast, how good?

Run with ``.venv/bin/python benchmarks/bench_training.py`` (or ``make benchmark``).

It runs ``ssd_lesson.recipe.lesson_recipe`` (the very function lesson 06 calls) with two CPU
threads, as on a 2-core laptop (fit drops to one when other programs keep the cores busy, see
``ssd_lesson.train.cpu_threads``), and prints the time to draw the data, the training wall time
(validation excluded), images per second, the held-out mAP@0.5 after every epoch, and whether the
goal was met: mAP@0.5 >= 0.90 after <= 60 s of training. The machine's load average is printed
too: other programs sharing the cores make every number here slower.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from ssd_lesson.recipe import lesson_recipe

GOAL_MAP = 0.90
GOAL_SECONDS = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average {load_average()}")
    start = time.perf_counter()
    run = lesson_recipe(seed=args.seed)
    total = time.perf_counter() - start
    history = run.history
    for epoch in range(history.epochs):
        print(
            f"epoch {epoch + 1}: loss {history.train_loss[epoch]:.3f} "
            f"(loc {history.train_localization[epoch]:.3f}, "
            f"cls {history.train_classification[epoch]:.3f}), val loss "
            f"{history.val_loss[epoch]:.3f}, val mAP@0.5 {history.val_map[epoch]:.3f}, "
            f"{history.seconds[epoch]:.1f} s, {history.images_per_second[epoch]:.0f} images/s"
        )
    seconds, final_map = history.train_seconds, history.val_map[-1]
    images = sum(s * r for s, r in zip(history.seconds, history.images_per_second, strict=True))
    print(f"data: {len(run.train_data)} + {len(run.val_data)} images in {run.data_seconds:.1f} s")
    print(f"training: {seconds:.1f} s, {images / seconds:.0f} images/s")
    print(f"validation and the rest: {total - seconds - run.data_seconds:.1f} s")
    print(f"held-out mAP@0.5: {final_map:.3f}; trained with {history.threads} thread(s)")
    met = final_map >= GOAL_MAP and seconds <= GOAL_SECONDS
    print(
        f"goal (mAP@0.5 >= {GOAL_MAP} after <= {GOAL_SECONDS:.0f} s): {'met' if met else 'NOT met'}"
        f"; load average now {load_average()}"
    )
    return 0 if met else 1


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages: other work slows every timing."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
