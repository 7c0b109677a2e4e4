"""Task graphs for structured multi-task learning: a sparse weighted graph over task columns.

A :class:`TaskGraph` is a plain data object: task names plus a COO edge list that holds every
undirected edge in both directions (``edge_index`` int64 ``(2, E)``, ``edge_weight`` float32
``(E,)``), sorted by (source, target), with no self-loops and no duplicates. Models consume it
edge-wise, so memory stays linear in the number of edges; nothing here keeps a dense ``T x T``
state except the one similarity matrix a caller hands to :func:`from_matrix` / :func:`sparsify`.

Sources of a graph:

* :func:`from_edge_list`: a relation file ``task_a,task_b[,weight]`` (e.g. STRING scores);
* :func:`from_matrix`: a dense similarity matrix (e.g. KIBA's target sequence similarity);
* :func:`learn_from_labels`: label co-occurrence over the **training rows only**;
* :func:`sparsify`: threshold and/or per-node top-k of any of the above.

A weight of 0 means "no relation" everywhere, so zero entries never become edges.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from fewmol.errors import InvalidInputError

Method = Literal["jaccard", "pearson", "mi"]
METHODS: tuple[str, ...] = ("jaccard", "pearson", "mi")
# Row blocks for dense work: a block holds at most this many T-wide floats, so temporaries stay
# far below one T x T matrix for large T while small T is handled in a single block.
_BLOCK_ELEMS = 1 << 22
_JSON_FORMAT = "fewmol.task_graph/1"


@dataclass(eq=False)
class TaskGraph:
    """Undirected weighted graph over named tasks, stored as a symmetric COO edge list."""

    task_names: list[str]
    edge_index: np.ndarray
    edge_weight: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        self.task_names = [str(t) for t in self.task_names]
        _check_unique(self.task_names)
        self.edge_index = np.ascontiguousarray(self.edge_index, dtype=np.int64).reshape(2, -1)
        self.edge_weight = np.ascontiguousarray(self.edge_weight, dtype=np.float32).reshape(-1)
        if self.edge_weight.shape[0] != self.edge_index.shape[1]:
            raise InvalidInputError(
                f"edge_weight has {self.edge_weight.shape[0]} entries for "
                f"{self.edge_index.shape[1]} edges"
            )
        t = len(self.task_names)
        if self.edge_index.size and (self.edge_index.min() < 0 or self.edge_index.max() >= t):
            raise InvalidInputError(f"edge_index refers to tasks outside 0..{t - 1}")
        if not np.isfinite(self.edge_weight).all():
            raise InvalidInputError("edge weights must be finite")

    # ---- sizes ------------------------------------------------------------------------------

    @property
    def num_tasks(self) -> int:
        """Number of nodes (tasks)."""
        return len(self.task_names)

    @property
    def num_edges(self) -> int:
        """Number of directed entries E in ``edge_index`` (each undirected edge counts twice)."""
        return int(self.edge_index.shape[1])

    @property
    def num_undirected_edges(self) -> int:
        """Number of undirected edges (``num_edges / 2`` for a symmetric graph)."""
        return int((self.edge_index[0] < self.edge_index[1]).sum())

    @property
    def density(self) -> float:
        """Fraction of the T(T-1)/2 possible undirected edges that are present."""
        t = self.num_tasks
        return 0.0 if t < 2 else self.num_undirected_edges / (t * (t - 1) / 2)

    def degree(self) -> np.ndarray:
        """Number of neighbours of each task, int64 ``(T,)``."""
        return np.bincount(self.edge_index[0], minlength=self.num_tasks).astype(np.int64)

    def weighted_degree(self) -> np.ndarray:
        """Sum of edge weights at each task, float64 ``(T,)``."""
        return np.bincount(self.edge_index[0], self.edge_weight, minlength=self.num_tasks)

    def index(self, task: int | str) -> int:
        """Node index of a task given by name or index."""
        if isinstance(task, str):
            try:
                return self.task_names.index(task)
            except ValueError:
                raise InvalidInputError(_unknown_message([task], self.task_names)) from None
        i = int(task)
        if not 0 <= i < self.num_tasks:
            raise InvalidInputError(f"task index {i} outside 0..{self.num_tasks - 1}")
        return i

    def neighbors(self, i: int | str) -> tuple[np.ndarray, np.ndarray]:
        """(neighbour indices, weights) of task ``i`` (index or name), by neighbour index."""
        i = self.index(i)
        # Edges are sorted by source, so a node's edges are one contiguous slice.
        lo, hi = np.searchsorted(self.edge_index[0], [i, i + 1])
        return self.edge_index[1, lo:hi].copy(), self.edge_weight[lo:hi].copy()

    def edges(self) -> Iterator[tuple[str, str, float]]:
        """Undirected edges as (task_a, task_b, weight) with a before b in task order."""
        keep = self.edge_index[0] < self.edge_index[1]
        names = self.task_names
        for a, b, w in zip(*self.edge_index[:, keep], self.edge_weight[keep]):
            yield names[a], names[b], float(w)

    def is_symmetric(self) -> bool:
        """True when every edge (i, j, w) has its reverse (j, i, w)."""
        rev = _build(self.num_tasks, self.edge_index[1], self.edge_index[0], self.edge_weight)
        return np.array_equal(rev.edge_index, self.edge_index) and np.array_equal(
            rev.edge_weight, self.edge_weight
        )

    # ---- conversions ------------------------------------------------------------------------

    def to_scipy(self):  # -> scipy.sparse.csr_matrix
        """The weighted adjacency as a scipy CSR matrix (T x T, E stored entries)."""
        import scipy.sparse as sp

        t = self.num_tasks
        return sp.csr_matrix((self.edge_weight, (self.edge_index[0], self.edge_index[1])), (t, t))

    def to_dense(self) -> np.ndarray:
        """Dense T x T weight matrix (for small graphs, plots and tests only)."""
        out = np.zeros((self.num_tasks, self.num_tasks), dtype=np.float32)
        out[self.edge_index[0], self.edge_index[1]] = self.edge_weight
        return out

    def subgraph(self, task_names: Sequence[str]) -> TaskGraph:
        """The graph induced on ``task_names`` (in that order); every name must be a node."""
        names = [str(t) for t in task_names]
        pos = {n: i for i, n in enumerate(self.task_names)}
        unknown = [n for n in names if n not in pos]
        if unknown:
            raise InvalidInputError(_unknown_message(unknown, self.task_names))
        _check_unique(names)
        new_id = np.full(self.num_tasks, -1, dtype=np.int64)
        new_id[[pos[n] for n in names]] = np.arange(len(names))
        src, dst = new_id[self.edge_index[0]], new_id[self.edge_index[1]]
        keep = (src >= 0) & (dst >= 0)
        return _build(len(names), src[keep], dst[keep], self.edge_weight[keep], names, self.source)

    def to_dict(self) -> dict:
        """JSON-ready dict: task names and the undirected edges (i < j) with weights."""
        keep = self.edge_index[0] < self.edge_index[1]
        return {
            "format": _JSON_FORMAT,
            "source": self.source,
            "task_names": list(self.task_names),
            "edges": self.edge_index[:, keep].T.tolist(),
            "weights": [float(w) for w in self.edge_weight[keep]],
        }

    @classmethod
    def from_dict(cls, d: dict) -> TaskGraph:
        """Inverse of :meth:`to_dict` (edges are re-symmetrised and checked)."""
        if not isinstance(d, dict) or "task_names" not in d or "edges" not in d:
            raise InvalidInputError("not a task graph: expected keys 'task_names' and 'edges'")
        names = [str(t) for t in d["task_names"]]
        edges = np.asarray(d["edges"], dtype=np.int64).reshape(-1, 2)
        weights = np.asarray(d.get("weights", np.ones(len(edges))), dtype=np.float64)
        if len(weights) != len(edges):
            raise InvalidInputError(f"{len(edges)} edges but {len(weights)} weights")
        if edges.size and (edges.min() < 0 or edges.max() >= len(names)):
            raise InvalidInputError(f"edge indices outside 0..{len(names) - 1}")
        return _build(len(names), edges[:, 0], edges[:, 1], weights, names, d.get("source", ""))

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write the graph as JSON with an atomic rename (no partial file on interruption)."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.to_dict(), fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> TaskGraph:
        """Read a graph written by :meth:`to_json`."""
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InvalidInputError(f"cannot read task graph {path}: {e}") from e
        return cls.from_dict(d)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskGraph):
            return NotImplemented
        return (
            self.task_names == other.task_names
            and np.array_equal(self.edge_index, other.edge_index)
            and np.array_equal(self.edge_weight, other.edge_weight)
        )

    def __repr__(self) -> str:
        return (
            f"TaskGraph(tasks={self.num_tasks}, undirected_edges={self.num_undirected_edges}, "
            f"density={self.density:.4f}, source={self.source!r})"
        )


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _check_unique(names: Sequence[str]) -> None:
    if len(set(names)) != len(names):
        dups = sorted(n for n, c in Counter(names).items() if c > 1)
        raise InvalidInputError(f"duplicate task names: {dups[:10]}")


def _unknown_message(unknown: Sequence[str], known: Sequence[str], what: str = "task") -> str:
    """'unknown task names ...' listing up to 10, each with its closest known names."""
    uniq = list(dict.fromkeys(str(u) for u in unknown))
    parts = []
    for u in uniq[:10]:
        close = difflib.get_close_matches(u, known, n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        parts.append(f"{u!r}{hint}")
    more = f", ... ({len(uniq)} unknown in all)" if len(uniq) > 10 else ""
    return (
        f"{len(uniq)} unknown {what} name(s) not among the {len(known)} task columns: "
        f"{'; '.join(parts)}{more}"
    )


def _build(
    t: int,
    src: np.ndarray,
    dst: np.ndarray,
    w: np.ndarray,
    names: Sequence[str] | None = None,
    source: str = "",
) -> TaskGraph:
    """Symmetrise, drop self-loops and zero weights, merge duplicates by max: O(E log E)."""
    src = np.asarray(src, dtype=np.int64).ravel()
    dst = np.asarray(dst, dtype=np.int64).ravel()
    w = np.asarray(w, dtype=np.float64).ravel()
    keep = (src != dst) & (w != 0)
    src, dst, w = src[keep], dst[keep], w[keep]
    s = np.concatenate([src, dst])
    d = np.concatenate([dst, src])
    ww = np.concatenate([w, w])
    key = s * t + d
    order = np.argsort(key, kind="stable")
    key, ww = key[order], ww[order]
    if key.size:
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        key, ww = key[starts], np.maximum.reduceat(ww, starts)
    names = [str(i) for i in range(t)] if names is None else list(names)
    return TaskGraph(names, np.stack([key // t, key % t]), ww.astype(np.float32), source)


def _read_table(path: str | os.PathLike[str], **kw):  # -> pd.DataFrame
    """Read CSV (comma) or TSV/TXT (tab) with pandas, as a user error on failure."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"task graph file not found: {p}")
    name = p.name.lower().removesuffix(".gz")
    sep = "\t" if name.endswith((".tsv", ".txt")) else ","
    try:
        return pd.read_csv(p, sep=sep, **kw)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"cannot read task graph file {p}: {e}") from e


