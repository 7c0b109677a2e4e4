"""Pre-trained encoder dirs: the format `fewmol pretrain` writes and `finetune --init` reads."""

from __future__ import annotations

import json

import pytest
import torch

from fewmol.errors import InvalidInputError, ModelFileError
from fewmol.io.modeldir import (
    build_encoder,
    encoder_hparams,
    load_init_encoder,
    load_model,
    load_pretrained_encoder,
    save_encoder,
)


def _encoder(seed: int = 0):
    torch.manual_seed(seed)
    return build_encoder(encoder_hparams("hu2019", num_layers=2, dim=16, dropout=0.0))


def test_save_then_load_gives_identical_weights(tmp_path):
    enc = _encoder()
    save_encoder(tmp_path / "pre", enc, "hu2019", method="unit-test", epochs=3)
    loaded, cfg = load_pretrained_encoder(tmp_path / "pre")
    assert cfg["kind"] == "encoder" and cfg["featurizer"] == "hu2019"
    assert cfg["method"] == "unit-test" and cfg["epochs"] == 3
    for (k, a), (k2, b) in zip(enc.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


def test_encoder_dir_is_not_a_property_model(tmp_path):
    save_encoder(tmp_path / "pre", _encoder(), "hu2019")
    with pytest.raises(ModelFileError, match="not a fine-tuned model"):
        load_model(tmp_path / "pre")


def test_encoder_weights_that_do_not_fit_the_config_fail_clearly(tmp_path):
    save_encoder(tmp_path / "pre", _encoder(), "hu2019")
    cfg = json.loads((tmp_path / "pre" / "config.json").read_text())
    cfg["encoder"]["dim"] = 32
    (tmp_path / "pre" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="do not fit"):
        load_pretrained_encoder(tmp_path / "pre")


def test_an_init_encoder_must_read_the_runs_featuriser(tmp_path):
    save_encoder(tmp_path / "pre", _encoder(), "hu2019")
    enc, cfg = load_init_encoder(tmp_path / "pre", "hu2019")
    assert cfg["source"] == str(tmp_path / "pre") and cfg["featurizer"] == "hu2019"
    with pytest.raises(InvalidInputError, match="featurizer 'hu2019' but this run uses 'ogb'"):
        load_init_encoder(tmp_path / "pre", "ogb")
