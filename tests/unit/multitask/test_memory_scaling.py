"""SGNN-EBM memory is linear in the task graph's edges M and tasks T, never T x T.

Every tensor that the structured head, the NCE loss, their backward and the Gibbs sampler
create is recorded (a dispatch mode sees each op's outputs, autograd's included) for a tiny
model on sparse graphs over thousands of tasks. The total element count must be exactly affine
in M at fixed T and in T at fixed M (a dense T x T term would break that), and no single tensor
may come near T x T elements.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from fewmol.multitask.sgnn import StructuredHead
from fewmol.multitask.sgnn_ebm import GibbsSampler, nce_loss

B, MOL = 2, 4


class _Record(TorchDispatchMode):
    """Shapes of the outputs of every aten op run inside the mode."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for x in tree_flatten(out)[0]:
            if isinstance(x, torch.Tensor):
                self.shapes.append(tuple(x.shape))
        return out


def _sparse_graph(t: int, m: int, seed: int = 0) -> np.ndarray:
    """Symmetric edge_index with exactly m distinct undirected edges over t tasks."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, t, 4 * m)
    b = rng.integers(0, t, 4 * m)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keys = np.unique((lo * t + hi)[lo != hi])
    keys = rng.permutation(keys)[:m]
    assert keys.size == m
    e = np.stack([keys // t, keys % t])
    return np.concatenate([e, e[::-1]], axis=1)


def _tensor_sizes(t: int, m: int) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Output shapes of (forward + NCE + backward, Gibbs) for a tiny head on a sparse graph."""
    torch.manual_seed(0)
    head = StructuredHead(t, _sparse_graph(t, m), None, MOL, 4, 3, 5, num_layers=2)
    assert head.num_edges == m
    z = torch.randn(B, MOL)
    y = torch.randint(0, 2, (B, t)).float()
    y[torch.rand(B, t) < 0.3] = float("nan")
    sampler = GibbsSampler(head.pairs, t)
    with _Record() as train:
        out = head(z)
        loss = nce_loss(out.node_pot, out.edge_pot, head.pairs, y, torch.full((t,), 0.5), 1.0, 2)
        loss.backward()
    with _Record() as gibbs:
        sampler.marginals(out.node_pot.detach(), out.edge_pot.detach(), 1.0, sweeps=2, chains=2)
    return train.shapes, gibbs.shapes


def _total(shapes: list[tuple[int, ...]]) -> int:
    return sum(int(np.prod(s)) for s in shapes)


def test_no_intermediate_tensor_is_task_by_task() -> None:
    t, m = 3000, 2500  # 2500 edges: density 0.06 %
    for shapes in _tensor_sizes(t, m):
        assert shapes
        biggest = max(int(np.prod(s)) for s in shapes)
        assert biggest < t * t / 20, f"a {biggest}-element tensor for T = {t}"
        two = [s for s in shapes if sum(1 for d in s if d == t) >= 2]
        assert not two, f"tensors with two task dimensions: {two[:3]}"
    # The C x C x d edge states are there, one per edge present: (B, M, 2, 2, d).
    train, _ = _tensor_sizes(t, m)
    assert any(s[:4] == (B, m, 2, 2) for s in train)


def test_training_memory_is_affine_in_edges_at_fixed_tasks() -> None:
    t = 2000
    totals = {m: _total(_tensor_sizes(t, m)[0]) for m in (500, 1000, 2000)}
    # Exactly affine: each doubling of M adds twice the previous increment.
    assert totals[2000] - totals[1000] == 2 * (totals[1000] - totals[500])
    # Elements per edge per molecule: a constant of the model sizes (~1.6k here), not O(T).
    assert 0 < (totals[1000] - totals[500]) / 500 / B < 5000


def test_training_memory_is_affine_in_tasks_at_fixed_edges() -> None:
    m = 600
    totals = {t: _total(_tensor_sizes(t, m)[0]) for t in (1000, 2000, 4000)}
    # A T^2 term would make the second increment four times the first, not twice.
    assert totals[4000] - totals[2000] == 2 * (totals[2000] - totals[1000])
    assert 0 < (totals[2000] - totals[1000]) / 1000 / B < 5000  # per task per molecule


def test_gibbs_memory_grows_linearly_with_edges() -> None:
    t = 2000
    totals = {m: _total(_tensor_sizes(t, m)[1]) for m in (500, 1000, 2000)}
    inc1, inc2 = totals[1000] - totals[500], totals[2000] - totals[1000]
    # Colour classes change with the graph, so only nearly affine; far from quadratic.
    assert 0 < inc2 < 3 * inc1
    assert totals[2000] < t * t


def test_inference_chunks_the_batch_so_no_tensor_grows_with_it() -> None:
    torch.manual_seed(0)
    t, m = 40, 60
    head = StructuredHead(t, _sparse_graph(t, m), None, MOL, 4, 3, 5, num_layers=2).eval()
    head.inference_rows = 4 * m  # four molecules per chunk
    z = torch.randn(10, MOL)
    with torch.no_grad(), _Record() as rec:
        chunked = head(z)
    head.inference_rows = 10**9
    with torch.no_grad():
        whole = head(z)
    for a, b in ((chunked.logits, whole.logits), (chunked.node_pot, whole.node_pot)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(chunked.edge_pot, whole.edge_pot)
    assert chunked.edge_pot.shape == (10, m, 2, 2)
    # Only the concatenated outputs hold all ten molecules; the per-edge work sees four at most.
    per_edge = [s for s in rec.shapes if len(s) >= 3 and s[1] == m and s != (10, m, 2, 2)]
    assert per_edge and max(s[0] for s in per_edge) == 4
    # With a gradient (training) the batch is computed whole, as autograd needs it.
    out = head(z)
    assert out.logits.requires_grad and out.edge_pot.shape == (10, m, 2, 2)
