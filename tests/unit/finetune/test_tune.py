"""fewmol.finetune.tune: seeded trials, selection by validation only, the winner copied."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fewmol.finetune.run import FinetuneConfig
from fewmol.finetune.tune import SPACE, run_search, sample_trials, trial_dir


def test_trials_are_seeded_start_from_the_base_and_stay_in_the_space() -> None:
    a, b, c = sample_trials(12, 0), sample_trials(12, 0), sample_trials(12, 1)
    assert a == b != c and len(a) == 12 and a[0] == {}
    lo, hi = SPACE["lr"][1], SPACE["lr"][2]
    for t in a[1:]:
        assert set(t) == set(SPACE)
        assert lo * 0.999 <= t["lr"] <= hi * 1.001
        for name in ("dropout", "weight_decay", "batch_size"):
            assert t[name] in SPACE[name][1]
    assert len({t["lr"] for t in a[1:]}) > 5  # a log-uniform draw, not a constant


def _fake_train(scores: dict[float, tuple[float, float]], metric: str):
    """A 'training' that writes a model dir whose weights name the trial's lr."""

    def train(cfg: FinetuneConfig, d: Path) -> dict:
        d.mkdir(parents=True, exist_ok=True)
        (d / "model.safetensors").write_text(f"lr={cfg.lr}")
        (d / "checkpoints").mkdir(exist_ok=True)
        (d / "checkpoints" / "last.safetensors").write_text("resume state")
        valid, test = scores[cfg.lr]
        return {
            "select_metric": metric,
            "best_valid": {metric: valid},
            "test_at_best_valid": {metric: test},
        }

    return train


@pytest.mark.parametrize("metric, best_lr", [("roc_auc", 0.002), ("rmse", 0.0005)])
def test_the_best_validation_trial_wins_whatever_its_test_score(tmp_path, metric, best_lr):
    trials = [{}, {"lr": 0.002}, {"lr": 0.0005}]
    # valid: trial 1 highest, trial 2 lowest; test says the opposite and must be ignored
    scores = {0.001: (0.5, 0.5), 0.002: (0.9, 0.1), 0.0005: (0.2, 0.99)}
    seen = []
    summary = run_search(
        FinetuneConfig(lr=0.001), trials, tmp_path, _fake_train(scores, metric),
        lambda k, setting, m: seen.append((k, setting["lr"])),
    )  # fmt: skip
    assert summary["best_settings"]["lr"] == best_lr
    assert (tmp_path / "model.safetensors").read_text() == f"lr={best_lr}"
    assert not (tmp_path / "checkpoints").exists()  # resume state stays with the trial
    assert seen == [(0, 0.001), (1, 0.002), (2, 0.0005)]
    table = pd.read_csv(tmp_path / "trials.csv")
    assert table["trial"].tolist() == [0, 1, 2]
    assert table[f"valid_{metric}"].tolist() == [0.5, 0.9, 0.2]
    assert json.loads((tmp_path / "tune.json").read_text())["best_trial"] == summary["best_trial"]
    assert trial_dir(tmp_path, 2).name == "trial002"
