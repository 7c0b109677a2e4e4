"""Inputs of ``fewmol multitask``: the label table, the task graph and the split.

DATA is a CSV (SMILES + many 0/1 task columns, empty = missing; columns auto-detected as for
``fewmol finetune``), a multi-task registry set (``chembl-<k>``, ``kiba-mt``, ``toxcast``; see
:mod:`fewmol.multitask.datasets`) or any other classification set of the registry.

``--task-graph``: ``auto`` (the dataset's own graph, else learned), ``learned`` (label
co-occurrence on the training rows only), ``none`` (no edges), or a file: an edge list
``task_a,task_b[,weight]``, a square similarity matrix (CSV with task names as header and first
column, or T x T numbers in task order), or a task-graph JSON written by fewmol.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fewmol.data import registry
from fewmol.data.load import load_dataset
from fewmol.data.splits import Split, make_split, split_from_labels
from fewmol.data.tables import Table
from fewmol.errors import InvalidInputError
from fewmol.multitask.datasets import MultitaskDataset, load_multitask
from fewmol.multitask.task_graph import (
    TaskGraph,
    from_edge_list,
    from_matrix,
    learn_from_labels,
    sparsify,
)

GRAPH_KEYWORDS = ("auto", "learned", "none")
_MT_NAME = re.compile(r"chembl(-\d+(-m\d+)?)?|kiba-mt|toxcast")


@dataclass
class MultitaskInput:
    """Molecules (canonical SMILES, kept rows only) with binary labels and provenance."""

    dataset: MultitaskDataset
    rows: np.ndarray
    """input row of each kept molecule"""
    input_smiles: list[str]
    smiles_col: str = "smiles"
    table: Table | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def task_names(self) -> list[str]:
        """Task (label column) names."""
        return self.dataset.task_names

    @property
    def y(self) -> np.ndarray:
        """Labels (n, T) float32: 0, 1 or NaN."""
        return self.dataset.y


def is_multitask_name(data: str) -> bool:
    """True for names of the multi-task registry sets (chembl-<k>, kiba-mt, toxcast)."""
    return _MT_NAME.fullmatch(data.strip().lower()) is not None


def _non_binary_columns(table: Table) -> list[str]:
    out = []
    for j, name in enumerate(table.target_names):
        v = np.unique(table.targets[:, j][np.isfinite(table.targets[:, j])])
        if v.size and not (np.isin(v, (0.0, 1.0)).all() or np.isin(v, (-1.0, 1.0)).all()):
            shown = ", ".join(f"{x:g}" for x in v[:5])
            out.append(f"'{name}' ({shown}{', ...' if v.size > 5 else ''})")
    return out


def load_input(
    data: str,
    smiles_col: str | None = None,
    target_cols: list[str] | None = None,
    on_invalid: str = "skip",
    data_dir: Path | None = None,
    duplicates: str | None = None,
    long_format: tuple[str, str] | None = None,
    threshold: float | None = None,
) -> MultitaskInput:
    """Read DATA (CSV path or registry name) into binary multi-task labels.

    ``duplicates``: rows of one molecule in a CSV or benchmark (see :func:`read_table`).
    ``long_format`` = (task column, label column): a CSV with one row per measurement
    (SMILES, task, 0/1 label), as assay databases export; its rows of one molecule are merged
    into one multi-task row (replicates of a task by majority). ``threshold`` makes 0/1 classes
    of numeric labels (1 where >= threshold), after replicates are averaged.
    """
    path = Path(data)
    if long_format is not None:
        table, info = load_dataset(
            data, smiles_col, target_cols, None, on_invalid, duplicates=duplicates,
            long_format=long_format, threshold=threshold,
        )  # fmt: skip
        return _binary_input(table, info)
    if not path.exists() and is_multitask_name(data):
        if smiles_col or target_cols or threshold is not None:
            raise InvalidInputError(
                f"{data} is a named multi-task set (with its own 0/1 labels); --smiles-col, "
                "--target-cols and --threshold apply to CSVs"
            )
        ds = load_multitask(data, data_dir)
        n = ds.num_molecules
        return MultitaskInput(
            ds,
            np.arange(n),
            list(ds.smiles),
            "smiles",
            None,
            {"source": ds.name, "name": ds.name, **ds.info},
        )
    if not path.exists() and not registry.is_registered(data):
        raise InvalidInputError(
            f"{data!r} is neither a file nor a known dataset: give a CSV of SMILES and 0/1 task "
            "columns, a multi-task set (chembl-<k>, chembl-<k>-m<m>, kiba-mt, toxcast; "
            "`fewmol data multitask-stats` lists them) or a benchmark with several binary tasks "
            "(e.g. tox21, sider, muv)"
        )
    table, info = load_dataset(
        data, smiles_col, target_cols, None, on_invalid, data_dir, duplicates=duplicates,
        threshold=threshold,
    )  # fmt: skip
    return _binary_input(table, info)


def _binary_input(table: Table, info: dict[str, Any]) -> MultitaskInput:
    """The MultitaskInput of a validated table, which must hold 0/1 labels."""
    if table.task_type != "classification":
        bad = _non_binary_columns(table)
        raise InvalidInputError(
            "multi-task training needs binary labels (0/1 or -1/1, empty = missing); "
            f"non-binary values in {', '.join(bad[:10]) or 'the label columns'}; "
            "choose binary columns with --target-cols"
        )
    ds = MultitaskDataset(
        table.smiles, table.targets, table.target_names, None, dict(info), info.get("name", "")
    )
    return MultitaskInput(ds, table.rows, table.input_smiles, table.smiles_col, table, info)


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def resolve_split(spec: str, inp: MultitaskInput, seed: int) -> Split:
    """``random`` (8-1-1, the SGNN-EBM protocol), ``scaffold``, ``column:NAME`` or a split.json."""
    smiles = inp.dataset.smiles
    if spec in ("random", "scaffold"):
        return make_split(spec, smiles, seed)
    if spec.startswith("column:"):
        col = spec.split(":", 1)[1]
        if inp.table is None or inp.table.raw is None or col not in inp.table.raw.columns:
            raise InvalidInputError(f"--split column {col!r} is not a column of the input")
        return split_from_labels(inp.table.raw[col].to_numpy()[inp.rows])
    path = Path(spec)
    if not path.is_file():
        raise InvalidInputError(
            f"--split must be random, scaffold, column:NAME or a split.json file; got {spec!r}"
        )
    try:
        split = Split.from_json(path)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise InvalidInputError(f"cannot read split file {path}: {e}") from None
    idx = np.concatenate([split.train, split.valid, split.test])
    if idx.size and (idx.min() < 0 or idx.max() >= len(smiles)):
        raise InvalidInputError(
            f"{path} has indices outside 0..{len(smiles) - 1} ({len(smiles)} molecules kept)"
        )
    return split


# --------------------------------------------------------------------------------------------
# Task graphs
# --------------------------------------------------------------------------------------------


def empty_graph(task_names: list[str]) -> TaskGraph:
    """A graph without edges (SGNN then passes no messages; SGNN-EBM factorises)."""
    return TaskGraph(
        task_names, np.zeros((2, 0), np.int64), np.zeros(0, np.float32), "no task graph"
    )


def _looks_like_matrix(path: Path) -> str | None:
    """'named' (header + first column name tasks), 'numbers' (square numeric) or None."""
    name = path.name.lower().removesuffix(".gz")
    sep = "\t" if name.endswith((".tsv", ".txt")) else ","
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, header=None)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"cannot read task graph file {path}: {e}") from None
    if name.endswith(".txt") and df.shape[1] == 1:  # whitespace-separated numbers
        rows = [r.split() for r in df[0]]
        if rows and all(len(r) == len(rows) for r in rows):
            return "numbers"
        return None
    if df.shape[0] >= 3 and df.shape[0] == df.shape[1]:
        header = [s.strip() for s in df.iloc[0, 1:]]
        first = [s.strip() for s in df.iloc[1:, 0]]
        if header and sorted(header) == sorted(first):
            return "named"
    if df.shape[0] == df.shape[1] and df.shape[0] >= 2:
        cells = pd.to_numeric(df.to_numpy().ravel(), errors="coerce")
        if np.isfinite(cells).all():
            return "numbers"
    return None


def read_graph_file(path: Path, task_names: list[str], top_k: int | None) -> TaskGraph:
    """A task graph from a relation file (edge list, square matrix or fewmol JSON)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"--task-graph file not found: {path} (or use auto, learned or none)"
        )
    if path.suffix.lower() == ".json":
        g = TaskGraph.from_json(path)
        edges = pd.DataFrame(list(g.edges()), columns=["task_a", "task_b", "weight"])
        graph = from_edge_list(edges, task_names, source=f"task graph {path.name}")
        return sparsify(graph, top_k=top_k) if top_k else graph
    kind = _looks_like_matrix(path)
    if kind is not None:
        return from_matrix(path, task_names, names_from_header=kind == "named", top_k=top_k or 10)
    graph = from_edge_list(path, task_names)
    return sparsify(graph, top_k=top_k) if top_k else graph


def build_task_graph(
    spec: str,
    inp: MultitaskInput,
    train_rows: np.ndarray,
    top_k: int | None = None,
    method: str = "jaccard",
) -> TaskGraph:
    """The task graph for ``--task-graph SPEC`` (keywords: auto, learned, none; else a file).

    A learned graph sees the labels of ``train_rows`` only. ``top_k`` (default 10 for matrices
    and learned graphs, every edge of an edge list) keeps each task's k strongest relations.
    """
    names = inp.task_names
    key = spec.strip().lower()
    if key == "none":
        return empty_graph(names)
    if key == "auto" and inp.dataset.task_graph is not None:
        g = inp.dataset.task_graph
        return sparsify(g, top_k=top_k) if top_k else g
    if key in ("auto", "learned"):
        return learn_from_labels(
            inp.y, names, method, top_k=top_k or 10, rows=np.asarray(train_rows)
        )
    return read_graph_file(Path(spec), names, top_k)
