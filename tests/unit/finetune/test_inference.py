"""fewmol.finetune.inference: MC-dropout mode, chunk-invariant seeded sampling, spreads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewmol.data.store import featurize_to_graphset
from fewmol.finetune.inference import batch_bounds, mc_dropout, run_inference
from fewmol.finetune.module import FinetuneModule
from fewmol.finetune.run import predict_array
from fewmol.io.modeldir import build_model, encoder_hparams

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC", "OC(=O)c1ccccc1", "C#N"] * 5


def _module(seed: int, dropout: float = 0.3, task: str = "regression") -> FinetuneModule:
    torch.manual_seed(seed)
    cfg = {
        "encoder": encoder_hparams("hu2019", 2, 16, dropout),
        "head": {"type": "linear"},
        "target_names": ["a", "b"],
    }
    mod = FinetuneModule(build_model(cfg), task, y_mean=np.array([5.0, -1.0]), y_std=np.ones(2))
    # non-trivial running statistics, so eval-mode batch norm differs from train mode
    for bn in mod.model.encoder.batch_norms:
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return mod.eval()


@pytest.fixture(scope="module")
def graphs():
    return featurize_to_graphset(SMILES, "hu2019", cache=False)


def test_mc_dropout_mode_keeps_batch_norm_in_eval() -> None:
    model = _module(0).model
    with mc_dropout(model):
        assert model.encoder.training
        assert not any(bn.training for bn in model.encoder.batch_norms)
        assert not model.head.training
    assert not model.training and not model.encoder.training


def test_deterministic_pass_equals_predict_array(graphs) -> None:
    mod = _module(0)
    inf = run_inference([mod], graphs, embed=True)
    np.testing.assert_allclose(inf.mean, predict_array(mod, graphs), rtol=1e-6)
    assert inf.std is None and inf.embedding.shape == (len(SMILES), 16)


def test_ensemble_spread_is_std_over_members(graphs) -> None:
    mods = [_module(0), _module(1), _module(2)]
    inf = run_inference(mods, graphs)
    each = np.stack([predict_array(m, graphs) for m in mods])
    np.testing.assert_allclose(inf.members, each, rtol=1e-6)
    np.testing.assert_allclose(inf.mean, each.mean(0), rtol=1e-6)
    np.testing.assert_allclose(inf.std, each.std(0), rtol=1e-5, atol=1e-7)


def test_mc_dropout_is_seeded_by_row_not_by_chunk(graphs) -> None:
    mod = _module(0)
    keys = np.arange(len(SMILES)) * 3  # rows with gaps, as invalid input rows leave
    whole = run_inference([mod], graphs, keys, mc_samples=8, seed=1, batch_rows=16)
    assert whole.std is not None and (whole.std > 0).all()
    # the same molecules predicted as two chunks cut at a batch boundary
    cut = int(np.searchsorted(keys, 48))
    first = run_inference([mod], graphs.subset(np.arange(cut)), keys[:cut], 8, 1, batch_rows=16)
    rest = run_inference(
        [mod], graphs.subset(np.arange(cut, len(keys))), keys[cut:], 8, 1, batch_rows=16
    )
    np.testing.assert_array_equal(np.concatenate([first.mean, rest.mean]), whole.mean)
    np.testing.assert_array_equal(np.concatenate([first.std, rest.std]), whole.std)
    other = run_inference([mod], graphs, keys, mc_samples=8, seed=2, batch_rows=16)
    assert not np.allclose(other.mean, whole.mean)
    # the MC mean is near the deterministic prediction (dropout is mean-preserving on average)
    det = run_inference([mod], graphs, keys).mean
    assert np.abs(whole.mean - det).mean() < np.abs(det).mean()


def test_batch_bounds_group_rows_by_batch() -> None:
    assert batch_bounds(np.array([0, 1, 5, 8, 9, 17]), 8) == [(0, 3, 0), (3, 5, 1), (5, 6, 2)]
    assert batch_bounds(np.array([], dtype=np.int64), 8) == []
