#!/usr/bin/env python3
"""Exact KNN-Shapley (K = 5): Tributary (Rust) against pyDVL's KNNShapleyValuation, same data, same run.

Setup (once; pyDVL is needed by this bench only, never by `cargo test`):

    python3 -m venv /tmp/pydvl-venv
    /tmp/pydvl-venv/bin/pip install pydvl scikit-learn

Run from the repository root:

    /tmp/pydvl-venv/bin/python scripts/bench_pydvl.py

What it does:
1. Builds and runs `cargo run --release -p tributary-valuation --example knn_export -- DIR`, which writes
   the exact train/test matrices and labels of both datasets (digits: the seeded stratified 1437 × 360
   split of data/digits.csv; digits-x10-jitter: the training set copied ten times with uniform jitter of
   ±0.01 per feature, 14 370 × 360), the Rust KNN-Shapley values and the Rust median wall times
   (all rayon threads). It runs the example a second time with RAYON_NUM_THREADS=1 for a
   single-thread timing (pyDVL's fit runs in one process unless given a joblib context; see --pydvl-jobs).
2. Runs pyDVL's KNNShapleyValuation (KNeighborsClassifier(n_neighbors=5)) on the very same arrays and
   times `fit` (median of --pydvl-runs runs).
3. Compares the values: max |Rust − pyDVL|, and max |Rust − reference| where the reference is a small
   NumPy implementation of the same recursion that ranks by exactly computed squared distances with
   ties broken by training index (the Rust rule).
4. Prints a markdown table.

Distance ties: digits has integer pixels, so many training points are at exactly the same distance from a
test point. The Shapley recursion depends on the order of tied points, Tributary breaks ties by training
index, and sklearn's `kneighbors` does not (its order among ties is whatever its partial sort leaves), so
values are only expected to agree within 1e-9 on the jittered data, where there are no ties. The
"tied test points" column counts test points whose ranking contains at least one exact tie between
training points with different "label matches the test label" status (the only ties that change values).

Useful flags: --out-dir DIR (keep the exported CSVs), --skip-build, --pydvl-runs N, --pydvl-jobs N,
--no-single-thread.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

DATASETS = ["digits", "digits-x10-jitter"]
K = 5
TOLERANCE = 1e-9
ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_export(out_dir: pathlib.Path, skip_build: bool, single_thread: bool) -> dict:
    env = dict(os.environ)
    if single_thread:
        env["RAYON_NUM_THREADS"] = "1"
    target = pathlib.Path(env.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "release" / "examples" / "knn_export"
    if skip_build:
        command = [str(binary), str(out_dir)]
    else:
        command = ["cargo", "run", "--quiet", "--release", "-p", "tributary-valuation",
                   "--example", "knn_export", "--", str(out_dir)]
    print("$", ("RAYON_NUM_THREADS=1 " if single_thread else "") + " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return json.loads((out_dir / "timings.json").read_text())


def load(out_dir: pathlib.Path, name: str):
    def matrix(suffix):
        return np.loadtxt(out_dir / f"{name}.{suffix}.csv", delimiter=",", dtype=np.float64, ndmin=2)

    def column(suffix, dtype):
        return np.loadtxt(out_dir / f"{name}.{suffix}.csv", dtype=dtype, ndmin=1)

    return (matrix("train"), column("train_labels", np.int64), matrix("test"),
            column("test_labels", np.int64), column("values", np.float64))


def pydvl_values(x_train, y_train, x_test, y_test, runs: int, jobs: int):
    """Median seconds of KNNShapleyValuation.fit and the values in training order."""
    from joblib import parallel_config
    from sklearn.neighbors import KNeighborsClassifier

    try:  # pyDVL >= 0.10
        from pydvl.valuation.dataset import Dataset
        from pydvl.valuation.methods.knn_shapley import KNNShapleyValuation
    except ImportError as error:  # pragma: no cover
        sys.exit(f"needs pyDVL >= 0.10 (pydvl.valuation.methods.knn_shapley): {error}")

    train = Dataset(x_train, y_train)
    test = Dataset(x_test, y_test)
    seconds = []
    values = None
    for _ in range(runs):
        valuation = KNNShapleyValuation(KNeighborsClassifier(n_neighbors=K), test_data=test,
                                        progress=False)
        with parallel_config(n_jobs=jobs):
            start = time.perf_counter()
            valuation.fit(train)
            seconds.append(time.perf_counter() - start)
        result = valuation.result
        values = np.empty(len(x_train))
        values[np.asarray(result.indices, dtype=np.int64)] = result.values
    return statistics.median(seconds), values


def reference_values(x_train, y_train, x_test, y_test):
    """Jia et al.'s recursion, ranking by directly computed squared distances, ties by training index.

    Also returns the number of test points whose ranking has an exact tie between two training points that
    differ in whether their label matches the test label.
    """
    n = len(y_train)
    total = np.zeros(n)
    ranks = np.arange(1, n, dtype=np.float64)  # rank i of the nearer point in each adjacent pair
    step = 1.0 / np.maximum(K, ranks)
    tied = 0
    for x, y in zip(x_test, y_test):
        distance = ((x_train - x) ** 2).sum(axis=1)
        order = np.argsort(distance, kind="stable")
        matches = (y_train[order] == y).astype(np.float64)
        sorted_distance = distance[order]
        same = sorted_distance[1:] == sorted_distance[:-1]
        if np.any(same):
            # A tie matters only if the tied block mixes matching and non-matching points.
            starts = np.flatnonzero(np.r_[True, ~same])
            block_max = np.maximum.reduceat(matches, starts)
            block_min = np.minimum.reduceat(matches, starts)
            tied += int(np.any(block_max != block_min))
        # s_N = m_N / N; s_i = s_{i+1} + (m_i − m_{i+1}) / max(K, i), accumulated far to near.
        deltas = (matches[:-1] - matches[1:]) * step
        values = np.empty(n)
        values[-1] = matches[-1] / n
        values[:-1] = values[-1] + np.cumsum(deltas[::-1])[::-1]
        total[order] += values
    return total / len(y_test), tied


def fmt_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=pathlib.Path, help="keep the exported data here")
    parser.add_argument("--skip-build", action="store_true",
                        help="run the already built knn_export binary instead of cargo run")
    parser.add_argument("--pydvl-runs", type=int, default=3, help="pyDVL runs per dataset (median)")
    parser.add_argument("--pydvl-jobs", type=int, default=1,
                        help="joblib n_jobs around pyDVL's fit (pyDVL's own default is 1)")
    parser.add_argument("--no-single-thread", action="store_true",
                        help="skip the RAYON_NUM_THREADS=1 Rust timing")
    args = parser.parse_args()

    import pydvl
    import sklearn

    out_dir = args.out_dir or pathlib.Path(tempfile.mkdtemp(prefix="knn-export-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    rust = run_export(out_dir, args.skip_build, single_thread=False)
    single = None
    if not args.no_single_thread:
        single_dir = out_dir / "single-thread"
        single_dir.mkdir(exist_ok=True)
        single = run_export(single_dir, skip_build=True, single_thread=True)
    rust_times = {d["name"]: d["median_seconds"] for d in rust["datasets"]}
    single_times = {d["name"]: d["median_seconds"] for d in single["datasets"]} if single else {}

    rows = []
    failures = []
    for name in DATASETS:
        x_train, y_train, x_test, y_test, rust_values = load(out_dir, name)
        if single:
            single_values = np.loadtxt(single_dir / f"{name}.values.csv")
            assert np.array_equal(single_values, rust_values), f"{name}: thread count changed values"
        print(f"{name}: pyDVL {args.pydvl_runs} run(s) on {len(y_train)} × {len(y_test)} ...",
              flush=True)
        pydvl_seconds, pydvl_vals = pydvl_values(x_train, y_train, x_test, y_test,
                                                 args.pydvl_runs, args.pydvl_jobs)
        reference, tied = reference_values(x_train, y_train, x_test, y_test)
        delta = np.abs(rust_values - pydvl_vals)
        max_delta = float(delta.max())
        over = int((delta > TOLERANCE).sum())
        max_ref = float(np.abs(rust_values - reference).max())
        rows.append((name, len(y_train), len(y_test), rust_times[name], single_times.get(name),
                     pydvl_seconds, max_delta, over, max_ref, tied))
        if max_ref > TOLERANCE:
            failures.append(f"{name}: Rust differs from the index-tie-break reference by {max_ref:.3g}")
        if name != "digits" and max_delta > TOLERANCE:
            failures.append(f"{name}: Rust differs from pyDVL by {max_delta:.3g} (no ties expected)")

    threads = rust["threads"]
    print()
    print(f"Exact KNN-Shapley, K = {K}. pyDVL {pydvl.__version__}, scikit-learn {sklearn.__version__}, "
          f"NumPy {np.__version__}, Python {sys.version.split()[0]}; pyDVL n_jobs = {args.pydvl_jobs}; "
          f"Rust: {threads} rayon thread(s){' and 1' if single else ''}. "
          f"Times are medians (Rust: {', '.join(str(d['runs']) for d in rust['datasets'])} runs; "
          f"pyDVL: {args.pydvl_runs} runs).")
    print()
    header = ["dataset", "train × test", f"Rust ({threads} thr)"]
    if single:
        header.append("Rust (1 thr)")
    header += ["pyDVL", f"speed-up ({threads} thr)"]
    if single:
        header.append("speed-up (1 thr)")
    header += ["max |Δ| vs pyDVL", "values > 1e-9 apart", "max |Δ| vs index-tie reference",
               "test points with value-changing ties"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for (name, n_train, n_test, rust_s, single_s, pydvl_s, max_delta, over, max_ref, tied) in rows:
        cells = [name, f"{n_train} × {n_test}", fmt_seconds(rust_s)]
        if single:
            cells.append(fmt_seconds(single_s))
        cells += [fmt_seconds(pydvl_s), f"{pydvl_s / rust_s:.0f}×"]
        if single:
            cells.append(f"{pydvl_s / single_s:.0f}×")
        cells += [f"{max_delta:.2e}", f"{over} / {n_train}", f"{max_ref:.2e}", f"{tied} / {n_test}"]
        print("| " + " | ".join(cells) + " |")
    if args.out_dir:
        print()
        print(f"exported data kept in {out_dir}")
    for failure in failures:
        print("MISMATCH:", failure)
    if not args.out_dir:
        shutil.rmtree(out_dir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
