"""Many molecular graphs in flat arrays, and vectorised batching into torch tensors.

``Batch.from_data_list`` builds one ``Data`` per molecule and is ~10x slower than gathering
slices of flat arrays with numpy, which is what :meth:`GraphSet.collate` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fewmol.chem.featurize import MolGraph


def _gather_ranges(ptr: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions of the ranges ptr[i]:ptr[i+1] for i in idx, and each range's length."""
    starts = ptr[idx]
    counts = ptr[idx + 1] - starts
    total = int(counts.sum())
    offsets = np.cumsum(counts) - counts  # where each range begins in the output
    pos = np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, counts)
    return pos, counts


@dataclass
class GraphBatch:
    """A batch of graphs as tensors (PyG conventions).

    Shapes: ``x`` (n_atoms, n_atom_features), ``edge_index`` (2, n_edges),
    ``edge_attr`` (n_edges, n_bond_features), ``batch`` (n_atoms,), ``y`` (n_graphs, n_tasks).
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    batch: torch.Tensor
    num_graphs: int
    y: torch.Tensor | None = None
    index: torch.Tensor | None = None  # position of each graph in its GraphSet

    def to(self, device: torch.device | str, non_blocking: bool = False) -> GraphBatch:
        """Move every tensor to ``device`` (Lightning calls this)."""

        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return GraphBatch(
            mv(self.x),
            mv(self.edge_index),
            mv(self.edge_attr),
            mv(self.batch),
            self.num_graphs,
            mv(self.y),
            mv(self.index),
        )


@dataclass
class GraphSet:
    """Graphs stored as concatenated arrays with per-graph offsets (CSR style)."""

    x: np.ndarray
    """int64 (total_atoms, n_atom_features)"""
    edge_index: np.ndarray
    """int64 (2, total_edges), atom indices local to each graph"""
    edge_attr: np.ndarray
    """int64 (total_edges, n_bond_features)"""
    atom_ptr: np.ndarray
    """int64 (n_graphs + 1,)"""
    edge_ptr: np.ndarray
    """int64 (n_graphs + 1,)"""

    def __len__(self) -> int:
        return len(self.atom_ptr) - 1

    @classmethod
    def from_graphs(cls, graphs: Sequence[MolGraph], n_atom_feat: int = 2, n_bond_feat: int = 2):
        """Concatenate a list of MolGraph into one GraphSet."""
        if not graphs:
            return cls(
                np.zeros((0, n_atom_feat), np.int64),
                np.zeros((2, 0), np.int64),
                np.zeros((0, n_bond_feat), np.int64),
                np.zeros(1, np.int64),
                np.zeros(1, np.int64),
            )
        n_atoms = np.array([len(g.x) for g in graphs], dtype=np.int64)
        n_edges = np.array([g.edge_index.shape[1] for g in graphs], dtype=np.int64)
        return cls(
            np.concatenate([g.x for g in graphs]).astype(np.int64),
            np.concatenate([g.edge_index for g in graphs], axis=1).astype(np.int64),
            np.concatenate([g.edge_attr for g in graphs]).astype(np.int64),
            np.concatenate([[0], np.cumsum(n_atoms)]),
            np.concatenate([[0], np.cumsum(n_edges)]),
        )

    @classmethod
    def concat(cls, parts: Sequence[GraphSet]) -> GraphSet:
        """Join several GraphSets end to end."""
        parts = [p for p in parts if len(p)] or list(parts[:1])
        atom_off = np.cumsum([0] + [p.atom_ptr[-1] for p in parts])
        edge_off = np.cumsum([0] + [p.edge_ptr[-1] for p in parts])
        return cls(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.edge_index for p in parts], axis=1),
            np.concatenate([p.edge_attr for p in parts]),
            np.concatenate([[0]] + [p.atom_ptr[1:] + o for p, o in zip(parts, atom_off)]),
            np.concatenate([[0]] + [p.edge_ptr[1:] + o for p, o in zip(parts, edge_off)]),
        )

    def subset(self, idx: np.ndarray) -> GraphSet:
        """A new GraphSet holding graphs ``idx`` (in that order)."""
        idx = np.asarray(idx, dtype=np.int64)
        apos, acount = _gather_ranges(self.atom_ptr, idx)
        epos, ecount = _gather_ranges(self.edge_ptr, idx)
        return GraphSet(
            self.x[apos],
            self.edge_index[:, epos],
            self.edge_attr[epos],
            np.concatenate([[0], np.cumsum(acount)]),
            np.concatenate([[0], np.cumsum(ecount)]),
        )

    def num_atoms(self) -> np.ndarray:
        """Atoms per graph."""
        return np.diff(self.atom_ptr)

    def collate(self, idx: Sequence[int] | np.ndarray, y: np.ndarray | None = None) -> GraphBatch:
        """Batch graphs ``idx`` into tensors, shifting edge indices to batch-global atom ids."""
        idx = np.asarray(idx, dtype=np.int64)
        apos, acount = _gather_ranges(self.atom_ptr, idx)
        epos, ecount = _gather_ranges(self.edge_ptr, idx)
        atom_off = np.cumsum(acount) - acount
        edge_index = self.edge_index[:, epos] + np.repeat(atom_off, ecount)[None, :]
        batch = np.repeat(np.arange(len(idx), dtype=np.int64), acount)
        return GraphBatch(
            x=torch.from_numpy(self.x[apos]),
            edge_index=torch.from_numpy(edge_index),
            edge_attr=torch.from_numpy(self.edge_attr[epos]),
            batch=torch.from_numpy(batch),
            num_graphs=len(idx),
            y=None if y is None else torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)),
            index=torch.from_numpy(idx.copy()),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by name, for saving with ``np.savez``."""
        return {
            "x": self.x,
            "edge_index": self.edge_index,
            "edge_attr": self.edge_attr,
            "atom_ptr": self.atom_ptr,
            "edge_ptr": self.edge_ptr,
        }
