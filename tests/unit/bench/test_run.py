"""Grid bookkeeping: which cells count as done, and the pre-training budget of an encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fewmol.bench.protocols import get_protocol
from fewmol.bench.report import budgets_text
from fewmol.bench.run import _budget_key, _done, init_for, pretrain_budget
from fewmol.errors import ModelFileError
from fewmol.io.modeldir import build_encoder, encoder_hparams, save_encoder


def test_a_cell_is_done_only_with_the_same_budget(tmp_path: Path) -> None:
    path = tmp_path / "seed0.json"
    assert not _done(path, {"epochs": 10})
    path.write_text(json.dumps({"epochs": 10, "max_pairs": None, "max_eval_pairs": None}))
    dta, reg = get_protocol("dta"), get_protocol("regression")
    assert _done(path, _budget_key(dta, 10, None, None))
    assert not _done(path, _budget_key(dta, 10, 200, None))  # a subsample is another budget
    assert not _done(path, _budget_key(dta, 20, None, None))
    assert _budget_key(reg, 10, None, None) == {"epochs": 10, "precision": "32-true"}
    path.write_text(json.dumps({"epochs": 10, "featurizer": "hu2019"}))
    assert _done(path, _budget_key(reg, 10, None, None, "hu2019"))
    assert not _done(path, _budget_key(reg, 10, None, None, "ogb"))  # another featuriser
    path.write_text("{not json")
    assert not _done(path, {"epochs": 10})


def test_precision_is_part_of_a_cells_budget(tmp_path: Path) -> None:
    reg, path = get_protocol("regression"), tmp_path / "seed0.json"
    # records written before --precision existed ran in float32
    path.write_text(json.dumps({"epochs": 10, "featurizer": "hu2019"}))
    assert _done(path, _budget_key(reg, 10, None, None, "hu2019"))
    assert not _done(path, _budget_key(reg, 10, None, None, "hu2019", "bf16-mixed"))
    path.write_text(json.dumps({"epochs": 10, "featurizer": "hu2019", "precision": "bf16-mixed"}))
    assert _done(path, _budget_key(reg, 10, None, None, "hu2019", "bf16-mixed"))
    assert not _done(path, _budget_key(reg, 10, None, None, "hu2019"))


def test_budget_of_an_encoder_without_pretraining_info(tmp_path: Path) -> None:
    enc = build_encoder(encoder_hparams("hu2019", num_layers=1, dim=8))
    save_encoder(tmp_path / "bare", enc, "hu2019")  # no method, data or wall time recorded
    budget = pretrain_budget(str(tmp_path / "bare"))
    assert budget["kind"] == "encoder" and budget["featurizer"] == "hu2019"
    assert budget["molecules"] is None and budget["epochs_done"] is None
    assert budgets_text([budget]).startswith("encoder on ? molecules, ? epochs, ? h")
    assert pretrain_budget(None) is None
    with pytest.raises(ModelFileError):
        pretrain_budget(str(tmp_path / "missing"))


def test_budget_counts_conformers_from_totals_when_no_per_molecule_summary(tmp_path) -> None:
    enc = build_encoder(encoder_hparams("hu2019", num_layers=1, dim=8))
    data = {"n_molecules": 40, "n_conformers": 100}
    save_encoder(tmp_path / "e", enc, "hu2019", method="graphmvp", epochs=2, epochs_done=2,
                 data=data, wall_time_s=90.0)  # fmt: skip
    budget = pretrain_budget(str(tmp_path / "e"))
    assert budget["conformers_per_molecule"] == 2.5
    sha = budget["weights_sha256"]
    assert budgets_text([budget]) == (
        f"graphmvp on 40 molecules × 2.5 conformers, 2 epochs, 1.5 min "
        f"(`{tmp_path / 'e'}`, weights sha256 {sha[:12]})"
    )


def test_budget_names_the_exact_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    enc = build_encoder(encoder_hparams("hu2019", num_layers=1, dim=8))
    save_encoder(tmp_path / "a", enc, "hu2019", method="attrmask")
    save_encoder(tmp_path / "same", enc, "hu2019", method="attrmask", wall_time_s=5.0)
    with torch.no_grad():
        next(enc.parameters()).add_(1.0)
    save_encoder(tmp_path / "other", enc, "hu2019", method="attrmask")
    a, same, other = (pretrain_budget(str(tmp_path / n)) for n in ("a", "same", "other"))
    assert len(a["weights_sha256"]) == 64
    # the same weights saved twice (config, and safetensors' header order, may differ)
    assert same["weights_sha256"] == a["weights_sha256"]
    assert other["weights_sha256"] != a["weights_sha256"]
    # a record without the hash (written before it was kept) still reads
    del a["weights_sha256"]
    assert "sha256" not in budgets_text([a])


def test_a_shipped_checkpoint_stands_in_only_for_its_own_method(
    tmp_path: Path, monkeypatch
) -> None:
    import fewmol.io.modeldir as modeldir

    enc = build_encoder(encoder_hparams("hu2019", num_layers=1, dim=8))
    for name in {"graphmvp-c", modeldir.SHIPPED_ALIASES["graphmvp"]}:
        save_encoder(tmp_path / "assets" / name, enc, "hu2019", method="graphmvp-c")
    monkeypatch.setattr(modeldir, "ASSETS", tmp_path / "assets")
    assert init_for("graphmvp-c", {}) == "graphmvp-c"
    assert init_for("none", {}) is None and init_for("rf", {}) is None
    assert init_for("graphmvp", {"graphmvp": "pre/"}) == "pre/"
    with pytest.raises(ModelFileError, match="pre-trained with 'graphmvp-c', not 'graphmvp'"):
        init_for("graphmvp", {})  # the alias must not pass GraphMVP-C off as GraphMVP


def test_one_phrase_per_encoder_dir_whatever_the_records_wrote() -> None:
    base = {"method": "infograph", "molecules": 50_000, "epochs": 7, "epochs_done": 7,
            "source": "w/rows-infograph"}  # fmt: skip
    old = {**base, "wall_time_s": 504.68}
    sha = {"weights_sha256": "9739439061a3ff"}
    new = [{**base, **sha, "wall_time_s": w} for w in (1028.3, 1028.27)]
    # the two later records round to the same wall time: one value, not a list of re-runs
    assert budgets_text(new) == (
        "infograph on 50,000 molecules, 7 epochs, 17.1 min (`w/rows-infograph`, weights sha256 "
        "9739439061a3)"
    )
    assert budgets_text([old, *new]) == (
        "infograph on 50,000 molecules, 7 epochs, 8.4 min or 17.1 min (as records give it) "
        "(`w/rows-infograph`, weights sha256 9739439061a3 where recorded)"
    )
    other = {**base, "epochs_done": 3, "epochs": 3, "wall_time_s": 60.0, "source": "w/short"}
    assert budgets_text([old, other]).count("; ") == 1  # another dir or recipe: its own phrase
    assert budgets_text([]) == ""
