"""A one-repetition run of the benchmark script (QUICK=1), so `make bench`
cannot rot: it must finish and write a CSV with every figure positive."""

import csv
import glob
import os
import subprocess

import harness


def test_bench_quick_run_writes_results():
    results = os.path.join(harness.REPO, "bench", "results")
    before = set(glob.glob(os.path.join(results, "quick-*.csv")))
    run = subprocess.run(["/usr/bin/python3", os.path.join(harness.REPO, "bench", "run_bench.py")],
                         cwd=harness.REPO, env=dict(os.environ, QUICK="1"),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    created = set(glob.glob(os.path.join(results, "quick-*.csv"))) - before
    assert len(created) == 1, (created, run.stdout)
    path = created.pop()
    try:
        with open(path) as f:
            rows = list(csv.DictReader(f))
        figures = {row["figure"]: float(row["median"]) for row in rows}
        for name in ("kernel boot (efi_main to prompt)", "blk bench write (incl. flush)",
                     "blk bench read", "QEMU host CPU at an idle prompt"):
            assert name in figures, (name, sorted(figures))
        for row in rows:
            assert float(row["median"]) >= 0 and int(row["runs"]) == 1, row
        assert figures["blk bench write (incl. flush)"] > 0
        assert figures["blk bench read"] > 0
    finally:
        os.unlink(path)  # smoke results are not kept
