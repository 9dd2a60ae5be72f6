"""`ivigmeta batch` on every kind of table: seconds per kind for the same number of rows.

    python benchmarks/bench_kinds.py [--groups 50000] [--studies 8] [--repeat 3]

Writes seeded synthetic long tables (2x2 counts, means/SDs, events/person-time, proportions,
yi/vi, theta/se, estimate/CI) to a temporary directory and prints the median wall time of
`ivigmeta batch FILE -g meta --jobs 1 -o OUT` for each. The figures go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def tables(
    groups: int, studies: int, seed: int = 1
) -> dict[str, tuple[list[str], list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    n = groups * studies
    n1, n2 = rng.integers(10, 200, n), rng.integers(10, 200, n)
    a, c = rng.binomial(n1, 0.3), rng.binomial(n2, 0.2)
    est = np.exp(rng.normal(0, 0.5, n))
    half = np.exp(rng.uniform(0.1, 1.0, n))
    return {
        "counts (RR)": (
            ["treat_events", "treat_total", "control_events", "control_total"],
            [a, n1, c, n2],
        ),
        "means (MD)": (
            ["m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"],
            [
                np.round(rng.normal(10, 2, n), 3),
                np.round(rng.uniform(1, 3, n), 3),
                n1,
                np.round(rng.normal(9, 2, n), 3),
                np.round(rng.uniform(1, 3, n), 3),
                n2,
            ],
        ),  # fmt: skip
        "rates (IRR)": (
            ["x1i", "t1i", "x2i", "t2i"],
            [a, np.round(rng.uniform(100, 900, n), 1), c, np.round(rng.uniform(100, 900, n), 1)],
        ),
        "proportions (PLO)": (["xi", "ni"], [a, n1]),
        "yi, vi (RR)": (
            ["yi", "vi"],
            [np.round(rng.normal(0, 1, n), 4), np.round(rng.uniform(0.01, 1, n), 4)],
        ),
        "theta, se (RR)": (
            ["theta", "se"],
            [np.round(rng.normal(0, 1, n), 4), np.round(rng.uniform(0.1, 1, n), 4)],
        ),
        "estimate, CI (RR)": (
            ["estimate", "ci_low", "ci_high"],
            [np.round(est, 4), np.round(est / half, 4), np.round(est * half, 4)],
        ),
    }


def write(path: Path, names: list[str], cols: list[np.ndarray], studies: int) -> None:
    n = len(cols[0])
    meta = np.repeat(np.arange(n // studies), studies)
    with path.open("w") as f:
        f.write(",".join(["meta", *names]) + "\n")
        for row in zip(meta, *cols):
            f.write(",".join(map(str, row)) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=50_000)
    ap.add_argument("--studies", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("ivigmeta"))
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{args.groups} meta-analyses x {args.studies} studies, batch --jobs 1")
        for kind, (names, cols) in tables(args.groups, args.studies).items():
            path = Path(tmp) / "long.csv"
            write(path, names, cols, args.studies)
            out = Path(tmp) / "out.csv"
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                subprocess.run(
                    [exe, "batch", str(path), "-g", "meta", "--jobs", "1", "-o", str(out)],
                    check=True,
                    stderr=subprocess.DEVNULL,
                )
                times.append(time.perf_counter() - t0)
            print(f"{kind:20s} {statistics.median(times):6.2f} s")


if __name__ == "__main__":
    main()