# --------------------------------------------------------------------------------------------
# Constructors
# --------------------------------------------------------------------------------------------


def from_edge_list(path_or_df, task_names: Sequence[str], source: str = "") -> TaskGraph:
    """Graph from ``task_a,task_b[,weight]`` rows (weight defaults to 1; symmetrised, max-merged).

    ``path_or_df`` is a CSV/TSV path (tab for .tsv/.txt) or a DataFrame. Columns are found by
    name (``task_a``/``task_b``/``weight``, also ``source``/``target``), else by position.
    Unknown task names raise :class:`InvalidInputError` naming up to 10 with close matches.
    """
    import pandas as pd

    names = [str(t) for t in task_names]
    _check_unique(names)
    if isinstance(path_or_df, pd.DataFrame):
        df, where = path_or_df, "the edge table"
    else:
        df, where = _read_table(path_or_df, dtype=str, keep_default_na=False), str(path_or_df)
        source = source or f"edge list {Path(path_or_df).name}"
    cols = {str(c).strip().lower(): c for c in df.columns}
    a = cols.get("task_a", cols.get("source"))
    b = cols.get("task_b", cols.get("target"))
    wcol = cols.get("weight", cols.get("score"))
    if (a is None or b is None) and not isinstance(path_or_df, pd.DataFrame):
        # No recognised header: if the first row names tasks, the file has no header at all.
        if df.shape[1] in (2, 3) and {str(c).strip() for c in df.columns[:2]} <= set(names):
            df = _read_table(path_or_df, dtype=str, keep_default_na=False, header=None)
    if a is None or b is None:
        if df.shape[1] not in (2, 3):
            raise InvalidInputError(
                f"{where}: expected columns task_a,task_b[,weight]; got {list(df.columns)}"
            )
        a, b = df.columns[0], df.columns[1]
        wcol = df.columns[2] if df.shape[1] == 3 else None
    ta = df[a].astype(str).str.strip().to_numpy()
    tb = df[b].astype(str).str.strip().to_numpy()
    if wcol is None:
        w = np.ones(len(df), dtype=np.float64)
    else:
        w = pd.to_numeric(df[wcol].astype(str).str.strip(), errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(w))
        if bad.size:
            rows = ", ".join(f"row {i + 1}: {df[wcol].iloc[i]!r}" for i in bad[:5])
            raise InvalidInputError(
                f"{where}: {bad.size} non-numeric or non-finite weights ({rows})"
            )
    pos = {n: i for i, n in enumerate(names)}
    ia = np.fromiter((pos.get(x, -1) for x in ta), dtype=np.int64, count=len(ta))
    ib = np.fromiter((pos.get(x, -1) for x in tb), dtype=np.int64, count=len(tb))
    if (ia < 0).any() or (ib < 0).any():
        # In file order (row by row, task_a before task_b), so the message matches the file.
        unknown = np.stack([ta, tb], 1).ravel()[np.stack([ia, ib], 1).ravel() < 0]
        raise InvalidInputError(f"{where}: " + _unknown_message(list(unknown), names))
    return _build(len(names), ia, ib, w, names, source or "edge list")


