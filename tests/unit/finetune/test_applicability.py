"""fewmol.finetune.applicability: nearest-neighbour distances, thresholds, storage."""

from __future__ import annotations

import numpy as np
import pytest

import fewmol.finetune.applicability as ad_mod
from fewmol.chem.fingerprints import morgan_packed
from fewmol.errors import ModelFileError
from fewmol.finetune.applicability import Applicability, fit_applicability, nearest_distance

TRAIN = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "OC(=O)c1ccccc1",
    "Oc1ccccc1C(=O)O",
    "COc1ccc2cc([C@H](C)C(=O)O)ccc2c1",
    "CCOC(=O)c1ccccc1",
    "Cc1ccc(C(=O)O)cc1",
    "OC(=O)c1ccc(Cl)cc1",
]
VALID = ["CC(=O)Oc1ccccc1C(=O)OC", "Cc1ccccc1C(=O)O", "OC(=O)c1ccc(Br)cc1"]


def test_nearest_distance_equals_brute_force(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    q, r = rng.normal(size=(37, 16)), rng.normal(size=(50, 16))
    brute = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_distance(q, r), brute, rtol=1e-5)
    monkeypatch.setattr(ad_mod, "_BLOCK_BYTES", 8)  # one query row per block
    np.testing.assert_allclose(nearest_distance(q, r), brute, rtol=1e-5)
    assert nearest_distance(r[:5] * 1.0, r).max() < 1e-6  # a training point: distance 0


def _fit() -> tuple[Applicability, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    train_emb = rng.normal(size=(len(TRAIN), 8)).astype(np.float32)
    valid_emb = train_emb[: len(VALID)] + 0.3 * rng.normal(size=(len(VALID), 8))
    return fit_applicability(TRAIN, train_emb, VALID, valid_emb, 0.95), train_emb, valid_emb


def test_training_molecule_in_domain_unrelated_out() -> None:
    ad, train_emb, _ = _fit()
    query = [TRAIN[2], "FC(F)(F)C(F)(F)C(F)(F)C(F)(F)F", "[Xe]"]
    emb = np.stack([train_emb[2], 10 + train_emb[0], 10 + train_emb[1]])
    sim, dist, flag = ad.score(morgan_packed(query), emb)
    assert sim[0] == 1.0 and dist[0] < 1e-5 and flag[0]
    assert sim[1] < 0.2 and sim[2] < 0.1
    assert not flag[1] and not flag[2]


def test_thresholds_are_validation_quantiles() -> None:
    ad, _, valid_emb = _fit()
    sim, dist, flag = ad.score(morgan_packed(VALID), valid_emb)
    assert ad.sim_threshold == pytest.approx(np.quantile(sim, 0.05))
    assert ad.dist_threshold == pytest.approx(np.quantile(dist, 0.95))
    assert 0 < ad.sim_threshold < 1 and ad.dist_threshold > 0


def test_no_validation_split_means_no_flag() -> None:
    ad = fit_applicability(TRAIN, np.zeros((len(TRAIN), 4)), [], np.zeros((0, 4)))
    assert not ad.has_thresholds
    _, _, flag = ad.score(morgan_packed(TRAIN[:2]), np.zeros((2, 4)))
    assert flag is None


def test_save_load_round_trip(tmp_path) -> None:
    ad, train_emb, _ = _fit()
    ad.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "applicability.json",
        "applicability.safetensors",
    }
    back = Applicability.load(tmp_path)
    np.testing.assert_array_equal(back.train_fps, ad.train_fps)
    np.testing.assert_array_equal(back.train_emb, train_emb)
    assert back.train_fps.dtype == np.uint8
    assert (back.sim_threshold, back.dist_threshold) == (ad.sim_threshold, ad.dist_threshold)
    assert back.info["n_train"] == len(TRAIN)
    assert Applicability.load(tmp_path / "none") is None
    (tmp_path / "applicability.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="safetensors"):
        Applicability.load(tmp_path)


def test_scoring_with_training_rows_equals_scoring_all() -> None:
    """Rows that are training molecules get what a full comparison gives, without one."""
    rng = np.random.default_rng(0)
    smiles = TRAIN + VALID + ["[Na+]", "C"]
    emb = rng.normal(size=(len(smiles), 8)).astype(np.float32)
    train = np.array([0, 1, 2, 3, 4, 5, 6, 7, 11])  # methane among the training molecules
    valid = np.array([8, 9, 10])
    fps = morgan_packed(smiles)
    ad = fit_applicability(
        [smiles[i] for i in train], emb[train], [smiles[i] for i in valid], emb[valid]
    )
    # an all-zero fingerprint (no valid molecule has one, but max_tanimoto defines it as 0)
    fps[11] = 0
    ad.train_fps[8] = 0
    full = ad.score(fps, emb)
    fast = ad.score_with_training_rows(fps, emb, train)
    np.testing.assert_array_equal(fast[0], full[0])
    np.testing.assert_allclose(fast[1], full[1], atol=1e-3)
    np.testing.assert_array_equal(fast[2], full[2])
    assert (fast[1][train] == 0).all() and fast[0][11] == 0 and (fast[0][train[:-1]] == 1).all()
