"""fewmol.data.dta: Davis / KIBA loading (DeepDTA conventions) and pair batching."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fewmol.data.dta import (
    PROTEIN_VOCAB_SIZE,
    UNKNOWN,
    DTAData,
    ProteinSet,
    encode_sequence,
    load_dta,
)
from fewmol.errors import InvalidInputError


@functools.cache
def _load(name: str, root: Path, ligands: str = "iso", valid_fold: int = 0) -> DTAData:
    """Each set loaded once per session (KIBA takes ~1 s)."""
    return load_dta(name, root, valid_fold=valid_fold, ligands=ligands)


def _check_folds(data: DTAData, train_fold_sizes: int) -> None:
    s = data.split
    parts = np.concatenate([s.train, s.valid, s.test])
    assert len(parts) == data.n_pairs == len(np.unique(parts))  # disjoint, all pairs used
    assert abs(len(s.valid) - train_fold_sizes) <= 1
    assert s.kind.startswith("deepdta-setting1")


def test_davis_counts_folds_and_pkd(shared_data: Path) -> None:
    data = _load("davis", shared_data)
    c = data.counts()
    assert (c["drugs"], c["proteins"], c["pairs"]) == (68, 442, 30056)
    # the paper's 379 "proteins" are the distinct sequences (mutants share the wild type's)
    assert c["distinct_protein_sequences"] == 379 and c["distinct_drug_smiles"] == 68
    assert c["test_pairs"] == 5010 and c["invalid_drugs"] == 0
    _check_folds(data, 5009)
    # Y.npy holds Kd in nM; pKd = -log10(Kd / 1e9), 10 uM (assay ceiling) -> 5.0
    y = np.load(shared_data / "dta" / "davis" / "Y.npy")
    np.testing.assert_allclose(
        data.affinity, -np.log10(y[data.drug_idx, data.prot_idx] / 1e9), rtol=1e-12
    )
    assert data.affinity.min() == pytest.approx(5.0) and 10.7 < data.affinity.max() < 10.9
    assert data.units == "pKd"


def test_davis_rows_and_columns_follow_json_order(shared_data: Path) -> None:
    """Imatinib binds ABL1 tightly, not its gatekeeper mutant T315I nor EGFR (Davis 2011)."""
    data = _load("davis", shared_data)
    y = np.full((68, 442), np.nan)
    y[data.drug_idx, data.prot_idx] = data.affinity
    imatinib = data.drug_ids.index("5291")
    names = data.proteins.names
    assert y[imatinib, names.index("ABL1")] == pytest.approx(8.96, abs=0.01)
    assert y[imatinib, names.index("ABL1(T315I)")] == pytest.approx(5.0)
    assert y[imatinib, names.index("EGFR")] == pytest.approx(5.0)


def test_kiba_counts_and_pair_order(shared_data: Path) -> None:
    data = _load("kiba", shared_data)
    c = data.counts()
    assert (c["drugs"], c["proteins"], c["pairs"]) == (2111, 229, 118254)
    assert c["test_pairs"] == 19709 and c["invalid_drugs"] == 0
    assert c["distinct_drug_smiles"] == 2111  # stereo kept (ligands_iso.txt)
    _check_folds(data, 19709)
    y = np.load(shared_data / "dta" / "kiba" / "Y.npy")
    rows, cols = np.where(~np.isnan(y))  # DeepDTA: fold files index this flattening
    np.testing.assert_array_equal(data.drug_idx, rows)
    np.testing.assert_array_equal(data.prot_idx, cols)
    np.testing.assert_array_equal(data.affinity, y[rows, cols])
    test = json.loads(
        (shared_data / "dta" / "kiba" / "folds" / "test_fold_setting1.txt").read_text()
    )
    np.testing.assert_array_equal(data.split.test, test)
    # ligands_can.txt has no stereo: 43 IDs collapse onto another's 2D structure (paper: 2,068)
    assert _load("kiba", shared_data, "can").counts()["distinct_drug_smiles"] == 2068


def test_valid_fold_choice(shared_data: Path) -> None:
    a, b = _load("davis", shared_data), _load("davis", shared_data, valid_fold=3)
    np.testing.assert_array_equal(a.split.test, b.split.test)
    assert not set(a.split.valid) & set(b.split.valid)
    assert set(b.split.valid) <= set(a.split.train)
    with pytest.raises(InvalidInputError, match="valid_fold"):
        load_dta("davis", shared_data, valid_fold=5)
    with pytest.raises(InvalidInputError, match="not a drug"):
        load_dta("bbbp", shared_data)


def test_protein_encoding() -> None:
    assert PROTEIN_VOCAB_SIZE == 27
    enc = encode_sequence("ACYxj*")
    assert enc.dtype == np.int8
    assert enc[:3].tolist() == [1, 3, 24] and enc[3] == 23 and enc[4] == enc[5] == UNKNOWN
    ps = ProteinSet.from_sequences(["a", "b"], ["MKV", "ACDXZ"])
    assert ps.tokens.dtype == np.int8 and ps.offsets.tolist() == [0, 3, 8]
    assert ps.sequence(1) == "ACDXZ" and ps.n_distinct() == 2


def test_batches_hold_each_protein_once_padded_to_batch_max(shared_data: Path) -> None:
    data = _load("davis", shared_data)
    graphs = data.featurize()
    lengths = data.proteins.lengths()
    short = np.flatnonzero(lengths < 400)[:3]
    pairs = np.flatnonzero(np.isin(data.prot_idx, short))[:50]  # 3 proteins, many drugs
    b = data.collate(graphs, pairs)
    assert b.num_pairs == 50 and b.proteins.shape[0] == 3
    assert b.proteins.shape[1] == lengths[short].max()  # padded only to this batch's longest
    assert b.drugs.num_graphs == len(np.unique(data.drug_idx[pairs]))
    for i, p in enumerate(pairs):  # every pair points back at its own protein and drug
        row = int(b.protein_index[i])
        n = int(b.protein_lengths[row])
        expected = data.proteins.tokens[data.proteins.offsets[data.prot_idx[p]] :][:n]
        np.testing.assert_array_equal(b.proteins[row, :n].numpy(), expected)
        assert int(b.proteins[row, n:].abs().sum()) == 0
        assert int(b.drugs.index[int(b.drug_index[i])]) == data.drug_idx[p]
    # long proteins are cut at max_len; an evaluation order groups pairs by protein
    b = data.collate(graphs, data.split.train[:256], max_len=300)
    assert b.proteins.shape[1] == 300 and int(b.protein_lengths.max()) == 300
    order = data.eval_order(data.split.test)
    assert sorted(order) == sorted(data.split.test)
    assert np.all(np.diff(data.prot_idx[order]) >= 0)


def _copy_davis(shared_data: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "dta" / "davis"
    shutil.copytree(shared_data / "dta" / "davis", dest)
    for f in dest.rglob("*"):
        f.chmod(0o644 if f.is_file() else 0o755)
    dest.chmod(0o755)
    return dest


def test_bad_smiles_reported_and_pairs_left_out(shared_data: Path, tmp_path: Path) -> None:
    dest = _copy_davis(shared_data, tmp_path)
    lig = json.loads((dest / "ligands_iso.txt").read_text())
    first = next(iter(lig))
    lig[first] = "C1CC(N"  # unclosed ring and branch
    (dest / "ligands_iso.txt").write_text(json.dumps(lig))
    data = load_dta("davis", tmp_path)
    assert [d["id"] for d in data.invalid_drugs] == [first] and data.smiles[0] is None
    assert data.dropped_pairs == 442
    kept = np.concatenate([data.split.train, data.split.valid, data.split.test])
    assert len(kept) == 30056 - 442 and not np.any(data.drug_idx[kept] == 0)
    assert data.graph_rows()[:2].tolist() == [-1, 0]


def test_davis_already_in_pkd_is_refused(shared_data: Path, tmp_path: Path) -> None:
    dest = _copy_davis(shared_data, tmp_path)
    y = np.load(dest / "Y.npy")
    np.save(dest / "Y.npy", -np.log10(y / 1e9))
    with pytest.raises(InvalidInputError, match="Kd in nM"):
        load_dta("davis", tmp_path)