def from_pairs(
    task_names: Sequence[str],
    src: Sequence[int] | np.ndarray,
    dst: Sequence[int] | np.ndarray,
    weight: Sequence[float] | np.ndarray | None = None,
    source: str = "",
) -> TaskGraph:
    """Graph from index pairs into ``task_names`` (symmetrised, self-loops dropped, max-merged)."""
    names = [str(t) for t in task_names]
    _check_unique(names)
    src = np.asarray(src, dtype=np.int64).ravel()
    dst = np.asarray(dst, dtype=np.int64).ravel()
    w = np.ones(src.size) if weight is None else np.asarray(weight, dtype=np.float64).ravel()
    if not (src.size == dst.size == w.size):
        raise InvalidInputError(f"{src.size} sources, {dst.size} targets, {w.size} weights")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= len(names)):
        raise InvalidInputError(f"edge indices outside 0..{len(names) - 1}")
    if not np.isfinite(w).all():
        raise InvalidInputError("edge weights must be finite")
    return _build(len(names), src, dst, w, names, source)


def _load_matrix(
    path_or_array, task_names: Sequence[str], names_from_header: bool
) -> tuple[np.ndarray, str]:
    """Read a square matrix (array, CSV with header+index, or whitespace text) in task order."""
    names = [str(t) for t in task_names]
    if not isinstance(path_or_array, (str, os.PathLike)):
        # Our own float64 copy: later symmetrisation writes into it in place.
        return np.array(path_or_array, dtype=np.float64), "matrix"
    p = Path(path_or_array)
    if not p.is_file():
        raise InvalidInputError(f"task similarity matrix not found: {p}")
    lower = p.name.lower().removesuffix(".gz")
    if lower.endswith((".csv", ".tsv")) and names_from_header:
        df = _read_table(p, index_col=0)
        rows, cols = [str(r).strip() for r in df.index], [str(c).strip() for c in df.columns]
        if rows != cols:
            if sorted(rows) != sorted(cols):
                raise InvalidInputError(f"{p}: row labels and column header name different tasks")
            df = df.loc[:, [df.columns[cols.index(r)] for r in rows]]
        unknown = [r for r in rows if r not in set(names)]
        if unknown:
            raise InvalidInputError(f"{p}: " + _unknown_message(unknown, names))
        missing = [n for n in names if n not in set(rows)]
        if missing:
            raise InvalidInputError(
                f"{p}: {len(missing)} task(s) have no row in the matrix, e.g. {missing[:5]}"
            )
        order = [rows.index(n) for n in names]
        try:
            m = df.to_numpy(dtype=np.float64)[np.ix_(order, order)]
        except ValueError as e:
            raise InvalidInputError(f"{p}: non-numeric entries in the matrix ({e})") from e
        return m, f"matrix {p.name}"
    try:
        if lower.endswith(".csv"):
            m = np.loadtxt(p, delimiter=",", dtype=np.float64, ndmin=2)
        else:
            m = np.loadtxt(p, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise InvalidInputError(
            f"{p}: cannot parse a numeric matrix ({e}); a CSV with task names needs "
            "names_from_header=True"
        ) from e
    return m, f"matrix {p.name}"


def _symmetrise_inplace(m: np.ndarray, atol: float) -> int:
    """Make ``m`` symmetric by elementwise max in place, block by block; return #pairs off."""
    t = m.shape[0]
    bs = max(1, _BLOCK_ELEMS // max(t, 1))
    off = 0
    for r0 in range(0, t, bs):
        r1 = min(t, r0 + bs)
        # Compare rows r0:r1 with the matching columns; temporaries are block-sized only.
        rows, cols = m[r0:r1, :], m[:, r0:r1].T
        diff = np.abs(rows - cols) > atol * np.maximum(1.0, np.abs(cols))
        off += int(np.triu(diff, k=r0 + 1).sum())  # each unordered pair once (j > i)
        # Writing the max into both halves keeps later blocks consistent: max is idempotent.
        np.maximum(rows, cols, out=rows)
        m[:, r0:r1] = rows.T
    return off


def from_matrix(
    path_or_array,
    task_names: Sequence[str],
    names_from_header: bool = True,
    *,
    threshold: float | None = None,
    top_k: int | None = None,
    atol: float = 1e-6,
) -> TaskGraph:
    """Graph from a square similarity matrix: an array, a .csv/.tsv with task names as header
    and index (reordered to ``task_names``; plain numbers if ``names_from_header=False``), or
    a whitespace .txt in ``task_names`` order.

    Checks square, the size against ``task_names`` and finite entries; an asymmetric matrix is
    symmetrised by max with a warning giving the number of pairs that differed by more than
    ``atol`` (relative). The diagonal is ignored. Without ``threshold``/``top_k`` every
    non-zero off-diagonal entry is an edge; with them, see :func:`sparsify`.
    """
    names = [str(t) for t in task_names]
    _check_unique(names)
    m, source = _load_matrix(path_or_array, names, names_from_header)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InvalidInputError(f"{source}: a task similarity matrix must be square, got {m.shape}")
    if m.shape[0] != len(names):
        raise InvalidInputError(
            f"{source}: matrix is {m.shape[0]} x {m.shape[1]} but there are {len(names)} tasks"
        )
    bad = ~np.isfinite(m)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InvalidInputError(
            f"{source}: {int(bad.sum())} non-finite entries (first at [{i}, {j}] = {m[i, j]})"
        )
    off = _symmetrise_inplace(m, atol)
    if off:
        warnings.warn(
            f"{source}: {off} task pair(s) had asymmetric similarities; symmetrised by max",
            stacklevel=2,
        )
    return _sparsify_dense(m, names, threshold, top_k, source)


# --------------------------------------------------------------------------------------------
# Sparsification
# --------------------------------------------------------------------------------------------


def _check_sparsify_args(threshold: float | None, top_k: int | None) -> None:
    if top_k is not None and (int(top_k) != top_k or top_k < 1):
        raise InvalidInputError(f"top_k must be a positive integer, got {top_k!r}")
    if threshold is not None and not np.isfinite(threshold):
        raise InvalidInputError(f"threshold must be a finite number, got {threshold!r}")


def _select_rows(
    block: np.ndarray, r0: int, threshold: float | None, top_k: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of kept entries of a row block of a symmetric matrix (rows start at r0)."""
    nb, t = block.shape
    rows = np.arange(nb)
    work = block.astype(np.float64, copy=True)
    work[rows, rows + r0] = 0.0  # the diagonal is never an edge
    ok = work != 0
    if threshold is not None:
        ok &= work >= threshold
    if top_k is not None and top_k < t:
        # Stable sort of -w breaks ties by lower column index (same rule as the edge path).
        work[~ok] = -np.inf
        order = np.argsort(-work, axis=1, kind="stable")[:, :top_k]
        in_top = np.zeros_like(ok)
        np.put_along_axis(in_top, order, True, axis=1)
        ok &= in_top
    r, c = np.nonzero(ok)
    return r + r0, c


def _sparsify_dense(
    m: np.ndarray,
    names: Sequence[str],
    threshold: float | None,
    top_k: int | None,
    source: str,
) -> TaskGraph:
    """Select edges from a symmetric dense matrix in row blocks; union-symmetrise."""
    _check_sparsify_args(threshold, top_k)
    t = m.shape[0]
    bs = max(1, _BLOCK_ELEMS // max(t, 1))
    src_parts, dst_parts = [], []
    for r0 in range(0, t, bs):
        r, c = _select_rows(m[r0 : r0 + bs], r0, threshold, top_k)
        src_parts.append(r)
        dst_parts.append(c)
    src = np.concatenate(src_parts) if src_parts else np.zeros(0, np.int64)
    dst = np.concatenate(dst_parts) if dst_parts else np.zeros(0, np.int64)
    return _build(t, src, dst, m[src, dst], names, _describe(source, threshold, top_k))


def _describe(source: str, threshold: float | None, top_k: int | None) -> str:
    parts = [p for p in (source,) if p]
    if threshold is not None:
        parts.append(f"weight>={threshold:g}")
    if top_k is not None:
        parts.append(f"top{top_k}")
    return ", ".join(parts)


def sparsify(
    graph_or_matrix: TaskGraph | np.ndarray,
    threshold: float | None = None,
    top_k: int | None = None,
    task_names: Sequence[str] | None = None,
) -> TaskGraph:
    """Keep edges with weight >= ``threshold`` and, if ``top_k``, each node's k heaviest.

    With both, a node keeps its top-k among the edges passing the threshold. The kept directed
    choices are union-symmetrised: (i, j) stays if j is among i's choices or i among j's, with
    its original weight. Ties rank the lower task index first. From a dense (symmetric) matrix
    the work runs in row blocks (no second T x T array); from a graph it is O(E log E).
    """
    _check_sparsify_args(threshold, top_k)
    if not isinstance(graph_or_matrix, TaskGraph):
        m = np.asarray(graph_or_matrix, dtype=np.float64)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise InvalidInputError(f"a task similarity matrix must be square, got {m.shape}")
        names = list(task_names) if task_names is not None else [str(i) for i in range(len(m))]
        if len(names) != m.shape[0]:
            raise InvalidInputError(f"{len(names)} task names for a {m.shape[0]}-task matrix")
        return from_matrix(m, names, threshold=threshold, top_k=top_k)
    g = graph_or_matrix
    src, dst, w = g.edge_index[0], g.edge_index[1], g.edge_weight.astype(np.float64)
    keep = np.ones(g.num_edges, dtype=bool)
    if threshold is not None:
        keep &= w >= threshold
    src, dst, w = src[keep], dst[keep], w[keep]
    if top_k is not None:
        # Sort by (source, -weight, target) and keep each source's first k entries.
        order = np.lexsort((dst, -w, src))
        src, dst, w = src[order], dst[order], w[order]
        first = np.searchsorted(src, src, side="left")
        keep = (np.arange(src.size) - first) < top_k
        src, dst, w = src[keep], dst[keep], w[keep]
    return _build(g.num_tasks, src, dst, w, g.task_names, _describe(g.source, threshold, top_k))


# --------------------------------------------------------------------------------------------
# Learning a graph from training labels
# --------------------------------------------------------------------------------------------


def _binary_labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labelled mask, positive mask) as float32 for BLAS products; labels must be 0/1/NaN."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise InvalidInputError(f"labels must be a 2-D (molecules x tasks) array, got {y.shape}")
    lab = np.isfinite(y)
    vals = y[lab]
    bad = (vals != 0) & (vals != 1)
    if bad.any():
        raise InvalidInputError(
            f"learning a task graph needs binary labels (0/1, NaN = missing); found "
            f"{int(bad.sum())} other values, e.g. {np.unique(vals[bad])[:5].tolist()}"
        )
    return lab.astype(np.float32), (lab & (y == 1)).astype(np.float32)


def _pair_scores(
    n: np.ndarray, n1i: np.ndarray, n1j: np.ndarray, n11: np.ndarray, method: str
) -> np.ndarray:
    """Similarity of task pairs from co-labelled counts (all arrays block x T, float64).

    n = co-labelled molecules, n1i / n1j = positives of i / j among them, n11 = both positive.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "jaccard":
            union = n1i + n1j - n11
            s = np.where(union > 0, n11 / union, 0.0)
        elif method == "pearson":
            # Phi coefficient on the co-labelled rows; |r| so anti-correlated tasks also link.
            cov = n * n11 - n1i * n1j
            var = (n * n1i - n1i**2) * (n * n1j - n1j**2)
            s = np.where(var > 0, np.abs(cov) / np.sqrt(np.maximum(var, 1e-300)), 0.0)
        else:  # mi: mutual information (nats) of the 2 x 2 table on co-labelled rows
            s = np.zeros_like(n)
            safe_n = np.maximum(n, 1.0)
            cells = (
                (n11, n1i, n1j),
                (n1i - n11, n1i, n - n1j),
                (n1j - n11, n - n1i, n1j),
                (n - n1i - n1j + n11, n - n1i, n - n1j),
            )
            for c, a, b in cells:
                term = c / safe_n * np.log(c * safe_n / (a * b))
                s += np.where(c > 0, term, 0.0)
            s = np.maximum(s, 0.0)  # rounding can leave tiny negatives
    return s


def learn_from_labels(
    y_train: np.ndarray,
    task_names: Sequence[str],
    method: Method = "jaccard",
    top_k: int | None = 10,
    min_co: int = 5,
    *,
    threshold: float | None = None,
    rows: np.ndarray | Sequence[int] | None = None,
) -> TaskGraph:
    """Task graph from label co-occurrence on the given (training) rows only.

    ``y_train`` is (n, T) with 0/1 labels and NaN for missing; pass only training rows, or the
    full matrix with ``rows=split.train``: valid/test labels must never shape the graph.
    ``method``: ``jaccard`` of positive sets, ``pearson`` (|phi|) or ``mi`` (mutual
    information, nats), each over the molecules labelled for both tasks. Pairs with fewer than
    ``min_co`` co-labelled molecules get no edge. Then :func:`sparsify` (``top_k`` /
    ``threshold``). Statistics come from masked matrix products over task blocks, so the
    largest temporary is block x T.
    """
    if method not in METHODS:
        raise InvalidInputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    _check_sparsify_args(threshold, top_k)
    y = np.asarray(y_train)
    if rows is not None:
        y = y[np.asarray(rows, dtype=np.int64)]
    names = [str(t) for t in task_names]
    _check_unique(names)
    if y.ndim != 2 or y.shape[1] != len(names):
        raise InvalidInputError(f"labels of shape {y.shape} do not match {len(names)} task names")
    lab, pos = _binary_labels(y)
    t = len(names)
    both = np.concatenate([lab, pos], axis=1)  # (n, 2T): one product yields all four counts
    bs = max(1, _BLOCK_ELEMS // max(4 * t, 1))
    src_parts, dst_parts, w_parts = [], [], []
    for r0 in range(0, t, bs):
        r1 = min(t, r0 + bs)
        blk = np.concatenate([lab[:, r0:r1], pos[:, r0:r1]], axis=1).T @ both
        blk = blk.astype(np.float64)
        nb = r1 - r0
        n, n1j = blk[:nb, :t], blk[:nb, t:]  # lab_i . lab_j, lab_i . pos_j
        n1i, n11 = blk[nb:, :t], blk[nb:, t:]  # pos_i . lab_j, pos_i . pos_j
        # Rounding makes mathematically tied pairs tie exactly, so ties break by task index
        # and not by BLAS summation order (which differs between machines).
        s = np.round(_pair_scores(n, n1i, n1j, n11, method), 9)
        s[n < min_co] = 0.0
        r, c = _select_rows(s, r0, threshold, top_k)
        src_parts.append(r)
        dst_parts.append(c)
        w_parts.append(s[r - r0, c])
    src = np.concatenate(src_parts) if src_parts else np.zeros(0, np.int64)
    dst = np.concatenate(dst_parts) if dst_parts else np.zeros(0, np.int64)
    w = np.concatenate(w_parts) if w_parts else np.zeros(0)
    source = _describe(f"learned {method} on {y.shape[0]} training rows", threshold, top_k)
    return _build(t, src, dst, w, names, source)


__all__ = [
    "METHODS",
    "TaskGraph",
    "from_edge_list",
    "from_matrix",
    "from_pairs",
    "learn_from_labels",
    "sparsify",
]
