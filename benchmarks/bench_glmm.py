"""Benchmark of the GLMM fits (issue 19; not part of the test suite).

Run from the repository root:

    .venv/bin/python benchmarks/bench_glmm.py            # ivigmeta only
    .venv/bin/python benchmarks/bench_glmm.py --with-r   # and metafor's rma.glmm on the same data

One fit = ``ivigmeta.core.glmm.fit_glmm`` as ``pool --glmm`` calls it: the ML model, its
fixed-effects counterpart and the saturated model for the heterogeneity tests, in-process after a
warm-up fit (imports and scipy loaded); median of ``--repeat`` fits. The data: 20 sparse 2x2
tables, seeded (arm sizes uniform in [40, 300], control risk around 3%, log OR -0.8 with tau 1),
so zero cells and a double-zero study or two occur, as in dat.nielweise2007. With ``--with-r`` the
same tables go through ``rma.glmm(measure = "OR", model = ...)`` (one Rscript, system.time of each
fit after library loading).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time

import numpy as np

from ivigmeta.core.glmm import fit_glmm

MODELS = ("UM.FS", "UM.RS", "CM.EL", "CM.AL")


def sparse_tables(k: int = 20, seed: int = 19) -> tuple[list[int], list[int], list[int], list[int]]:
    rng = np.random.default_rng(seed)
    n1 = rng.integers(40, 301, k)
    n2 = rng.integers(40, 301, k)
    base = rng.normal(np.log(0.03 / 0.97), 0.6, k)
    log_or = rng.normal(-0.8, 1.0, k)
    a = rng.binomial(n1, 1 / (1 + np.exp(-(base + log_or))))
    c = rng.binomial(n2, 1 / (1 + np.exp(-base)))
    return a.tolist(), n1.tolist(), c.tolist(), n2.tolist()


def drop_double_zero(a, n1, c, n2):
    keep = [i for i in range(len(a)) if not (a[i] == 0 and c[i] == 0)]
    return ([v[i] for i in keep] for v in (a, n1, c, n2))


def time_ivigmeta(data, model: str, repeat: int) -> tuple[float, object]:
    fit = fit_glmm("OR", model, *data)  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fit = fit_glmm("OR", model, *data)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), fit


def time_r(data, models) -> dict[str, float]:
    a, n1, c, n2 = data
    vec = lambda v: "c(" + ",".join(map(str, v)) + ")"  # noqa: E731
    script = f"""suppressPackageStartupMessages(library(metafor))
ai <- {vec(a)}; n1i <- {vec(n1)}; ci <- {vec(c)}; n2i <- {vec(n2)}
for (m in c({",".join(f'"{m}"' for m in models)})) {{
  t <- system.time(f <- try(suppressWarnings(rma.glmm(measure = "OR", ai = ai,
                   n1i = n1i, ci = ci, n2i = n2i, model = m)), silent = TRUE))[["elapsed"]]
  if (inherits(f, "try-error")) cat(m, t, "error\\n") else cat(m, t, f$beta, f$tau2, "\\n")
}}"""
    out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    times = {}
    for line in out.stdout.splitlines():
        name, secs, *rest = line.split()
        times[name] = float(secs)
        print(f"metafor {name}: {' '.join(rest)}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--with-r", action="store_true")
    args = parser.parse_args()
    data = tuple(drop_double_zero(*sparse_tables()))
    print(f"{len(data[0])} studies (double zeros dropped), events {sum(data[0])} / {sum(data[2])}")
    r_times = time_r(data, MODELS) if args.with_r and shutil.which("Rscript") else {}
    print(f"{'model':6} {'ivigmeta (s)':>13} {'metafor (s)':>12}  estimate   tau2   iterations")
    for model in MODELS:
        secs, fit = time_ivigmeta(data, model, args.repeat)
        r = f"{r_times[model]:12.2f}" if model in r_times else f"{'':12}"
        print(
            f"{model:6} {secs:13.3f} {r}  {fit.theta:8.4f} {fit.tau2:7.4f} "
            f"{fit.convergence.iterations:5d}"
        )


if __name__ == "__main__":
    main()
