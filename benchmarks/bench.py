"""Benchmarks (not part of the test suite): cold start, batch at 10k and 1M, vs R.

Run from the repository root with the project's virtual environment:

    .venv/bin/python benchmarks/bench.py            # everything (the 1M run takes minutes)
    .venv/bin/python benchmarks/bench.py --quick    # skip the 1M run
    .venv/bin/python benchmarks/bench.py --skip-r   # without Rscript / metafor

What is timed (wall clock, each command a fresh process, median of --repeat runs unless noted):

* ``ivigmeta --help`` and ``ivigmeta pool studies.csv`` cold; ``Rscript -e 'library(metafor)'`` and
  Rscript + metafor pooling studies.csv (read.csv, escalc, rma DL, print) cold;
* ``ivigmeta batch`` on 10,000 meta-analyses of 10 studies (DL and REML): the whole command
  (start, read CSV, pool, write CSV; with the default ``--jobs`` and with ``-j 1``), and the
  pooling alone in-process (``pool_rows`` on the table already in memory, best of 3);
* the same 10,000 meta-analyses in R: read.csv + escalc, then ``rma()`` in a loop (one call per
  meta-analysis, timed inside R), whole Rscript wall time too; R's estimates are compared with
  ivigmeta's as a check that the work is the same. The machine's pace drifts from one minute to
  the next, so ``--r-repeat`` R loops alternate with rounds of ivigmeta runs (one before, one
  between and one after, for 2 loops) and the ratios compare the means;
* ``ivigmeta batch`` on 1,000,000 meta-analyses (10 million rows), once with the default
  ``--jobs`` and once with ``-j 1``, with peak memory: the resident memory of the command and all
  its worker processes together, sampled every 20 ms.

CPU times are user + system of the command and its workers, so with several processes CPU can
exceed wall time; the machine's load changes both, so compare figures of one run.

Ratios are computed from figures measured in the same run. Synthetic data are seeded: group g has
10 studies with arm sizes uniform in [20, 200] and event risks drawn around a group-specific log
risk ratio with between-study heterogeneity, so zero cells occur but are rare.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).parent / "ivigmeta"
IVIGMETA = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "ivigmeta"]
TIME = "/usr/bin/time"

R_POOL = """
suppressMessages(library(metafor))
d <- read.csv("studies.csv")
es <- escalc("RR", ai = treat_events, n1i = treat_total, ci = control_events, n2i = control_total, data = d)
print(rma(yi, vi, data = es, method = "DL"))
"""

R_LOOP = """
args <- commandArgs(TRUE)
suppressMessages(library(metafor))
d <- read.csv(args[1], colClasses = c(meta = "character"))
es <- escalc("RR", ai = treat_events, n1i = treat_total, ci = control_events, n2i = control_total, data = d)
idx <- split(seq_len(nrow(es)), factor(es$meta, levels = unique(es$meta)))
t0 <- proc.time()
res <- vapply(idx, function(i) {
  f <- tryCatch(rma(es$yi[i], es$vi[i], method = args[2]), error = function(e) NULL)
  if (is.null(f)) return(c(NA_real_, NA_real_, NA_real_))
  c(f$beta[1], f$se, f$tau2)
}, numeric(3))
t1 <- proc.time()
out <- data.frame(meta = names(idx), theta = res[1, ], se = res[2, ], tau2 = res[3, ])
write.csv(out, args[3], row.names = FALSE)
d <- t1 - t0
cat(sprintf("LOOP_SECONDS %.6f %.6f\\n", d[["elapsed"]], d[["user.self"]] + d[["sys.self"]]), file = stderr())
"""


# ---------------------------------------------------------------------------------------------
# data


def generate(
    path: Path, n_groups: int, k: int = 10, seed: int = 20260101, block: int = 100_000
) -> None:
    """Write a seeded long table: meta, study, the four counts; n_groups x k rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        fh.write("meta,study,treat_events,treat_total,control_events,control_total\n")
        for start in range(0, n_groups, block):
            g = np.arange(start, min(start + block, n_groups))
            n = len(g) * k
            mu = np.repeat(rng.normal(0.0, 0.4, len(g)), k)
            tau = np.repeat(rng.uniform(0.0, 0.4, len(g)), k)
            base = np.repeat(rng.uniform(0.05, 0.5, len(g)), k)
            n1 = rng.integers(20, 201, n)
            n2 = rng.integers(20, 201, n)
            p2 = base
            p1 = np.clip(base * np.exp(mu + rng.normal(0.0, 1.0, n) * tau), 0.001, 0.999)
            a = rng.binomial(n1, p1)
            c = rng.binomial(n2, p2)
            meta = np.repeat(g, k)
            study = np.tile(np.arange(k), len(g))
            lines = [
                f"MA{m:07d},s{s},{x},{y},{z},{w}"
                for m, s, x, y, z, w in zip(
                    meta.tolist(), study.tolist(), a.tolist(), n1.tolist(), c.tolist(), n2.tolist()
                )
            ]
            fh.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# running and timing


