"""--freeze-encoder, --unfreeze-after and --encoder-lr on a pre-trained encoder (tiny runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fewmol.data.splits import make_split
from fewmol.data.tables import read_table
from fewmol.errors import InvalidInputError
from fewmol.finetune.module import FinetuneModule
from fewmol.finetune.run import FinetuneConfig, FinetuneRun, finetune
from fewmol.io.checkpoint import load_tensors
from fewmol.io.modeldir import build_encoder, build_model, encoder_hparams, save_encoder

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:.*treespec.*"),
    pytest.mark.filterwarnings("ignore:Total length of `DataLoader`.*"),
]

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.csv"
SMALL = {"num_layers": 2, "dim": 32, "batch_size": 16, "progress": False, "accelerator": "cpu"}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """An encoder dir as `fewmol pretrain` writes it (random weights, non-trivial BN stats)."""
    torch.manual_seed(0)
    enc = build_encoder(encoder_hparams("hu2019", 2, 32, 0.0))
    for bn in enc.batch_norms:
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    out = tmp_path_factory.mktemp("pre") / "enc"
    save_encoder(out, enc, "hu2019", method="unit-test")
    return out, {k: v.clone() for k, v in enc.state_dict().items()}


@pytest.fixture(scope="module")
def data():
    table = read_table(TINY)
    return table, make_split("random", table.smiles, seed=0)


def _encoder_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    w = load_tensors(model_dir / "model.safetensors")
    return {k[len("encoder.") :]: v for k, v in w.items() if k.startswith("encoder.")}


def test_frozen_encoder_is_unchanged_after_training(tmp_path, pretrained, data) -> None:
    enc_dir, init = pretrained
    table, split = data
    cfg = FinetuneConfig(**SMALL, epochs=3, init=str(enc_dir), freeze_encoder=True, lr=1e-2)
    finetune(table, split, cfg, tmp_path / "m")
    after = _encoder_weights(tmp_path / "m")
    assert after.keys() == init.keys()
    for k, v in init.items():  # weights and batch-norm statistics alike
        assert torch.equal(after[k], v), k
    head = load_tensors(tmp_path / "m" / "model.safetensors")["head.linear.weight"]
    assert head.abs().sum() > 0
    saved = json.loads((tmp_path / "m" / "config.json").read_text())["training"]
    assert saved["freeze_encoder"] is True and saved["unfreeze_after"] is None


def test_unfreeze_after_trains_encoder_from_epoch_e(tmp_path, pretrained, data, monkeypatch):
    enc_dir, init = pretrained
    table, split = data
    seen: list[dict[str, torch.Tensor]] = []
    original = FinetuneRun.record_epoch

    def spy(self, row, module, opt):
        seen.append({k: v.clone() for k, v in module.model.encoder.state_dict().items()})
        original(self, row, module, opt)

    monkeypatch.setattr(FinetuneRun, "record_epoch", spy)
    cfg = FinetuneConfig(
        **SMALL, epochs=4, init=str(enc_dir), unfreeze_after=2, encoder_lr=1e-3, lr=1e-2
    )
    finetune(table, split, cfg, tmp_path / "m")
    assert len(seen) == 4
    key = "layers.0.mlp.0.weight"
    assert torch.equal(seen[0][key], init[key]) and torch.equal(seen[1][key], init[key])
    assert not torch.equal(seen[2][key], init[key])  # epoch 3 (index 2) trains the encoder
    assert not torch.equal(
        seen[2]["batch_norms.0.running_mean"], init["batch_norms.0.running_mean"]
    )
    saved = json.loads((tmp_path / "m" / "config.json").read_text())["training"]
    assert (saved["unfreeze_after"], saved["encoder_lr"]) == (2, 1e-3)


def test_encoder_lr_is_its_own_parameter_group() -> None:
    cfg = {"encoder": encoder_hparams("hu2019", 2, 8, 0.0), "head": {}, "target_names": ["a"]}
    module = FinetuneModule(build_model(cfg), "classification", lr=1e-3, encoder_lr=1e-5)
    groups = module.configure_optimizers().param_groups
    enc_ids = {id(p) for p in module.model.encoder.parameters()}
    assert groups[0]["lr"] == 1e-5 and {id(p) for p in groups[0]["params"]} == enc_ids
    assert groups[1]["lr"] == 1e-3


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"freeze_encoder": True}, "need a pre-trained encoder"),
        ({"unfreeze_after": 1}, "need a pre-trained encoder"),
        ({"unfreeze_after": 3, "init": "x"}, "--unfreeze-after must be between 1"),
        ({"unfreeze_after": 0, "init": "x"}, "--unfreeze-after must be between 1"),
        ({"freeze_encoder": True, "init": "x", "strategy": "ddp"}, "DDP"),
        ({"encoder_lr": -1.0}, "--encoder-lr"),
        ({"mc_dropout": 5, "dropout": 0.0}, "--dropout > 0"),
        ({"coverage": 1.0}, "--coverage"),
        ({"calibration": "platt"}, "--calibration"),
        ({"baseline": "xgb"}, "--baseline"),
    ],
)
def test_contradictory_settings_are_user_errors(kw: dict, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        FinetuneConfig(epochs=3, **kw).validate()
