"""fewmol.finetune.calibration: conformal intervals, temperature and isotonic scaling."""

from __future__ import annotations

import numpy as np
import pytest

from fewmol.errors import ModelFileError
from fewmol.finetune.calibration import (
    apply_calibration,
    binary_nll,
    calibration_report,
    conformal_quantile,
    expected_calibration_error,
    fit_calibration,
    fit_temperature,
    load_calibration,
    save_calibration,
)


def _heteroscedastic(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """y = mean + noise with a spread the model knows up to a factor (std is informative)."""
    x = rng.uniform(0, 1, n)
    sigma = 0.1 + 2.0 * x
    mean = 3 * x
    y = mean + rng.normal(0, sigma)
    return y[:, None], mean[:, None], (0.5 * sigma)[:, None]  # a mis-scaled spread estimate


@pytest.mark.parametrize("use_std", [False, True], ids=["absolute", "normalized"])
@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_conformal_coverage_on_held_out_data(coverage: float, use_std: bool) -> None:
    """Fit on 200 'validation' points, test on 2000 new ones; 200 repeats average to target."""
    rng = np.random.default_rng(0)
    covs = []
    for _ in range(200):
        yv, mv, sv = _heteroscedastic(rng, 200)
        yt, mt, st = _heteroscedastic(rng, 2000)
        cal = fit_calibration(
            "regression", ["y"], yv, mv, sv if use_std else None, coverage=coverage
        )
        rep = calibration_report(cal, ["y"], yt, mt, st if use_std else None)
        covs.append(rep["mean"]["coverage"])
    # split conformal: E[coverage] is in [target, target + 1/(n+1)]
    assert coverage - 0.01 <= np.mean(covs) <= coverage + 1 / 201 + 0.01, np.mean(covs)
    assert np.std(covs) < 0.05


def test_normalized_intervals_follow_the_spread() -> None:
    rng = np.random.default_rng(1)
    yv, mv, sv = _heteroscedastic(rng, 500)
    yt, mt, st = _heteroscedastic(rng, 5000)
    cal = fit_calibration("regression", ["y"], yv, mv, sv, coverage=0.9)
    assert cal["tasks"]["y"]["method"] == "normalized" and cal["tasks"]["y"]["guaranteed"]
    cols = apply_calibration(cal, ["y"], mt, st)
    width = (cols["upper"] - cols["lower"])[:, 0]
    noisy = st[:, 0] > np.median(st)
    assert width[noisy].mean() > 2 * width[~noisy].mean()
    inside = (yt >= cols["lower"]) & (yt <= cols["upper"])
    # adaptive: both the noisy and the quiet half are covered, not just the average
    assert inside[noisy].mean() > 0.85 and inside[~noisy].mean() > 0.85
    absolute = fit_calibration("regression", ["y"], yv, mv, None, coverage=0.9)
    abs_cols = apply_calibration(absolute, ["y"], mt, None)
    assert np.ptp(abs_cols["upper"] - abs_cols["lower"]) < 1e-9  # constant width


def test_conformal_quantile_rank_and_small_sets() -> None:
    scores = np.arange(1, 20, dtype=float)  # n = 19: rank ceil(20 * 0.9) = 18
    assert conformal_quantile(scores, 0.9) == (18.0, True)
    q, ok = conformal_quantile(np.array([1.0, 2.0, 3.0]), 0.9)  # rank 4 > n: no guarantee
    assert (q, ok) == (3.0, False)
    assert np.isnan(conformal_quantile(np.array([]), 0.9)[0])


def test_missing_labels_per_task() -> None:
    y = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan]])
    mean = np.zeros((3, 2))
    cal = fit_calibration("regression", ["a", "b"], y, mean, None, coverage=0.5)
    assert cal["tasks"]["a"]["n"] == 3 and cal["tasks"]["b"]["method"] == "none"
    cols = apply_calibration(cal, ["a", "b"], mean, None)
    assert np.isfinite(cols["lower"][:, 0]).all() and np.isnan(cols["lower"][:, 1]).all()


def _overconfident(rng: np.random.Generator, n: int, t_true: float = 3.0):
    z = rng.normal(0, 2, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(float)
    p = 1 / (1 + np.exp(-z * t_true))  # logits 3x too large
    return y, p


def test_temperature_scaling_recovers_temperature_and_helps_held_out() -> None:
    rng = np.random.default_rng(0)
    yv, pv = _overconfident(rng, 3000)
    assert fit_temperature(pv, yv) == pytest.approx(3.0, rel=0.15)
    yt, pt = _overconfident(rng, 3000)
    cal = fit_calibration("classification", ["t"], yv[:, None], pv[:, None], None)
    rep = calibration_report(cal, ["t"], yt[:, None], pt[:, None], None)["tasks"]["t"]
    assert rep["nll_calibrated"] < rep["nll_raw"] - 0.05
    assert rep["ece_calibrated"] < 0.5 * rep["ece_raw"]
    # a monotone map: the ranking (and ROC-AUC) is unchanged
    prob = apply_calibration(cal, ["t"], pt[:, None], None)["prob_cal"][:, 0]
    assert np.all(np.diff(prob[np.argsort(pt)]) >= 0)


def test_isotonic_is_monotone_and_calibrated() -> None:
    rng = np.random.default_rng(2)
    yv, pv = _overconfident(rng, 3000)
    yt, pt = _overconfident(rng, 3000)
    cal = fit_calibration(
        "classification", ["t"], yv[:, None], pv[:, None], None, method="isotonic"
    )
    task = cal["tasks"]["t"]
    assert task["method"] == "isotonic" and np.all(np.diff(task["y"]) >= 0)
    prob = apply_calibration(cal, ["t"], pt[:, None], None)["prob_cal"][:, 0]
    assert ((prob >= 0) & (prob <= 1)).all()
    assert expected_calibration_error(yt, prob) < 0.5 * expected_calibration_error(yt, pt)
    assert binary_nll(yt, prob) < binary_nll(yt, pt)


def test_one_class_validation_keeps_raw_probabilities() -> None:
    cal = fit_calibration("classification", ["t"], np.ones((5, 1)), np.full((5, 1), 0.7), None)
    assert cal["tasks"]["t"]["method"] == "identity"
    p = np.array([[0.1], [0.9]])
    np.testing.assert_allclose(apply_calibration(cal, ["t"], p, None)["prob_cal"], p)


def test_save_load_round_trip_without_pickle(tmp_path) -> None:
    rng = np.random.default_rng(0)
    yv, pv = _overconfident(rng, 200)
    cal = fit_calibration("classification", ["t"], yv[:, None], pv[:, None], None, "isotonic")
    save_calibration(tmp_path, cal)
    assert load_calibration(tmp_path) == cal
    assert load_calibration(tmp_path / "nothing") is None
    (tmp_path / "calibration.json").write_text('{"kind": "other"}')
    with pytest.raises(ModelFileError):
        load_calibration(tmp_path)
