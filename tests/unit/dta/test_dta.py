"""fewmol.dta: concordance index, the DTA model, and a short run on Davis (dir, resume, --init)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fewmol.data.dta import DTAData, EvalEntities, iter_pair_batches, load_dta
from fewmol.dta.model import load_dta_model
from fewmol.dta.module import DTAModule, _inversions, concordance_index, dta_metrics
from fewmol.dta.run import DTAConfig, DTARun, train_dta
from fewmol.errors import InvalidInputError
from fewmol.io.modeldir import build_encoder, encoder_hparams, save_encoder

pytestmark = [pytest.mark.filterwarnings("ignore:.*treespec.*")]

TINY = DTAConfig(
    epochs=3,
    batch_size=32,
    lr=3e-3,
    num_layers=2,
    dim=32,
    protein_emb_dim=8,
    protein_filters=(8, 8, 8),
    protein_kernel=4,
    mlp_hidden=(32, 16),
    max_len=200,
    max_pairs=300,
    max_eval_pairs=100,
    accelerator="cpu",
    progress=False,
)


@pytest.fixture
def davis(shared_data: Path) -> DTAData:
    return load_dta("davis", shared_data)


def _brute_ci(y: np.ndarray, p: np.ndarray) -> float:
    """The textbook double loop over ordered pairs with y_i > y_j."""
    hits = pairs = 0.0
    for i in range(len(y)):
        for j in range(len(y)):
            if y[i] > y[j]:
                pairs += 1
                hits += 1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0
    return hits / pairs


def test_ci_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    p = y + rng.normal(size=200)
    assert concordance_index(y, p) == pytest.approx(_brute_ci(y, p), abs=1e-12)
    # with many ties in both labels (like Davis's pKd = 5 ceiling) and predictions
    y, p = np.round(y), np.round(p * 2) / 2
    y[:60] = 5.0
    assert concordance_index(y, p) == pytest.approx(_brute_ci(y, p), abs=1e-12)
    for seed in range(20):  # small random cases, including n = 2
        r = np.random.default_rng(seed)
        n = int(r.integers(2, 30))
        y, p = r.integers(0, 4, n).astype(float), r.integers(0, 3, n).astype(float)
        if len(np.unique(y)) > 1:
            assert concordance_index(y, p) == pytest.approx(_brute_ci(y, p), abs=1e-12)


def test_ci_edge_cases_and_inversions() -> None:
    y = np.arange(10.0)
    assert concordance_index(y, y) == 1.0
    assert concordance_index(y, -y) == 0.0
    assert concordance_index(y, np.zeros(10)) == 0.5
    assert np.isnan(concordance_index(np.ones(5), y[:5]))
    r = np.random.default_rng(1).integers(0, 7, 101)
    assert _inversions(r) == sum(int(r[i] > r[j]) for i in range(101) for j in range(i + 1, 101))
    m = dta_metrics(y, y + 1)
    assert m["mse"] == 1.0 and m["rmse"] == 1.0 and m["ci"] == 1.0
    assert m["pearson"] == pytest.approx(1.0)


def test_tiny_run_learns_and_writes_its_dir(davis: DTAData, tmp_path: Path) -> None:
    cfg = dataclasses.replace(TINY, epochs=5)
    out = tmp_path / "run"
    metrics = train_dta(davis, cfg, out)
    log = pd.read_csv(out / "train_log.csv")
    assert len(log) == 5 and log["train_loss"].iloc[-1] < log["train_loss"].iloc[0]
    assert (log["train_pairs_per_s"] > 0).all()
    for name in ("config.json", "split.json", "model.safetensors", "predictions.csv"):
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "last.safetensors").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for key in ("test_at_best_valid", "test_at_last_epoch"):
        assert {"mse", "ci"} <= set(saved[key]) and 0 <= saved[key]["ci"] <= 1
    assert saved["split_sizes"] == {"train": 300, "valid": 100, "test": 100}
    assert saved["throughput"]["train_pairs_per_s"] > 0 and saved["max_pairs"] == 300
    cfg_json = json.loads((out / "config.json").read_text())
    assert cfg_json["kind"] == "dta_model" and cfg_json["units"] == "pKd"
    assert cfg_json["data"]["proteins"] == 442 and cfg_json["protein_encoder"]["filters"] == [8] * 3

    # the saved best model reproduces the test predictions written at its epoch
    model, cfg_loaded = load_dta_model(out)
    scale = cfg_loaded["target_scaling"]
    module = DTAModule(model, y_mean=scale["mean"], y_std=scale["std"]).eval()
    preds = pd.read_csv(out / "predictions.csv").query("split == 'test'")
    graphs = davis.featurize()
    got = {}
    with torch.no_grad():
        for b in iter_pair_batches(davis, graphs, preds["pair"].to_numpy(), 64, max_len=200):
            got.update(zip(b.index.tolist(), module.to_output_scale(module(b)).tolist()))
    np.testing.assert_allclose([got[p] for p in preds["pair"]], preds["prediction"], rtol=1e-5)
    best = saved["test_at_best_valid"]["mse"]
    assert np.mean((preds["prediction"] - preds["pKd"]) ** 2) == pytest.approx(best, rel=1e-5)


def test_evaluation_encodes_each_entity_once_and_matches_pair_batches(davis: DTAData) -> None:
    run = DTARun(davis, TINY, Path("."))
    module, _ = run.build()
    module.eval()
    graphs = davis.featurize()
    pairs = np.concatenate([run.split.valid, run.split.test])
    ent = EvalEntities.of_pairs(davis, graphs, pairs, TINY.max_len)
    assert set(ent.drugs) == set(davis.drug_idx[pairs]) and len(ent.drugs) == len(set(ent.drugs))
    assert set(ent.proteins) == set(davis.prot_idx[pairs])
    module.eval_entities, module.eval_chunk = ent, 16
    calls = {"drug": 0, "prot": 0}
    embed, prot_enc = module.model.embed_drugs, module.model.protein_encoder.forward
    module.model.embed_drugs = lambda *a: (calls.__setitem__("drug", calls["drug"] + 1), embed(*a))[
        1
    ]
    module.model.protein_encoder.forward = lambda *a, **k: (
        calls.__setitem__("prot", calls["prot"] + 1),
        prot_enc(*a, **k),
    )[1]
    with torch.no_grad():
        ids = davis.collate_ids(pairs)
        drug, prot = module.entity_tables()
        fast = module.model.pair_head(drug, prot, ids.drug, ids.protein)
        module.entity_tables()  # cached: no second pass
        assert calls == {"drug": -(-len(ent.drugs) // 16), "prot": -(-len(ent.proteins) // 16)}
        slow = {}
        for b in iter_pair_batches(davis, graphs, pairs, 64, max_len=TINY.max_len):
            slow.update(zip(b.index.tolist(), module(b).tolist()))
    np.testing.assert_allclose(
        fast.numpy(), [slow[p] for p in pairs.tolist()], rtol=1e-5, atol=1e-6
    )
    module.on_validation_epoch_start()  # new weights next time: tables are rebuilt
    assert module._tables is None


def test_resume_continues_like_an_unbroken_run(davis: DTAData, tmp_path: Path) -> None:
    whole = train_dta(davis, TINY, tmp_path / "whole")
    train_dta(davis, dataclasses.replace(TINY, epochs=2), tmp_path / "cut")
    resumed = train_dta(davis, TINY, tmp_path / "cut", resume=True)
    assert resumed["epochs_done"] == 3
    a = pd.read_csv(tmp_path / "whole" / "train_log.csv")
    b = pd.read_csv(tmp_path / "cut" / "train_log.csv")
    cols = ["epoch", "train_loss", "valid_mse", "test_mse", "test_ci"]
    pd.testing.assert_frame_equal(a[cols], b[cols], rtol=1e-5)
    assert resumed["test_at_best_valid"] == pytest.approx(whole["test_at_best_valid"], rel=1e-5)
    with pytest.raises(InvalidInputError, match="cannot resume"):
        train_dta(davis, dataclasses.replace(TINY, max_pairs=200), tmp_path / "cut", resume=True)


def test_init_loads_a_pretrained_gin(davis: DTAData, tmp_path: Path) -> None:
    torch.manual_seed(3)
    enc = build_encoder(encoder_hparams("hu2019", num_layers=2, dim=32, dropout=0.0))
    save_encoder(tmp_path / "enc", enc, "hu2019", method="test")
    module, config = DTARun(
        davis, dataclasses.replace(TINY, init=str(tmp_path / "enc")), tmp_path
    ).build()
    for k, v in enc.state_dict().items():
        assert torch.equal(module.model.drug_encoder.state_dict()[k], v), k
    assert config["init_from"] == str(tmp_path / "enc") and config["featurizer"] == "hu2019"
    bad = dataclasses.replace(TINY, init=str(tmp_path / "enc"), featurizer="ogb")
    with pytest.raises(InvalidInputError, match="featurizer"):
        DTARun(davis, bad, tmp_path).build()
