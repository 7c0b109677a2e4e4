"""benchmarks/calibration.py: its constant-width intervals and the page it builds from runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def bench(repo_script):
    return repo_script("benchmarks/calibration.py")


def test_constant_width_covers_the_target_on_exchangeable_residuals(bench) -> None:
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.normal(size=n)
    pred = y + rng.normal(scale=0.5, size=n)
    split = np.where(np.arange(n) % 2 == 0, "valid", "test")
    frame = pd.DataFrame({"split": split, "y": y, "y_pred": pred})
    out = bench.constant_width(frame, "y")
    assert abs(out["coverage"] - bench.TARGET) < 0.02
    # the half-width is the 90 % quantile of |N(0, 0.5)|: 0.5 * 1.645
    assert out["mean_width"] == pytest.approx(2 * 0.5 * 1.645, rel=0.05)


def _run(ds: str, split: str, seed: int, task: str, **extra) -> dict:
    base = {
        "dataset": ds,
        "split": split,
        "seed": seed,
        "epochs": 30,
        "task_type": task,
        "wall_time_s": 60.0,
        "hardware": "x86_64 1 torch threads, no GPU",
        "git_commit": "abcdef1234567",
        "command": "python benchmarks/calibration.py",
    }
    return {**base, **extra}


def test_page_is_built_from_the_stored_runs(bench, tmp_path) -> None:
    root = tmp_path / "calibration"
    for seed, cov in ((0, 0.88), (1, 0.92)):
        rec = _run(
            "esol", "random", seed, "regression",
            test={"rmse": 1.0 + seed},
            calibration={"test": {"coverage": cov, "mean_width": 3.0}},
            constant_width={"coverage": 0.9, "mean_width": 2.5},
            applicability={"test": {"in_domain_fraction": 0.8, "in_domain": {"rmse": 0.9},
                                    "out_of_domain": {"rmse": 1.4}}},
        )  # fmt: skip
        path = root / "esol" / "random" / f"seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
    rec = _run(
        "bace", "scaffold", 0, "classification",
        test={"roc_auc": 0.7},
        calibration={"test": {"ece_raw": 0.3, "ece_calibrated": 0.1, "nll_raw": 0.9,
                              "nll_calibrated": 0.6}},
        applicability={"test": {"in_domain_fraction": 0.5, "in_domain": {"roc_auc": 0.75}}},
    )  # fmt: skip
    (root / "bace" / "scaffold").mkdir(parents=True)
    (root / "bace" / "scaffold" / "seed0.json").write_text(json.dumps(rec))
    page = tmp_path / "calibration.md"
    bench.write_page(root, page)
    text = page.read_text()
    assert "| esol | random | 2 | 1.50 ± 0.50 | 0.90 ± 0.02 | 3.00 ± 0.00 |" in text
    assert "| 0.90 ± 0.00 | 2.50 ± 0.00 | 0.80 ± 0.00 | 0.90 ± 0.00 / 1.40 ± 0.00 |" in text
    # one seed: no spread; a missing out-of-domain score is a dash, not an error
    row = "| bace | scaffold | 1 | 70.0 | 0.300 → 0.100 | 0.900 → 0.600 | 0.50 | 75.0 / – |"
    assert row in text
    assert "3 runs, 3 min of wall time" in text and "`abcdef1234`" in text
    # regenerating from the same runs gives the same page
    bench.write_page(root, tmp_path / "again.md")
    assert (tmp_path / "again.md").read_text() == text
