"""Multi-task datasets: label filtering, loaders (synthetic and shared data), statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fewmol.errors import DatasetNotFoundError, InvalidInputError
from fewmol.multitask.datasets import (
    MultitaskDataset,
    filter_min_labels,
    load_chembl,
    load_kiba_mt,
    load_multitask,
    statistics,
    statistics_table,
)
from fewmol.multitask.task_graph import TaskGraph

# ---- filter_min_labels -----------------------------------------------------------------------


def _slow_filter(y: np.ndarray, k_task: int, k_mol: int, seed: int) -> tuple[list, list]:
    """Reference: remove one violating row or column at a time, in a random order."""
    rng = np.random.default_rng(seed)
    rows, cols = set(range(y.shape[0])), set(range(y.shape[1]))
    lab = np.isfinite(y)
    while True:
        bad = [("r", i) for i in rows if sum(lab[i, j] for j in cols) < k_mol]
        bad += [("c", j) for j in cols if sum(lab[i, j] for i in rows) < k_task]
        if not bad:
            return sorted(rows), sorted(cols)
        kind, idx = bad[rng.integers(len(bad))]
        (rows if kind == "r" else cols).discard(idx)


@pytest.mark.parametrize("k_task,k_mol", [(3, 3), (5, 5), (6, 2), (1, 1), (0, 0), (40, 40)])
def test_filter_min_labels_fixed_point_equals_reference(k_task: int, k_mol: int) -> None:
    rng = np.random.default_rng(k_task * 10 + k_mol)
    y = np.where(rng.random((40, 15)) < 0.25, 1.0, np.nan)
    y[:5] = 0.0  # a dense corner survives high thresholds
    rows, cols = filter_min_labels(y, k_task, min_molecule_labels=k_mol)
    assert rows.dtype == np.int64 and cols.dtype == np.int64
    block = np.isfinite(y[np.ix_(rows, cols)])
    if rows.size and cols.size:
        assert block.sum(1).min() >= k_mol and block.sum(0).min() >= k_task
    ref = _slow_filter(y, k_task, k_mol, seed=1)
    assert (rows.tolist(), cols.tolist()) == ref
    # Idempotent: filtering the result again changes nothing.
    r2, c2 = filter_min_labels(y[np.ix_(rows, cols)], k_task, min_molecule_labels=k_mol)
    assert r2.size == rows.size and c2.size == cols.size


def test_filter_min_labels_default_is_symmetric() -> None:
    y = np.where(np.random.default_rng(0).random((30, 10)) < 0.5, 0.0, np.nan)
    a = filter_min_labels(y, 4)
    b = filter_min_labels(y, 4, min_molecule_labels=4)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


# ---- synthetic ChEMBL directory --------------------------------------------------------------

_SMILES = [
    "CCO", "OCC", "CCN", "CCC", "c1ccccc1", "CC(=O)O", "CCCl", "CCBr",
    "C1CCCCC1", "CC(C)O", "not_a_smiles", "CCOC", "CNC", "COC(C)=O",
]  # fmt: skip
_MAPPING = """# chembl_35 target list
P00001\tCHEMBL1\tHistamine H2 receptor\tSINGLE PROTEIN
P00002\tCHEMBL2\tHistamine H2 receptor\tSINGLE PROTEIN
P00003\tCHEMBL3\tKinase A\tSINGLE PROTEIN
P00004\tCHEMBL4\tKinase B\tSINGLE PROTEIN
P00005\tCHEMBL5\tLonely enzyme\tSINGLE PROTEIN
P00003\tCHEMBL900\tKinase A/B complex\tPROTEIN COMPLEX
P00004\tCHEMBL900\tKinase A/B complex\tPROTEIN COMPLEX
P00001\tCHEMBL901\tSome family\tPROTEIN FAMILY
P00003\tCHEMBL901\tSome family\tPROTEIN FAMILY
P00004\tCHEMBL901\tSome family\tPROTEIN FAMILY
P99999\tCHEMBL901\tSome family\tPROTEIN FAMILY
"""


@pytest.fixture
def chembl_dir(tmp_path: Path) -> Path:
    """A data dir with a 14 x 6 chembl_5thresh (one invalid SMILES, one duplicate molecule)."""
    rng = np.random.default_rng(0)
    vals = np.round(rng.uniform(4, 9, size=(len(_SMILES), 6)), 2)
    vals[rng.random(vals.shape) < 0.15] = np.nan
    vals[:, 5] = np.nan  # CHEMBL6: almost unlabelled, filtered away
    vals[:2, 5] = 7.0
    vals[2:4, :4] = 9.0  # CHEMBL1-4 have strong actives at any threshold used below
    vals[:, 4] = np.where(np.arange(len(_SMILES)) % 2 == 0, 8.0, 4.5)  # CHEMBL5: both classes
    df = pd.DataFrame(vals, columns=[f"CHEMBL{i}" for i in range(1, 7)])
    df.insert(0, "smiles", _SMILES)
    d = tmp_path / "data" / "chembl_multitask"
    d.mkdir(parents=True)
    df.to_csv(d / "chembl_5thresh.csv.gz", index=False)
    (d / "chembl_uniprot_mapping.txt").write_text(_MAPPING)
    return tmp_path / "data"


def test_load_chembl_synthetic(chembl_dir: Path) -> None:
    with pytest.warns(UserWarning, match="1 invalid SMILES"):
        ds = load_chembl(chembl_dir, threshold_pchembl=6.0, min_labels=3, top_k=None)
    assert ds.name == "chembl-3"
    assert ds.task_names == ["CHEMBL1", "CHEMBL2", "CHEMBL3", "CHEMBL4", "CHEMBL5"]
    assert ds.info["invalid_smiles"] == 1 and ds.info["duplicates_merged"] == 1  # CCO == OCC
    assert len(set(ds.smiles)) == len(ds.smiles) and "CCO" in ds.smiles
    assert ds.y.dtype == np.float32 and set(np.unique(ds.y[np.isfinite(ds.y)])) == {0.0, 1.0}
    lab = np.isfinite(ds.y)
    assert lab.sum(0).min() >= 3 and lab.sum(1).min() >= 3
    g = ds.task_graph
    assert g is not None and g.task_names == ds.task_names
    w = {(a, b): round(x, 6) for a, b, x in g.edges()}
    # orthologs (same name) 1; a 2-protein complex 1 (+ family 1/2, capped); family alone 1/2
    assert w == {
        ("CHEMBL1", "CHEMBL2"): 1.0,
        ("CHEMBL3", "CHEMBL4"): 1.0,
        ("CHEMBL1", "CHEMBL3"): 0.5,
        ("CHEMBL1", "CHEMBL4"): 0.5,
    }
    assert g.degree()[ds.task_names.index("CHEMBL5")] == 0
    assert ds.info["ortholog_name_groups"] == 1
    with pytest.warns(UserWarning):
        assert load_multitask("chembl-3", chembl_dir, top_k=None).num_tasks == 5


def test_load_chembl_empty_filter_explains(chembl_dir: Path) -> None:
    with pytest.raises(InvalidInputError) as e:
        load_chembl(chembl_dir, min_labels=50)
    assert "largest threshold that leaves data is" in str(e.value)
    assert "min_molecule_labels" in str(e.value)


def test_load_chembl_learned_graph_and_single_class_drop(chembl_dir: Path) -> None:
    with pytest.warns(UserWarning):
        ds = load_chembl(chembl_dir, threshold_pchembl=8.5, min_labels=3, graph="learned")
    assert ds.task_graph is None and ds.info["graph_source"] == "learned"
    # CHEMBL5 holds only 8.0 and 4.5: inactive everywhere at 8.5, so it is dropped.
    assert "CHEMBL5" not in ds.task_names and "CHEMBL5" in ds.info["single_class_examples"]
    n_pos = np.nansum(ds.y, 0)
    assert np.all((n_pos > 0) & (n_pos < ds.label_mask.sum(0)))
    with pytest.warns(UserWarning), pytest.raises(InvalidInputError, match="single class"):
        load_chembl(chembl_dir, threshold_pchembl=4.0, min_labels=3)  # everything active
    with pytest.raises(DatasetNotFoundError, match="kiba-mt"):
        load_multitask("chembl-x", chembl_dir)


# ---- the data object and statistics ----------------------------------------------------------


def test_dataset_statistics_and_learned_graph_for_training() -> None:
    y = np.array([[1, 0, np.nan], [1, 1, 0], [0, 0, 1], [np.nan, 1, 1]] * 5, dtype=float)
    ds = MultitaskDataset([f"C{'C' * i}" for i in range(20)], y, ["a", "b", "c"], name="toy")
    s = statistics(ds)
    assert (s["molecules"], s["tasks"], s["labels"]) == (20, 3, 50)
    assert s["label_density"] == pytest.approx(100 * 50 / 60)
    assert s["positives"] == pytest.approx(100 * 30 / 50) and s["edges"] is None
    g = ds.graph_for_training(np.arange(8), min_co=2)
    assert isinstance(g, TaskGraph) and g.source.startswith("learned jaccard on 8")
    table = statistics_table([ds])
    assert table.splitlines()[0].startswith("| dataset | molecules | tasks | label density")
    assert "| toy | 20 | 3 | 83.33% | 60.0% | learned |" in table
    assert ds.subset([0, 2]).y.shape == (2, 3)
    with pytest.raises(InvalidInputError, match="do not match"):
        MultitaskDataset(["C"], np.zeros((2, 3)), ["a", "b", "c"])


# ---- shared data -----------------------------------------------------------------------------


def test_load_kiba_mt_shapes_and_graph(shared_data: Path) -> None:
    ds = load_kiba_mt(shared_data)
    proteins = list(json.loads((shared_data / "dta/kiba/proteins.txt").read_text()))
    assert ds.task_names == proteins  # column order = proteins.txt key order
    assert ds.y.shape == (2068, 229)  # 2111 drugs, 43 merged as duplicate canonical SMILES
    assert ds.info["duplicates_merged"] == 43 and ds.info["invalid_smiles"] == 0
    g = ds.task_graph
    assert g is not None and g.num_tasks == 229 and g.is_symmetric()
    assert g.degree().min() >= 10  # top-10 per kinase, union-symmetrised
    pos = ds.y[np.isfinite(ds.y)].mean()
    assert 0.15 < pos < 0.3  # ~21% of pairs have KIBA >= 12.1


def test_load_chembl_shared_dense_at_50(shared_data: Path) -> None:
    # The paper's symmetric 50 is empty on this sparse file (3.8 labels per molecule), so the
    # dense ChEMBL-50 analogue keeps tasks with >= 50 labels and molecules with >= 10.
    ds = load_chembl(shared_data, min_labels=50, min_molecule_labels=10)
    s = statistics(ds)
    assert ds.name == "chembl-50-m10"
    assert s["molecules"] >= 50 and s["tasks"] >= 5
    assert s["label_density"] > 80.0
    lab = ds.label_mask
    assert lab.sum(0).min() >= 50 and lab.sum(1).min() >= 10
    assert ds.task_graph is not None and ds.task_graph.task_names == ds.task_names