class Timing:
    """One command's wall time, CPU time (user + system) in seconds, peak RSS in KiB, stderr."""

    def __init__(self, wall: float, cpu: float, peak_kib: int | None, stderr: str) -> None:
        self.wall, self.cpu, self.peak_kib, self.stderr = wall, cpu, peak_kib, stderr


# Commands run as on a user's machine: Python may cache compiled modules (a pip install writes
# them; PYTHONDONTWRITEBYTECODE, set in some sandboxes, would recompile ivigmeta on every run).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_timed(cmd: list[str], cwd: Path = ROOT, stdout=subprocess.DEVNULL) -> Timing:
    """Run one command; CPU time and peak memory from /usr/bin/time (getrusage without it)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    full = [TIME, "-f", "__TIME__ %e %U %S %M", *cmd] if os.path.exists(TIME) else cmd
    t0 = time.perf_counter()
    proc = subprocess.run(full, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True, env=ENV)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}"
        )
    m = re.search(r"__TIME__ ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", proc.stderr)
    if m:
        return Timing(wall, float(m.group(2)) + float(m.group(3)), int(m.group(4)), proc.stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu, after.ru_maxrss, proc.stderr)


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB (0 once it has gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            pass
    return total


def run_sampled(cmd: list[str], cwd: Path = ROOT) -> Timing:
    """Run one command, sampling the resident memory of its whole process tree (batch forks
    workers: /usr/bin/time's maximum RSS would count the largest process only) every 20 ms."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kib(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    stderr = proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu, peak, stderr)


def median_timing(cmd: list[str], repeat: int, warmup: int = 1) -> tuple[float, float]:
    """Median wall and median CPU seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        run_timed(cmd)
    runs = [run_timed(cmd) for _ in range(repeat)]
    return statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs)


def in_process_seconds(path: Path, method: str) -> tuple[float, float]:
    """Best wall and best CPU seconds of the pooling alone (of 3): ``pool_rows``, the function
    the command calls, on the table already read into memory."""
    from ivigmeta.batching.run import BatchOptions, ChunkReader, Rows, pool_rows

    rows = Rows.concat(list(ChunkReader(str(path), ["meta"])))
    options = BatchOptions(tau2_method=method, keep_double_zero=True)
    best_wall = best_cpu = float("inf")
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.process_time()
        pool_rows(rows, ["meta"], options)
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": mem,
        "python": platform.python_version(),
        "load average at start": " ".join(f"{x:.2f}" for x in load),
    }


def have_r() -> bool:
    if not shutil.which("Rscript"):
        return False
    proc = subprocess.run(["Rscript", "-e", "library(metafor)"], capture_output=True)
    return proc.returncode == 0


# ---------------------------------------------------------------------------------------------


def line(label: str, wall: float, cpu: float, extra: str = "") -> None:
    print(f"{label:<44} {wall:9.3f} s wall {cpu:9.3f} s cpu  {extra}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="skip the 1,000,000 meta-analyses run")
    ap.add_argument("--skip-r", action="store_true", help="do not run R")
    ap.add_argument("--repeat", type=int, default=5, help="runs per median")
    ap.add_argument("--r-repeat", type=int, default=2, help="R loops per method (10k batch)")
    ap.add_argument("--groups", type=int, default=10_000, help="meta-analyses in the small batch")
    ap.add_argument("--large", type=int, default=1_000_000, help="meta-analyses in the large batch")
    ap.add_argument("--workdir", default=None, help="where to put the synthetic files")
    args = ap.parse_args()

    use_r = not args.skip_r and have_r()
    r: dict[str, tuple[float, float]] = {}
    print("machine:", ", ".join(f"{k} {v}" for k, v in machine().items()))
    print(
        "(wall: elapsed time; cpu: user + system time of the process, less sensitive to other load)"
    )
    with tempfile.TemporaryDirectory(prefix="ivigmeta-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)

        # Cold start.
        r["help"] = median_timing([*IVIGMETA, "--help"], args.repeat)
        line("ivigmeta --help", *r["help"])
        r["pool"] = median_timing([*IVIGMETA, "pool", "studies.csv"], args.repeat)
        line("ivigmeta pool studies.csv", *r["pool"])
        if use_r:
            r["r_library"] = median_timing(
                ["Rscript", "-e", "suppressMessages(library(metafor))"], args.repeat
            )
            line("Rscript -e 'library(metafor)'", *r["r_library"])
            rpool = work / "pool.R"
            rpool.write_text(R_POOL)
            r["r_pool"] = median_timing(["Rscript", str(rpool)], args.repeat)
            line("Rscript + metafor pooling studies.csv", *r["r_pool"])
            print(
                f"  ratio ivigmeta pool / R pool: wall {r['pool'][0] / r['r_pool'][0]:.3f}, "
                f"cpu {r['pool'][1] / r['r_pool'][1]:.3f}  (target <= 0.25); "
                f"vs library(metafor) alone: wall {r['pool'][0] / r['r_library'][0]:.3f}"
            )

        # 10k meta-analyses.
        small = work / "batch_small.csv"
        generate(small, args.groups)
        for method in ("DL", "REML"):
            out = work / f"out_{method}.csv"
            # --keep-double-zero: the same studies as R's escalc (drop00 = FALSE) in every group.
            cmd = [
                *IVIGMETA,
                "batch",
                str(small),
                "-g",
                "meta",
                "--tau2",
                method,
                "--keep-double-zero",
                "-o",
                str(out),
            ]
            core_wall, core_cpu = in_process_seconds(small, method)
            # The machine's pace changes by tens of percent from one minute to the next, and an R
            # loop averages over half a minute where ivigmeta's runs take seconds: alternate
            # rounds of ivigmeta (a median of --repeat runs each) with --r-repeat R loops, and
            # compare the means.
            rounds, rounds_j1, loops = [], [], []
            for i in range(args.r_repeat + 1 if use_r else 1):
                rounds.append(median_timing(cmd, args.repeat))
                rounds_j1.append(median_timing([*cmd, "-j", "1"], args.repeat))
                line(
                    f"ivigmeta batch {args.groups} x 10, {method}, round {i + 1}",
                    *rounds[-1],
                    "(cpu: all its processes)",
                )
                line("  the same with -j 1 (one process)", *rounds_j1[-1])
                if use_r and i < args.r_repeat:
                    rloop = work / "loop.R"
                    rloop.write_text(R_LOOP)
                    rout = work / f"r_{method}.csv"
                    t = run_timed(["Rscript", str(rloop), str(small), method, str(rout)])
                    m = re.search(r"LOOP_SECONDS ([\d.]+) ([\d.]+)", t.stderr)
                    loops.append((float(m.group(1)), float(m.group(2)), t.wall))
                    line(
                        f"R rma() loop {args.groups} x 10, {method} (loop)",
                        *loops[-1][:2],
                        f"(whole Rscript: {t.wall:.1f} s wall; estimates differ from ivigmeta's "
                        f"by at most {compare_with_r(out, rout):.1e} standard errors)",
                    )
            line("  pooling alone (pool_rows in-process)", core_wall, core_cpu)
            bw, bc = (statistics.mean(x) for x in zip(*rounds))
            jw, jc = (statistics.mean(x) for x in zip(*rounds_j1))
            r[f"batch_{method}"] = (bw, bc)
            if loops:
                loop_wall, loop_cpu, script_wall = (statistics.mean(x) for x in zip(*loops))
                print(
                    f"  speedup vs the R loop (means of {len(loops)} loops and {len(rounds)} "
                    f"rounds): whole ivigmeta command {loop_wall / bw:.0f}x wall "
                    f"(target: >= 100x DL, >= 20x REML), {loop_cpu / bc:.0f}x cpu; with -j 1 "
                    f"{loop_wall / jw:.0f}x wall, {loop_cpu / jc:.0f}x cpu; pooling alone "
                    f"{loop_wall / core_wall:.0f}x wall; whole Rscript vs whole command "
                    f"{script_wall / bw:.0f}x wall"
                )

        # 1M meta-analyses.
        if not args.quick:
            large = work / "batch_large.csv"
            t0 = time.perf_counter()
            generate(large, args.large)
            print(
                f"generated {args.large} x 10 rows ({large.stat().st_size / 1e6:.0f} MB) "
                f"in {time.perf_counter() - t0:.0f} s"
            )
            out = work / "out_large.csv"
            for jobs in ("0", "1"):
                cmd = [*IVIGMETA, "batch", str(large), "-g", "meta", "-j", jobs, "-o", str(out)]
                t = run_sampled(cmd)
                note = [ln for ln in t.stderr.splitlines() if ln.startswith("note:")]
                line(
                    f"ivigmeta batch {args.large} x 10, DL, -j {jobs}",
                    t.wall,
                    t.cpu,
                    f"peak RSS of all its processes {(t.peak_kib or 0) / 1024:.0f} MiB "
                    f"(target < 2048 MiB); {note[-1] if note else ''}",
                )


def compare_with_r(ours: Path, theirs: Path) -> float:
    """Largest difference of the random-effects estimates, in units of their standard error."""
    import numpy as np
    import pandas as pd

    a = pd.read_csv(ours, dtype={"meta": object}).set_index("meta")
    b = pd.read_csv(theirs, dtype={"meta": object}).set_index("meta").reindex(a.index)
    x, y, se = a["random_theta"].to_numpy(), b["theta"].to_numpy(), b["se"].to_numpy()
    ok = np.isfinite(x) & np.isfinite(y) & (se > 0)
    return float(np.max(np.abs(x[ok] - y[ok]) / se[ok]))


if __name__ == "__main__":
    main()
