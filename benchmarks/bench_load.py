"""Lesson 06's training next to other work: how much slower than on a quiet machine?

Run with ``.venv/bin/python benchmarks/bench_load.py`` (or ``make benchmark``); it takes a few
minutes on 2 cores.

It runs ``ssd_lesson.recipe.lesson_recipe`` (data, training, validation: all of lesson 06's
training) twice: once on the quiet machine, then again while ``--busy`` other processes (default
two, pure Python ``while True`` loops) keep the cores busy, as other notebooks or programs would.
It prints both wall times, their ratio and the CPU threads ``fit`` chose each time. The goal:
loaded at most ``GOAL_RATIO`` times the quiet time. (With two torch threads on two busy cores,
each parallel operation waits for the thread the scheduler runs last; that made the run more
than 15 times slower before ``fit`` learned to use one thread on busy cores.)
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time

import torch

# Run as a script: its folder is on sys.path, so the sibling benchmark's helper imports.
from bench_training import load_average  # noqa: E402

from ssd_lesson.recipe import lesson_recipe

GOAL_RATIO = 3.0


def busy_loop() -> None:
    """Another program that keeps one core busy."""
    while True:
        pass


def timed_run(seed: int) -> tuple[float, int, float]:
    """lesson_recipe's wall time, the threads fit used and the held-out mAP@0.5."""
    start = time.perf_counter()
    run = lesson_recipe(seed=seed)
    return time.perf_counter() - start, run.history.threads, run.history.val_map[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--busy", type=int, default=2, help="busy processes (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average {load_average()}")
    quiet, quiet_threads, quiet_map = timed_run(args.seed)
    print(f"quiet: {quiet:.1f} s, fit used {quiet_threads} thread(s), mAP@0.5 {quiet_map:.3f}")
    context = multiprocessing.get_context("spawn")
    others = [context.Process(target=busy_loop, daemon=True) for _ in range(args.busy)]
    for process in others:
        process.start()
    try:
        time.sleep(2.0)  # the busy loops are running before training starts
        loaded, loaded_threads, loaded_map = timed_run(args.seed)
        print(
            f"with {args.busy} busy processes: {loaded:.1f} s, fit used {loaded_threads} "
            f"thread(s), mAP@0.5 {loaded_map:.3f}; load average {load_average()}"
        )
    finally:
        for process in others:
            process.terminate()
        for process in others:
            process.join()
    ratio = loaded / quiet
    print(f"{'quiet s':>8}  {'loaded s':>8}  {'ratio':>5}")
    print(f"{quiet:8.1f}  {loaded:8.1f}  {ratio:5.2f}")
    met = ratio <= GOAL_RATIO
    print(f"goal (loaded <= {GOAL_RATIO:.0f} x quiet): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
