"""The GraphMVP loss-ablation table: paired gaps to the reference row, settings checked."""

from __future__ import annotations

from pathlib import Path

from fewmol.bench.ablation import ablation_table, settings_mismatches
from fewmol.bench.protocols import get_protocol
from fewmol.bench.run import pretrain_budget
from fewmol.io.modeldir import build_encoder, encoder_hparams, save_encoder


def _rec(method: str, dataset: str, seed: int, test: float, epochs: int = 100, losses=None):
    pre = {"losses": losses} if losses else None
    return {"method": method, "dataset": dataset, "seed": seed, "test": test, "epochs": epochs,
            "pretraining": pre}  # fmt: skip


def _row(text: str, method: str) -> list[str]:
    line = next(x for x in text.splitlines() if x.startswith(f"| **{method}**"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_gap_is_paired_by_seed_and_signed_by_the_metric() -> None:
    cls = get_protocol("classification")
    recs = [_rec("graphmvp", "bbbp", s, v) for s, v in enumerate([0.60, 0.70, 0.80])]
    # the variant is 2 points better on every seed: paired gap +2.0 with zero spread, although
    # the two rows' own spreads (8.2) would swamp a gap of means
    recs += [_rec("graphmvp-infonce", "bbbp", s, v) for s, v in enumerate([0.62, 0.72, 0.82])]
    recs += [_rec("none", "bbbp", 0, 0.5)]  # not part of the ablation
    text = ablation_table(cls, recs)
    row = _row(text, "graphmvp-infonce")
    assert row[1:3] == ["InfoNCE", "VRR"]
    assert row[3] == "72.0 ± 8.2; gap +2.0 ± 0.0"
    assert row[-1] == "+2.0 over 1"
    assert _row(text, "graphmvp")[-1] == "ref."
    assert "**none**" not in text and "graphmvp-no-vrr" not in text

    reg = get_protocol("regression")  # lower RMSE is better: a lower variant has a positive gap
    recs = [_rec("graphmvp", "esol", 0, 1.2, epochs=30)]
    recs += [_rec("graphmvp-no-vrr", "esol", 0, 1.0, epochs=30)]
    row = _row(ablation_table(reg, recs), "graphmvp-no-vrr")
    assert row[2] == "–" and row[3] == "1.000 ± 0.000 [30 ep] (n=1); gap +0.200 ± 0.000"


def test_cells_fine_tuned_for_other_epochs_are_not_paired() -> None:
    cls = get_protocol("classification")
    recs = [_rec("graphmvp", "tox21", s, 0.75) for s in range(3)]  # 100 epochs
    recs += [_rec("graphmvp-infonce", "tox21", s, 0.70, epochs=30) for s in range(3)]
    recs += [_rec("graphmvp", "bbbp", 0, 0.60), _rec("graphmvp-infonce", "bbbp", 0, 0.65)]
    row = _row(ablation_table(cls, recs), "graphmvp-infonce")
    assert row[4].endswith("no gap (fine-tuned for other epochs than the reference)")
    assert "gap -5.0" not in row[4]
    assert row[-1] == "+5.0 over 1"  # bbbp alone


def test_no_table_without_the_reference_and_a_variant() -> None:
    cls = get_protocol("classification")
    assert ablation_table(cls, [_rec("graphmvp-infonce", "bbbp", 0, 0.7)]) == ""
    assert ablation_table(cls, [_rec("graphmvp", "bbbp", 0, 0.7)]) == ""


def test_a_row_whose_encoder_used_other_losses_is_flagged() -> None:
    ok = _rec("graphmvp-infonce", "bbbp", 0, 0.7, losses={"contrastive": "infonce"})
    bad = _rec("graphmvp-no-vrr", "bace", 1, 0.7, losses={"generative": "vrr"})
    want = ["graphmvp-no-vrr/bace/seed1: generative vrr, not none"]
    assert settings_mismatches([ok, bad]) == want
    text = ablation_table(get_protocol("classification"), [_rec("graphmvp", "bace", 1, 0.6), bad])
    assert "Settings differ from the row names" in text


def test_records_keep_a_graphmvp_encoders_loss_settings(tmp_path: Path) -> None:
    enc = build_encoder(encoder_hparams("hu2019", num_layers=1, dim=8))
    pre = {"contrastive": "infonce", "generative": "vrr", "alpha1": 1.0, "temperature": 0.1,
           "mask_ratio": 0.15}  # fmt: skip
    save_encoder(tmp_path / "g", enc, "hu2019", method="graphmvp", pretraining=pre)
    save_encoder(tmp_path / "a", enc, "hu2019", method="attrmask", pretraining=pre)
    losses = pretrain_budget(str(tmp_path / "g"))["losses"]
    assert losses == {"contrastive": "infonce", "generative": "vrr", "alpha1": 1.0,
                      "temperature": 0.1}  # fmt: skip
    assert pretrain_budget(str(tmp_path / "a"))["losses"] is None  # a 2D method has no such losses
