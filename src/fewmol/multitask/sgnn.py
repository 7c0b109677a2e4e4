"""State graph neural network (SGNN): message passing over the label states of related tasks.

For one molecule embedding z(x) and task embeddings z_i (:class:`~fewmol.multitask.task_embed.
TaskGCN`), every task i holds a state per label value, h_i in R^{C x d} (C = 2: inactive,
active), and every edge (i, j) of the task graph a state per pair of label values,
h_ij in R^{C x C x d}:

    h_i^(0)  = MLP_n(z(x) ⊕ z_i)            h_ij^(0) = MLP_e(z(x) ⊕ z_i ⊕ z_j)
    h_i^c   <- W_n (h_i^c + mean_{j ~ i} Σ_c' h_ij^{c c'})
    h_ij^{c c'} <- W_e (h_ij^{c c'} + W_p (h_i^c + h_j^c'))

Edges are stored once (i < j) as a sparse list: edge states are (B, M, C, C, d) for the M edges
present, never a dense T x T array, so memory is linear in the number of edges. Readouts give

* ``logits`` (B, T): one logit per task from both label states (the "SGNN" baseline, and the
  adaptive noise of SGNN-EBM);
* ``node_pot`` (B, T, C) and ``edge_pot`` (B, M, C, C): the log-potentials f_i(x, y_i) and
  f_ij(x, y_i, y_j) of the energy in :mod:`fewmol.multitask.sgnn_ebm`: the log of a softmax
  over each table (as SGNN-EBM's released code normalises them) mixed with ``smoothing`` of a
  uniform table. The floor bounds every log-ratio (by log((1 − s) K / s + 1) for a K-entry
  table), so no learned coupling is ever hard: a Gibbs chain can always leave a wrong mode,
  and training labels that always agree do not freeze it.

The last layer's edge update is linear (no ReLU after it) and only the edge readout reads it,
so ``forward`` folds it into the readout's first Linear instead of building it: with R_k the
readout's weight block on layer k's states and W_e, W_p, b_e, b_p the last layer's,

    R · (e_0 ⊕ ... ⊕ e_L) = Σ_{k<L-1} R_k e_k + (R_{L-1} + R_L W_e) e_{L-1}
                            + G_i^c + G_j^c' + (R_L W_e b_p + R_L b_e),    G = R_L W_e W_p h

with h the node states the last layer receives: G is one product per task state (B·T·C rows)
instead of one per edge-state entry. The last edge states, their concatenation and one d x d
product per entry (B·M·C·C rows) are never built, and the readout's product per entry reads
L·d instead of (L + 1)·d features. The matrices are composed from the live parameters on
every call, so training, gradients and saved models are those of the unfolded head
(``states`` still returns the unfolded states).

Sums over a label dimension (C = 2) are written as adds of the two slices (``label_sums``), and
the per-edge pair terms are added with ``add_outer``, whose backward is such slice adds too: on
CPU a reduction over a size-2 dimension of an edge-state tensor runs several times slower than
adding its two halves (about 8x in bf16), and autograd reduces the gradient of every broadcast
add that way.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fewmol.models.dropout import dropout
from fewmol.multitask.task_embed import TaskGCN

NUM_CLASSES = 2
# Without a gradient to keep, the head runs over at most this many (molecule, edge) rows at a
# time: a ToxCast-size graph (5,227 edges) at an evaluation batch of 256 would otherwise build
# ~1.3M rows x C x C x hidden per tensor (~20 GB in float32).
INFERENCE_ROWS = 1 << 16


@dataclass
class SGNNOutput:
    """What the structured head returns for a batch of B molecules."""

    logits: torch.Tensor
    """(B, T) per-task logits"""
    node_pot: torch.Tensor | None = None
    """(B, T, C) log-potentials f_i(x, c)"""
    edge_pot: torch.Tensor | None = None
    """(B, M, C, C) log-potentials f_ij(x, c_i, c_j), edge m = (pairs[0, m], pairs[1, m])"""

    def __post_init__(self) -> None:
        # under bf16/fp16 autocast the energies, NCE and Gibbs sampling still run in float32
        self.logits = self.logits.float()
        if self.node_pot is not None:
            self.node_pot = self.node_pot.float()
        if self.edge_pot is not None:
            self.edge_pot = self.edge_pot.float()


def _slice_sums(e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if e.shape[-2] != 2 or e.shape[-3] != 2:
        raise ValueError(f"expected (..., 2, 2, d) label-pair states, got {tuple(e.shape)}")
    return e.select(-2, 0) + e.select(-2, 1), e.select(-3, 0) + e.select(-3, 1)


class _LabelSums(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, e: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _slice_sums(e)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx, g_rows: torch.Tensor, g_cols: torch.Tensor
    ) -> torch.Tensor:
        # (an output's unused gradient arrives as zeros: grads are materialized by default)
        return g_rows.unsqueeze(-2) + g_cols.unsqueeze(-3)


class _AddOuter(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, inplace: bool
    ) -> torch.Tensor:
        out = x.add_(a.unsqueeze(-2)) if inplace else x + a.unsqueeze(-2)
        out.add_(b.unsqueeze(-3))
        if inplace:
            ctx.mark_dirty(x)
        return out

    @staticmethod
    def backward(  # type: ignore[override]
        ctx, g: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, None]:
        g_a, g_b = _slice_sums(g) if any(ctx.needs_input_grad[1:3]) else (None, None)
        return g, g_a, g_b, None


def label_sums(e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ_c' e^{c c'}, Σ_c e^{c c'}), each (..., C, d), of label-pair states e (..., C, C, d)."""
    out: tuple[torch.Tensor, torch.Tensor] = _LabelSums.apply(e)
    return out


