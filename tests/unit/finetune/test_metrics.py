"""fewmol.finetune.metrics: masked multi-task metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fewmol.finetune.metrics import (
    HIGHER_IS_BETTER,
    classification_metrics,
    evaluate,
    is_better,
    per_task_classification,
    regression_metrics,
)

nan = float("nan")


def test_roc_auc_single_task_hand_checked() -> None:
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    # positive/negative pairs: (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4) -> 3/4
    m = classification_metrics(y, s)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["n_tasks_scored"] == 1
    # average precision: ranks 0.8(+) 0.4(-) 0.35(+) 0.1(-) -> (1/1 + 2/3) / 2
    assert m["prc_auc"] == pytest.approx((1 + 2 / 3) / 2)


def test_roc_auc_averaged_over_tasks_with_both_classes() -> None:
    y = np.array(
        [
            [0, 1, 1, nan],
            [1, 1, 0, nan],
            [0, 1, nan, nan],
            [1, 1, 1, nan],
        ]
    )
    s = np.array(
        [
            [0.1, 0.5, 0.9, 0.3],
            [0.9, 0.5, 0.1, 0.3],
            [0.2, 0.5, 0.5, 0.3],
            [0.8, 0.5, 0.2, 0.3],
        ]
    )
    per = per_task_classification(y, s)
    assert per["roc_auc"][0] == pytest.approx(1.0)
    assert math.isnan(per["roc_auc"][1])  # one class only
    # task 2: NaN row masked; positives 0.9, 0.2 vs negative 0.1 -> 1.0
    assert per["roc_auc"][2] == pytest.approx(1.0)
    assert math.isnan(per["roc_auc"][3])  # all NaN
    assert math.isnan(per["prc_auc"][1]) and math.isnan(per["prc_auc"][3])
    m = classification_metrics(y, s)
    assert m["n_tasks_scored"] == 2
    assert m["roc_auc"] == pytest.approx(1.0)


def test_nan_labels_are_masked_not_counted() -> None:
    y = np.array([[0.0], [1.0], [nan], [nan]])
    s_good = np.array([[0.1], [0.9], [0.99], [0.0]])
    # predictions on unlabelled rows must not change the score
    s_other = np.array([[0.1], [0.9], [0.0], [0.99]])
    assert classification_metrics(y, s_good)["roc_auc"] == 1.0
    assert classification_metrics(y, s_other)["roc_auc"] == 1.0


def test_mean_of_different_task_scores() -> None:
    y = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], dtype=float)
    s = np.array([[0.1, 0.6], [0.9, 0.4], [0.2, 0.3], [0.8, 0.1]])
    # task 0: perfect (1.0); task 1: positives 0.4, 0.3 vs negatives 0.6, 0.1 -> 2/4
    assert classification_metrics(y, s)["roc_auc"] == pytest.approx(0.75)


def test_no_scorable_task_gives_nan() -> None:
    m = classification_metrics(np.array([[1.0], [1.0]]), np.array([[0.2], [0.3]]))
    assert math.isnan(m["roc_auc"]) and math.isnan(m["prc_auc"])
    assert m["n_tasks_scored"] == 0


@pytest.mark.parametrize(
    ("shape_true", "shape_pred"), [((4, 2), (4, 3)), ((4,), (5,)), ((4, 2), (4,))]
)
def test_shape_mismatch_raises(shape_true, shape_pred) -> None:
    yt, yp = np.zeros(shape_true), np.zeros(shape_pred)
    with pytest.raises(ValueError, match="shapes differ"):
        classification_metrics(yt, yp)
    with pytest.raises(ValueError, match="shapes differ"):
        regression_metrics(yt, yp)


def test_one_dimensional_inputs_equal_column_inputs() -> None:
    y = np.array([0, 1, 0, 1])
    s = np.array([0.3, 0.6, 0.2, 0.1])
    assert classification_metrics(y, s) == classification_metrics(y[:, None], s[:, None])


def test_regression_metrics_hand_checked() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.0, 5.0])
    m = regression_metrics(y, p)
    # errors 0.5, 0, -1, 1
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 0 + 1 + 1) / 4))
    assert m["mae"] == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    # R^2 = 1 - SSres/SStot = 1 - 2.25 / 5
    assert m["r2"] == pytest.approx(1 - 2.25 / 5)
    assert m["n_tasks_scored"] == 1


def test_regression_multi_task_with_missing_labels() -> None:
    y = np.array([[1.0, nan], [3.0, 10.0], [nan, 20.0], [nan, nan]])
    p = np.array([[2.0, 100.0], [3.0, 12.0], [50.0, 17.0], [9.0, 9.0]])
    m = regression_metrics(y, p)
    # task 0: errors 1, 0 -> rmse sqrt(0.5), mae 0.5, r2 = 1 - 1/2
    # task 1: errors 2, -3 -> rmse sqrt(6.5), mae 2.5, r2 = 1 - 13/50
    assert m["rmse"] == pytest.approx((math.sqrt(0.5) + math.sqrt(6.5)) / 2)
    assert m["mae"] == pytest.approx((0.5 + 2.5) / 2)
    assert m["r2"] == pytest.approx(((1 - 1 / 2) + (1 - 13 / 50)) / 2)
    assert m["n_tasks_scored"] == 2


def test_regression_tasks_without_labels_are_skipped() -> None:
    y = np.array([[1.0, nan], [2.0, nan]])
    p = np.array([[1.0, 5.0], [4.0, 5.0]])
    m = regression_metrics(y, p)
    assert m["n_tasks_scored"] == 1
    assert m["rmse"] == pytest.approx(math.sqrt(2.0))
    empty = regression_metrics(np.array([nan, nan]), np.array([1.0, 2.0]))
    assert empty["n_tasks_scored"] == 0
    assert all(math.isnan(empty[k]) for k in ("rmse", "mae", "r2"))
    single = regression_metrics(np.array([1.0, nan]), np.array([3.0, 0.0]))
    assert single["rmse"] == pytest.approx(2.0) and math.isnan(single["r2"])


def test_evaluate_dispatch() -> None:
    y = np.array([0.0, 1.0])
    p = np.array([0.2, 0.7])
    assert evaluate("classification", y, p) == classification_metrics(y, p)
    assert evaluate("regression", y, p) == regression_metrics(y, p)
    with pytest.raises(ValueError, match="classification or regression"):
        evaluate("ranking", y, p)


@pytest.mark.parametrize(
    ("metric", "new", "best", "expected"),
    [
        ("roc_auc", 0.8, 0.7, True),
        ("roc_auc", 0.7, 0.8, False),
        ("roc_auc", 0.7, 0.7, False),
        ("prc_auc", 0.5, 0.4, True),
        ("r2", 0.1, -0.2, True),
        ("rmse", 0.5, 0.7, True),
        ("rmse", 0.9, 0.7, False),
        ("rmse", 0.7, 0.7, False),
        ("mae", 1.0, 2.0, True),
        ("mse", 3.0, 2.0, False),
        ("loss", 0.1, 0.2, True),
        ("roc_auc", 0.5, None, True),
        ("rmse", 10.0, None, True),
        ("roc_auc", 0.5, nan, True),
        ("rmse", 0.5, nan, True),
        ("roc_auc", nan, 0.5, False),
        ("rmse", nan, 0.5, False),
        ("rmse", nan, None, False),
        ("roc_auc", nan, nan, False),
    ],
)
def test_is_better(metric: str, new: float, best, expected: bool) -> None:
    assert is_better(metric, new, best) is expected


def test_direction_table() -> None:
    assert HIGHER_IS_BETTER["roc_auc"] and HIGHER_IS_BETTER["r2"]
    assert not HIGHER_IS_BETTER["rmse"] and not HIGHER_IS_BETTER["mae"]
    with pytest.raises(KeyError):
        is_better("accuracy_typo", 0.5, 0.4)


@pytest.mark.parametrize("seed", range(20))
def test_roc_auc_and_average_precision_equal_sklearn(seed: int) -> None:
    """Our rank-based ROC-AUC and AP match sklearn, ties included."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    y = rng.integers(0, 2, n).astype(float)
    y[:2] = [0.0, 1.0]  # both classes
    # coarse scores so that many tie, also across classes; some runs all-distinct
    s = rng.integers(0, 5, n) / 4.0 if seed % 2 else rng.random(n)
    per = per_task_classification(y, s)
    assert per["roc_auc"][0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert per["prc_auc"][0] == pytest.approx(average_precision_score(y, s), abs=1e-12)
