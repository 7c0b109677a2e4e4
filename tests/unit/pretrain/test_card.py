"""Shipping a pre-training run as a named checkpoint: files, card figures, loadability."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from fewmol.errors import ModelFileError
from fewmol.io.modeldir import (
    build_encoder,
    encoder_hparams,
    load_pretrained_encoder,
    save_encoder,
)
from fewmol.pretrain.card import ship_checkpoint


def _fake_run(path, complete: bool):
    """An encoder dir like `fewmol pretrain` writes, with a two-epoch log."""
    enc = build_encoder(encoder_hparams("hu2019", num_layers=2, dim=16))
    info = {
        "method": "graphmvp-c",
        "epochs": 2 if complete else 100,
        "epochs_done": 2,
        "complete": complete,
        "data": {"n_molecules": 1234, "source": "moses", "n_conformers": 1234,
                 "conformers_per_molecule": {"min": 1, "mean": 1.0, "max": 1},
                 "conformer_settings": {"num_confs": 1, "seed": 42}, "n_excluded": 3,
                 "excluded_reasons": {"embedding failed": 3}},
        "pretraining": {"batch_size": 32, "lr": 0.001},
        "wall_time_s": 7200.0,
        "train_time_s": 7000.0,
        "molecules_per_s": 88.5,
        "hardware": "test box",
    }  # fmt: skip
    save_encoder(path, enc, "hu2019", **info)
    pd.DataFrame({"epoch": [1, 2], "loss": [3.5, 2.25], "molecules": [1234, 1234]}).to_csv(
        path / "pretrain_log.csv", index=False
    )
    return enc


def test_shipped_dir_loads_and_card_states_the_budget(tmp_path):
    enc = _fake_run(tmp_path / "run", complete=False)
    out = ship_checkpoint(tmp_path / "run", tmp_path / "ckpt" / "graphmvp", "fewmol pretrain X")
    loaded, cfg = load_pretrained_encoder(out)
    for k, v in enc.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    card = (out / "README.md").read_text()
    assert "2 done of 100 planned" in card and "stopped early" in card
    assert "1,234" in card and "2.00 h" in card and "88.5 molecules/s" in card
    assert "fewmol pretrain X" in card and "--init graphmvp" in card
    assert "| 2 | 2.25 |" in card  # the log row of the last epoch
    assert json.loads((out / "config.json").read_text())["epochs_done"] == 2
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"  # drawn from the log


def test_card_of_a_finished_short_run_says_its_budget_and_provenance(tmp_path):
    _fake_run(tmp_path / "run", complete=True)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    cfg.update(git_commit="b" * 40, git_commits=["a" * 40, "b" * 40], provenance_note="fixed")
    (tmp_path / "run" / "config.json").write_text(json.dumps(cfg))
    card = (ship_checkpoint(tmp_path / "run", tmp_path / "c", "cmd") / "README.md").read_text()
    assert "2 done of 2 planned (complete)" in card and "stopped early" not in card
    assert "far smaller budget than the papers' 100" in card
    assert "epochs trained at commits aaaaaaaaaa, bbbbbbbbbb" in card
    assert "Provenance note: fixed." in card


def test_reshipping_replaces_the_old_checkpoint(tmp_path):
    _fake_run(tmp_path / "run", complete=False)
    dest = tmp_path / "graphmvp"
    ship_checkpoint(tmp_path / "run", dest, "first")
    _fake_run(tmp_path / "run", complete=True)
    ship_checkpoint(tmp_path / "run", dest, "second")
    card = (dest / "README.md").read_text()
    assert "second" in card and "(complete)" in card and "stopped early" not in card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graphmvp", "run"]  # no temp dirs


def test_unfinished_dir_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(ModelFileError, match="not a finished pre-training dir"):
        ship_checkpoint(tmp_path / "run", tmp_path / "x", "cmd")


def test_the_checkpoint_shipped_in_the_package_loads_and_states_its_budget():
    from fewmol.io.modeldir import ASSETS, SHIPPED_ALIASES

    for name in ("graphmvp", "graphmvp-c"):  # the alias `make demo` uses, and the earlier one
        enc, cfg = load_pretrained_encoder(name)
        assert cfg["method"] == "graphmvp-c" and cfg["encoder"]["num_layers"] == 5
        assert all(torch.isfinite(p).all() for p in enc.parameters())
        assert sum(p.numel() for p in enc.parameters()) > 1_000_000  # the full 5 x 300 GIN
        shipped = ASSETS / SHIPPED_ALIASES.get(name, name)
        card = (shipped / "README.md").read_text()
        assert f"{cfg['epochs_done']} done of {cfg['epochs']} planned" in card
        assert f"featuriser {cfg['featurizer']}" in card
        assert (shipped / "loss_curve.png").exists()
    assert load_pretrained_encoder("graphmvp")[1]["featurizer"] == "ogb"