def add_outer(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, inplace: bool = False
) -> torch.Tensor:
    """x^{c c'} + a^c + b^c' for x (..., C, C, d) and a, b (..., C, d); in place if asked."""
    out: torch.Tensor = _AddOuter.apply(x, a, b, inplace)
    return out


class BroadcastMLP(nn.Module):
    """Two-layer MLP on the concatenation of parts that broadcast against each other.

    The first layer is one Linear per part, summed (the same function as a Linear on the
    concatenation), so ``z (B, 1, dz)`` and ``t (1, T, dt)`` never get copied into a
    (B, T, dz + dt) input.
    """

    def __init__(self, in_dims: Sequence[int], hidden: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.first = nn.ModuleList(nn.Linear(d, hidden, bias=k == 0) for k, d in enumerate(in_dims))
        self.out = nn.Linear(hidden, out_dim)
        self.dropout = dropout

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        """MLP(parts[0] ⊕ parts[1] ⊕ ...) with broadcasting over the leading dims."""
        h = self.first[0](parts[0])
        rest = [lin(p) for lin, p in zip(self.first[1:], parts[1:])]
        if rest:
            # The later parts (the task parts, (1, M, ·)) are summed before the first (B, 1, ·)
            # broadcasts against them: one (B, M, hidden) add, and one reduction over B in the
            # backward instead of one per part.
            h = h + functools.reduce(torch.add, rest)
        h = dropout(torch.relu(h), self.dropout, self.training)
        return self.out(h)


class LowRankBilinear(nn.Module):
    """R((P z) ⊙ (Q t)): a rank-``rank`` bilinear map of two broadcasting parts.

    For a fixed task embedding t it is a linear map of z of its own, so tasks can read
    different directions of the molecule embedding.
    """

    def __init__(self, z_dim: int, t_dim: int, rank: int, out_dim: int):
        super().__init__()
        self.z_proj = nn.Linear(z_dim, rank, bias=False)
        self.t_proj = nn.Linear(t_dim, rank, bias=False)
        self.out = nn.Linear(rank, out_dim, bias=False)

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """z (B, 1, dz), t (1, T, dt) -> (B, T, out_dim)."""
        return self.out(self.z_proj(z) * self.t_proj(t))


class StateLayer(nn.Module):
    """One round of node <-> edge message passing over label states.

    Shapes: h (B, T, C, d), e (B, M, C, C, d), src/dst (M,), inv_deg (T,).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.node_lin = nn.Linear(dim, dim)
        self.edge_lin = nn.Linear(dim, dim)
        self.pair_lin = nn.Linear(dim, dim)

    def forward(
        self,
        h: torch.Tensor,
        e: torch.Tensor,
        src: torch.Tensor,
        dst: torch.Tensor,
        inv_deg: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Updated (node states, edge states)."""
        h_new = self.node_update(h, e, src, dst, inv_deg)
        # W_p (h_i^c + h_j^c') + b = (W_p h_i^c + b) + (W_p h_j^c' + b) − b: the product runs
        # once per task state (T·C) instead of once per edge-state entry (M·C·C)
        p = self.pair_lin(h)
        # index_select (not p[:, src]) for its index_add backward, several times faster on CPU
        # than indexing's accumulating index_put.
        p_src = (p - self.pair_lin.bias.to(p.dtype)).index_select(1, src)
        e_new = self.edge_lin(add_outer(e, p_src, p.index_select(1, dst)))  # (B, M, C, C, d)
        return h_new, e_new

    def node_update(
        self,
        h: torch.Tensor,
        e: torch.Tensor,
        src: torch.Tensor,
        dst: torch.Tensor,
        inv_deg: torch.Tensor,
    ) -> torch.Tensor:
        """Updated node states alone (the edge states' update is not computed)."""
        # Endpoint i of edge (i, j) with label c hears Σ_c' h_ij^{c c'}; endpoint j hears Σ_c.
        rows, cols = label_sums(e)
        agg = h.new_zeros(h.shape).index_add(1, src, rows).index_add(1, dst, cols)
        return self.node_lin(h + agg * inv_deg.view(1, -1, 1, 1))


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def undirected_pairs(edge_index: np.ndarray) -> np.ndarray:
    """Each undirected edge once, (2, M) int64 with source < target, from a symmetric list."""
    ei = np.asarray(edge_index, dtype=np.int64).reshape(2, -1)
    return np.ascontiguousarray(ei[:, ei[0] < ei[1]])


class StructuredHead(nn.Module):
    """Task GCN + SGNN over a fixed task graph, applied to molecule embeddings z (B, mol_dim).

    ``edge_index`` / ``edge_weight`` are the symmetric task graph (both directions, as
    :class:`~fewmol.multitask.task_graph.TaskGraph` stores it): the GCN uses both directions,
    the SGNN each undirected edge once. With ``num_layers >= 1`` the edge log-potentials fold
    the last layer's edge update into the edge readout (see the module docstring): the same
    function, without the largest per-edge tensors of the last layer.
    """

    def __init__(
        self,
        num_tasks: int,
        edge_index: np.ndarray | torch.Tensor,
        edge_weight: np.ndarray | torch.Tensor | None,
        mol_dim: int,
        task_dim: int = 64,
        state_dim: int = 64,
        hidden: int = 128,
        num_layers: int = 2,
        gcn_layers: int = 2,
        dropout: float = 0.0,
        smoothing: float = 0.05,
        bilinear: bool = False,
    ):
        super().__init__()
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        ei = np.asarray(edge_index, dtype=np.int64).reshape(2, -1)
        if ei.size and (ei.min() < 0 or ei.max() >= num_tasks):
            raise ValueError(f"edge_index refers to tasks outside 0..{num_tasks - 1}")
        w = np.ones(ei.shape[1], np.float32) if edge_weight is None else np.asarray(edge_weight)
        pairs = undirected_pairs(ei)
        deg = np.bincount(pairs.ravel(), minlength=num_tasks).astype(np.float32)
        self.hparams = {
            "num_tasks": num_tasks,
            "mol_dim": mol_dim,
            "task_dim": task_dim,
            "state_dim": state_dim,
            "hidden": hidden,
            "num_layers": num_layers,
            "gcn_layers": gcn_layers,
            "dropout": dropout,
            "smoothing": smoothing,
        }
        if bilinear:
            self.hparams["bilinear"] = True
        self.num_tasks, self.state_dim, self.dropout = num_tasks, state_dim, dropout
        self.smoothing = smoothing
        self.inference_rows = INFERENCE_ROWS
        # The graph is data, not weights: non-persistent buffers follow .to(device) but stay
        # out of state_dict (the model dir stores the graph itself as task_graph.json).
        self.register_buffer("gcn_edge_index", torch.from_numpy(ei.copy()), persistent=False)
        self.register_buffer(
            "gcn_edge_weight", torch.as_tensor(w, dtype=torch.float32).clone(), persistent=False
        )
        self.register_buffer("pairs", torch.from_numpy(pairs), persistent=False)
        self.register_buffer(
            "inv_deg", torch.from_numpy(1.0 / np.maximum(deg, 1.0)), persistent=False
        )
        self.task_gcn = TaskGCN(num_tasks, task_dim, gcn_layers, dropout)
        c = NUM_CLASSES
        self.node_init = BroadcastMLP((mol_dim, task_dim), hidden, c * state_dim, dropout)
        # MLP(z ⊕ t_i) mixes molecule and task only through its ReLUs, and its predictions
        # came out largely one score per molecule for all tasks (benchmarks/results/
        # multitask_shared_factor.md); a low-rank bilinear term gives each task its own
        # linear view of the molecule, as MTL's per-task heads do.
        self.node_bilinear = (
            LowRankBilinear(mol_dim, task_dim, hidden, c * state_dim) if bilinear else None
        )
        self.edge_init = BroadcastMLP((mol_dim, task_dim, task_dim), hidden, c * c * state_dim)
        self.layers = nn.ModuleList(StateLayer(state_dim) for _ in range(num_layers))
        read = state_dim * (num_layers + 1)  # readouts see every layer's states (concat)
        self.logit_readout = _mlp(c * read, hidden, 1)
        self.node_readout = _mlp(read, hidden, 1)
        self.edge_readout = _mlp(read, hidden, 1)

    @property
    def num_edges(self) -> int:
        """Number of undirected task-graph edges M."""
        return int(self.pairs.shape[1])

    def states(
        self, z: torch.Tensor, edges: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Node (B, T, C, R) and edge (B, M, C, C, R) states, every layer concatenated.

        ``edges=False`` skips what only the edge readout reads (the last layer's edge update,
        the concatenation) and returns None for the edge states: the logits need node states
        only. ``forward`` does not call this with edges (it folds the last edge update).
        """
        hs, es, _ = self._propagate(z, last_edges=edges)
        return torch.cat(hs, dim=-1), torch.cat(es, dim=-1) if edges else None

    def _propagate(
        self, z: torch.Tensor, last_edges: bool
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor | None]:
        """Every layer's node and edge states, and the node states the last layer received.

        The last layer's edge update is built only if ``last_edges``; the received node states
        (its pair term's input) are None without layers.
        """
        b, t, m, d, c = z.shape[0], self.num_tasks, self.num_edges, self.state_dim, NUM_CLASSES
        task = self.task_gcn(self.gcn_edge_index, self.gcn_edge_weight)  # (T, dt)
        src, dst = self.pairs[0], self.pairs[1]
        zb = z.unsqueeze(1)  # (B, 1, dz)
        h = self.node_init(zb, task.unsqueeze(0))
        if self.node_bilinear is not None:
            h = h + self.node_bilinear(zb, task.unsqueeze(0))
        h = h.view(b, t, c, d)
        e = self.edge_init(zb, task[src].unsqueeze(0), task[dst].unsqueeze(0)).view(b, m, c, c, d)
        hs, es = [h], [e]
        h_last = None
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            h_last = h
            if k == last and not last_edges:  # only the edge readout reads the last edge update
                h = layer.node_update(h, e, src, dst, self.inv_deg)
            else:
                h, e = layer(h, e, src, dst, self.inv_deg)
                if k < last:
                    e = torch.relu(e)
                es.append(e)
            if k < last:
                h = torch.relu(h)
            h = dropout(h, self.dropout, self.training)
            hs.append(h)
        return hs, es, h_last

    def forward(self, z: torch.Tensor, potentials: bool = True) -> SGNNOutput:
        """Logits, and (if ``potentials``) the log-potential tables of the energy.

        Without gradients (evaluation, prediction) the batch is cut into chunks of at most
        ``inference_rows`` (molecule, edge) rows; every molecule is computed on its own, so the
        result is the same and peak memory no longer grows with the batch.
        """
        step = max(1, self.inference_rows // max(self.num_edges, 1))
        if torch.is_grad_enabled() or z.shape[0] <= step:
            return self._forward(z, potentials)
        outs = [self._forward(part, potentials) for part in z.split(step)]
        node = torch.cat([o.node_pot for o in outs]) if potentials else None
        edge = torch.cat([o.edge_pot for o in outs]) if potentials else None
        return SGNNOutput(torch.cat([o.logits for o in outs]), node, edge)

    def _forward(self, z: torch.Tensor, potentials: bool) -> SGNNOutput:
        # Without layers there is no edge update to fold: the readout reads e_0 as it is.
        fold = potentials and len(self.layers) > 0
        hs, es, h_last = self._propagate(z, last_edges=potentials and not fold)
        h = torch.cat(hs, dim=-1)
        b, t = h.shape[:2]
        logits = self.logit_readout(h.reshape(b, t, -1)).squeeze(-1)
        if not potentials:
            return SGNNOutput(logits)
        node = self._log_table(self.node_readout(h).squeeze(-1))  # (B, T, C)
        m, c = es[0].shape[1], NUM_CLASSES
        if fold:
            assert h_last is not None
            scores = self._folded_edge_scores(es, h_last)
        else:
            scores = self.edge_readout(torch.cat(es, dim=-1))
        edge = self._log_table(scores.reshape(b, m, c * c)).view(b, m, c, c)
        return SGNNOutput(logits, node, edge)

    def _folded_edge_scores(self, es: list[torch.Tensor], h_last: torch.Tensor) -> torch.Tensor:
        """Edge readout (B, M, C, C, 1) of e_0..e_{L-1} with the last edge update folded in.

        ``h_last`` (B, T, C, d) are the node states the last layer received (its pair term).
        """
        d, n = self.state_dim, len(self.layers)
        first, act, out = self.edge_readout
        last = self.layers[-1]
        w = first.weight
        # The composed matrices are (hidden x d), free to build: built in the parameters'
        # precision (outside autocast), the products below see each rounded to bf16 once,
        # as a Linear sees its weight.
        with torch.autocast(h_last.device.type, enabled=False):
            r_last = w[:, n * d :]
            rw = r_last @ last.edge_lin.weight
            w_edge = torch.cat([w[:, : (n - 1) * d], w[:, (n - 1) * d : n * d] + rw], dim=1)
            w_pair = rw @ last.pair_lin.weight
            bias = rw @ last.pair_lin.bias + r_last @ last.edge_lin.bias + first.bias
        g = F.linear(h_last, w_pair)  # (B, T, C, hidden): once per task state, not per entry
        g_src = g + bias.to(g.dtype)
        src, dst = self.pairs[0], self.pairs[1]
        x = es[0] if len(es) == 1 else torch.cat(es, dim=-1)
        pre = F.linear(x, w_edge)  # (B, M, C, C, hidden)
        # In place: linear's backward does not need its output, and the (B, M, C, C, hidden)
        # tensor is the largest of the step. index_select (not [:, src]) for its index_add
        # backward, several times faster on CPU than indexing's accumulating index_put.
        pre = add_outer(pre, g_src.index_select(1, src), g.index_select(1, dst), inplace=True)
        return out(act(pre))

    def _log_table(self, scores: torch.Tensor) -> torch.Tensor:
        """log((1 − s) softmax(scores) + s / K) over the last dim (K entries)."""
        logp = torch.log_softmax(scores, dim=-1)
        s = self.smoothing
        if s == 0.0:
            return logp
        k = scores.shape[-1]
        # logsumexp of the two mixture parts keeps precision where softmax underflows.
        floor = torch.full_like(logp, math.log(s / k))
        return torch.logaddexp(logp + math.log1p(-s), floor)
