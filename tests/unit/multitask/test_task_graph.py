"""Task graphs: loading, validation, sparsification and learning from training labels only."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fewmol.errors import InvalidInputError
from fewmol.multitask.task_graph import (
    TaskGraph,
    from_edge_list,
    from_matrix,
    from_pairs,
    learn_from_labels,
    sparsify,
)

NAMES = ["t0", "t1", "t2", "t3", "t4"]


def _edge_set(g: TaskGraph) -> dict[tuple[int, int], float]:
    return {(int(a), int(b)): float(w) for (a, b), w in zip(g.edge_index.T, g.edge_weight)}


# ---- edge lists ------------------------------------------------------------------------------


def test_edge_list_symmetrised_self_loops_dropped_duplicates_max(tmp_path: Path) -> None:
    f = tmp_path / "edges.csv"
    f.write_text("task_a,task_b,weight\nt0,t1,0.5\nt1,t0,0.8\nt2,t2,1.0\nt3,t4,0.25\nt0,t1,0.1\n")
    g = from_edge_list(f, NAMES)
    assert g.edge_index.dtype == np.int64 and g.edge_weight.dtype == np.float32
    assert _edge_set(g) == pytest.approx({(0, 1): 0.8, (1, 0): 0.8, (3, 4): 0.25, (4, 3): 0.25})
    assert g.num_edges == 4 and g.num_undirected_edges == 2 and g.is_symmetric()
    assert g.degree().tolist() == [1, 1, 0, 1, 1]
    assert g.density == pytest.approx(2 / 10)
    nb, w = g.neighbors("t3")
    assert nb.tolist() == [4] and w.tolist() == [0.25]
    # Sorted by (source, target): each node's edges are one slice.
    key = g.edge_index[0] * g.num_tasks + g.edge_index[1]
    assert np.all(np.diff(key) > 0)


def test_edge_list_weight_optional_headerless_and_dataframe(tmp_path: Path) -> None:
    f = tmp_path / "edges.tsv"
    f.write_text("t0\tt2\nt2\tt4\n")  # no header, no weight: tab because of .tsv
    g = from_edge_list(f, NAMES)
    assert _edge_set(g) == {(0, 2): 1.0, (2, 0): 1.0, (2, 4): 1.0, (4, 2): 1.0}
    df = pd.DataFrame({"source": ["t1"], "target": ["t3"], "score": [0.7]})
    assert _edge_set(from_edge_list(df, NAMES)) == pytest.approx({(1, 3): 0.7, (3, 1): 0.7})


def test_edge_list_unknown_names_listed_with_suggestions(tmp_path: Path) -> None:
    names = [f"CHEMBL{i}" for i in range(100, 120)]
    rows = ["task_a,task_b", "CHEMBL100,CHEMBL1011", "CHEMBL101,CHEMBL102"]
    rows += [f"CHEMBL1{i:02d},XYZ{i}" for i in range(12)]
    f = tmp_path / "edges.csv"
    f.write_text("\n".join(rows) + "\n")
    with pytest.raises(InvalidInputError) as e:
        from_edge_list(f, names)
    msg = str(e.value)
    assert "13 unknown task name(s)" in msg and "13 unknown in all" in msg
    assert "'CHEMBL1011' (did you mean" in msg and "'CHEMBL101'" in msg
    assert msg.count("'XYZ") == 9  # 10 listed in all: CHEMBL1011 plus nine XYZ names


def test_edge_list_bad_weight(tmp_path: Path) -> None:
    f = tmp_path / "edges.csv"
    f.write_text("task_a,task_b,weight\nt0,t1,high\n")
    with pytest.raises(InvalidInputError, match="non-numeric"):
        from_edge_list(f, NAMES)


# ---- matrices --------------------------------------------------------------------------------


def test_matrix_csv_header_reordered_and_txt(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    m = rng.random((5, 5))
    m = (m + m.T) / 2
    order = [3, 0, 4, 1, 2]
    df = pd.DataFrame(m[np.ix_(order, order)], index=[NAMES[i] for i in order])
    df.columns = [NAMES[i] for i in order]
    df.to_csv(tmp_path / "sim.csv")
    np.savetxt(tmp_path / "sim.txt", m)
    g_csv = from_matrix(tmp_path / "sim.csv", NAMES)
    g_txt = from_matrix(tmp_path / "sim.txt", NAMES)
    g_arr = from_matrix(m, NAMES)
    assert g_csv == g_txt == g_arr
    np.testing.assert_allclose(g_arr.to_dense(), np.where(np.eye(5, dtype=bool), 0, m), 1e-6)


def test_matrix_asymmetric_symmetrised_by_max_with_warning() -> None:
    m = np.array([[1.0, 0.2, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3 + 1e-9, 1.0]])
    with pytest.warns(UserWarning, match="1 task pair"):
        g = from_matrix(m, ["a", "b", "c"])
    assert _edge_set(g) == pytest.approx({(0, 1): 0.5, (1, 0): 0.5, (1, 2): 0.3, (2, 1): 0.3})
    assert m[0, 1] == 0.2  # the caller's array is not modified


def test_matrix_validation_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="square"):
        from_matrix(np.ones((2, 3)), ["a", "b"])
    with pytest.raises(InvalidInputError, match="3 tasks"):
        from_matrix(np.ones((2, 2)), ["a", "b", "c"])
    with pytest.raises(InvalidInputError, match="non-finite"):
        from_matrix(np.array([[1, np.nan], [np.nan, 1]]), ["a", "b"])
    pd.DataFrame(np.eye(2), index=["a", "bb"], columns=["a", "bb"]).to_csv(tmp_path / "m.csv")
    with pytest.raises(InvalidInputError, match="did you mean 'b'"):
        from_matrix(tmp_path / "m.csv", ["a", "b"])


# ---- sparsification --------------------------------------------------------------------------


def _brute_sparsify(m: np.ndarray, threshold, top_k) -> dict[tuple[int, int], float]:
    """Reference: per node, candidates sorted by (-w, j); keep top-k; union both directions."""
    t = len(m)
    kept = set()
    for i in range(t):
        cand = [j for j in range(t) if j != i and m[i, j] != 0]
        if threshold is not None:
            cand = [j for j in cand if m[i, j] >= threshold]
        cand.sort(key=lambda j: (-m[i, j], j))
        if top_k is not None:
            cand = cand[:top_k]
        kept |= {(i, j) for j in cand} | {(j, i) for j in cand}
    return {(i, j): float(np.float32(m[i, j])) for i, j in kept}


@pytest.mark.parametrize(
    "threshold,top_k", [(None, 3), (0.5, None), (0.4, 2), (None, 1), (None, None), (2.0, 3)]
)
def test_sparsify_matches_brute_force(threshold, top_k) -> None:
    rng = np.random.default_rng(1)
    m = rng.random((30, 30))
    m = np.round((m + m.T) / 2, 2)  # rounding creates ties: the tie rule must match too
    m[rng.random((30, 30)) < 0.2] = 0
    m = np.minimum(m, m.T)
    names = [f"t{i}" for i in range(30)]
    expected = _brute_sparsify(m, threshold, top_k)
    dense = sparsify(m, threshold=threshold, top_k=top_k, task_names=names)
    from_graph = sparsify(from_matrix(m, names), threshold=threshold, top_k=top_k)
    assert _edge_set(dense) == pytest.approx(expected)
    assert dense == from_graph
    assert dense.is_symmetric()
    if top_k is not None:
        # every node that had candidates keeps at least min(k, #candidates) neighbours
        cand = ((m != 0) & ~np.eye(30, dtype=bool) & (m >= (threshold or -np.inf))).sum(1)
        assert np.all(dense.degree() >= np.minimum(cand, top_k))


def test_blocked_paths_equal_single_block(monkeypatch: pytest.MonkeyPatch) -> None:
    import fewmol.multitask.task_graph as tg

    rng = np.random.default_rng(5)
    m = rng.random((30, 30))
    m[rng.random((30, 30)) < 0.1] += 0.5  # asymmetric entries spread over many row blocks
    y = (rng.random((100, 12)) < 0.3).astype(float)
    y[rng.random(y.shape) < 0.3] = np.nan
    names, ynames = [f"t{i}" for i in range(30)], [f"t{i}" for i in range(12)]
    with pytest.warns(UserWarning) as w_one:
        one = from_matrix(m, names, top_k=4)
    learned_one = learn_from_labels(y, ynames, "mi", top_k=3)
    monkeypatch.setattr(tg, "_BLOCK_ELEMS", 64)  # 2 rows per block for T = 30
    with pytest.warns(UserWarning) as w_many:
        many = from_matrix(m, names, top_k=4)
    assert many == one and str(w_many[0].message) == str(w_one[0].message)
    assert learn_from_labels(y, ynames, "mi", top_k=3) == learned_one
    sym = np.maximum(m, m.T)
    assert _edge_set(one) == pytest.approx(_brute_sparsify(sym, None, 4))


def test_sparsify_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidInputError, match="top_k"):
        sparsify(np.eye(3), top_k=0)


# ---- learned graphs --------------------------------------------------------------------------


def _slow_scores(y: np.ndarray, method: str, min_co: int) -> np.ndarray:
    """Per-pair reference for jaccard / |phi| / mutual information over co-labelled rows."""
    t = y.shape[1]
    out = np.zeros((t, t))
    for i in range(t):
        for j in range(t):
            if i == j:
                continue
            both = np.isfinite(y[:, i]) & np.isfinite(y[:, j])
            if both.sum() < min_co:
                continue
            a, b = y[both, i], y[both, j]
            if method == "jaccard":
                union = np.sum((a == 1) | (b == 1))
                out[i, j] = np.sum((a == 1) & (b == 1)) / union if union else 0.0
            elif method == "pearson":
                out[i, j] = 0.0 if a.std() == 0 or b.std() == 0 else abs(np.corrcoef(a, b)[0, 1])
            else:
                mi = 0.0
                for va in (0, 1):
                    for vb in (0, 1):
                        p = np.mean((a == va) & (b == vb))
                        if p > 0:
                            mi += p * np.log(p / (np.mean(a == va) * np.mean(b == vb)))
                out[i, j] = mi
    return out


@pytest.mark.parametrize("method", ["jaccard", "pearson", "mi"])
def test_learned_scores_equal_slow_reference(method: str) -> None:
    rng = np.random.default_rng(2)
    y = (rng.random((80, 9)) < 0.35).astype(float)
    y[:, 1] = np.where(rng.random(80) < 0.8, y[:, 0], 1 - y[:, 0])  # a correlated pair
    y[rng.random(y.shape) < 0.3] = np.nan
    y[:, 8] = np.nan
    y[:4, 8] = 1.0  # fewer than min_co co-labelled rows with anyone: isolated
    names = [f"t{i}" for i in range(9)]
    g = learn_from_labels(y, names, method, top_k=None, min_co=5)
    ref = _slow_scores(y, method, 5)
    np.testing.assert_allclose(g.to_dense(), ref.astype(np.float32), rtol=1e-5, atol=1e-6)
    assert g.degree()[8] == 0
    top2 = learn_from_labels(y, names, method, top_k=2, min_co=5)
    # Exact ties exist (e.g. two tasks equally correlated with a third); scores are rounded
    # to 1e-9 so they break by task index, as in the reference.
    assert _edge_set(top2) == pytest.approx(_brute_sparsify(np.round(ref, 9), None, 2), rel=1e-5)


def test_learned_graph_uses_only_training_rows() -> None:
    rng = np.random.default_rng(3)
    n_train, n_eval, t = 200, 100, 4
    y = np.full((n_train + n_eval, t), np.nan)
    # Training rows: tasks 0 and 1 are never labelled together; 2 and 3 are, and agree.
    y[:100, 0] = rng.integers(0, 2, 100)
    y[100:n_train, 1] = rng.integers(0, 2, 100)
    y[:n_train, 2] = rng.integers(0, 2, n_train)
    y[:n_train, 3] = y[:n_train, 2]
    # Valid/test rows: tasks 0 and 1 identical on 100 molecules, a perfect relation.
    y[n_train:, 0] = y[n_train:, 1] = rng.integers(0, 2, n_eval)
    names = ["a", "b", "c", "d"]
    train = np.arange(n_train)
    for method in ("jaccard", "pearson", "mi"):
        leaked = learn_from_labels(y, names, method)
        assert (0, 1) in _edge_set(leaked)  # the construction would leak if all rows were used
        g = learn_from_labels(y, names, method, rows=train)
        assert g == learn_from_labels(y[train], names, method)
        edges = _edge_set(g)
        assert (0, 1) not in edges and (1, 0) not in edges
        assert edges[(2, 3)] == pytest.approx(1.0 if method != "mi" else np.log(2), rel=0.1)


def test_learn_validates_labels() -> None:
    with pytest.raises(InvalidInputError, match="binary"):
        learn_from_labels(np.array([[0.0, 2.0]]), ["a", "b"])
    with pytest.raises(InvalidInputError, match="method"):
        learn_from_labels(np.zeros((2, 2)), ["a", "b"], method="cosine")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="do not match"):
        learn_from_labels(np.zeros((2, 3)), ["a", "b"])


def test_learn_600_tasks_2000_rows_is_fast() -> None:
    rng = np.random.default_rng(4)
    y = (rng.random((2000, 600)) < 0.2).astype(np.float32)
    y[rng.random(y.shape) < 0.7] = np.nan
    names = [f"t{i}" for i in range(600)]
    t0 = time.perf_counter()
    g = learn_from_labels(y, names, "jaccard", top_k=10)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"learn_from_labels took {elapsed:.2f}s"
    assert g.num_tasks == 600 and g.degree().min() >= 10 and g.is_symmetric()
    # Edge memory is linear: at most 2 * T * k directed entries, far below T^2.
    assert g.num_edges <= 2 * 600 * 10


# ---- the data object -------------------------------------------------------------------------


def test_json_roundtrip_subgraph_and_validation(tmp_path: Path) -> None:
    g = from_pairs(NAMES, [0, 1, 3], [1, 2, 4], [0.5, 0.25, 1.0], source="test")
    g.to_json(tmp_path / "g.json")
    back = TaskGraph.from_json(tmp_path / "g.json")
    assert back == g and back.source == "test"
    sub = g.subgraph(["t2", "t1", "t4"])
    assert sub.task_names == ["t2", "t1", "t4"]
    assert _edge_set(sub) == {(0, 1): 0.25, (1, 0): 0.25}
    with pytest.raises(InvalidInputError, match="did you mean 't1'"):
        g.subgraph(["t11"])
    with pytest.raises(InvalidInputError, match="duplicate"):
        TaskGraph(["a", "a"], np.zeros((2, 0)), np.zeros(0))
    with pytest.raises(InvalidInputError, match="outside"):
        TaskGraph(["a", "b"], np.array([[0], [2]]), np.ones(1))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InvalidInputError, match="cannot read"):
        TaskGraph.from_json(tmp_path / "bad.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(g.edges())[0] == ("t0", "t1", 0.5)
