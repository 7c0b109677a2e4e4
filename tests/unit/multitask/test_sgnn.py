"""SGNN and task GCN: shapes, sparse edge states (memory linear in edges), no dense T x T."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewmol.multitask.sgnn import (
    BroadcastMLP,
    SGNNOutput,
    StateLayer,
    StructuredHead,
    add_outer,
    label_sums,
    undirected_pairs,
)
from fewmol.multitask.task_embed import TaskGCN


def _random_graph(t: int, m: int, seed: int = 0) -> np.ndarray:
    """Symmetric edge_index with exactly m undirected edges over t tasks."""
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, int]] = set()
    while len(seen) < m:
        a, b = sorted(rng.choice(t, 2, replace=False).tolist())
        seen.add((a, b))
    e = np.array(sorted(seen)).T
    return np.concatenate([e, e[::-1]], axis=1)


def test_task_gcn_shapes_and_neighbours_share_information() -> None:
    torch.manual_seed(0)
    ei = torch.tensor([[0, 1], [1, 0]])
    gcn = TaskGCN(3, 8, num_layers=2)
    out = gcn(ei, torch.ones(2))
    assert out.shape == (3, 8)
    # Task 2 is isolated: changing task 0's embedding moves task 1 but not task 2.
    with torch.no_grad():
        gcn.embedding.weight[0] += 1.0
    out2 = gcn(ei, torch.ones(2))
    assert not torch.allclose(out[1], out2[1])
    assert torch.allclose(out[2], out2[2])


def test_structured_head_outputs_and_normalised_tables() -> None:
    torch.manual_seed(0)
    ei = _random_graph(7, 9)
    head = StructuredHead(7, ei, None, mol_dim=5, task_dim=4, state_dim=6, hidden=8, smoothing=0)
    out = head(torch.randn(3, 5))
    assert head.num_edges == 9 and head.pairs.shape == (2, 9)
    assert (head.pairs[0] < head.pairs[1]).all()
    assert out.logits.shape == (3, 7)
    assert out.node_pot.shape == (3, 7, 2) and out.edge_pot.shape == (3, 9, 2, 2)
    torch.testing.assert_close(out.node_pot.exp().sum(-1), torch.ones(3, 7))
    torch.testing.assert_close(out.edge_pot.exp().sum((-1, -2)), torch.ones(3, 9))
    assert head(torch.randn(3, 5), potentials=False).node_pot is None


def test_smoothing_bounds_every_log_ratio() -> None:
    torch.manual_seed(0)
    head = StructuredHead(4, _random_graph(4, 3), None, 5, 4, 6, 8, smoothing=0.02)
    with torch.no_grad():  # push the readouts to extreme scores
        for lin in (head.node_readout[-1], head.edge_readout[-1]):
            lin.weight.mul_(1e4)
    with torch.no_grad():
        out = head(torch.randn(8, 5))
    edge = out.edge_pot.reshape(8, -1, 4)
    assert float(edge.min()) >= np.log(0.02 / 4) - 1e-5
    assert float(out.node_pot.min()) >= np.log(0.02 / 2) - 1e-5
    torch.testing.assert_close(edge.exp().sum(-1), torch.ones(edge.shape[:2]))


def _saved_shapes(head: StructuredHead, z: torch.Tensor) -> list[tuple[int, ...]]:
    """Shapes of every tensor autograd keeps for the backward pass of one forward."""
    shapes: list[tuple[int, ...]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = head(z)
        (out.node_pot.sum() + out.edge_pot.sum() + out.logits.sum()).backward()
    return shapes


def test_edge_states_scale_with_edges_and_no_dense_task_by_task_tensor() -> None:
    """Memory is linear in the graph's edges: no saved tensor is T x T, edge states are M-sized."""
    torch.manual_seed(0)
    t, b, d = 400, 2, 3
    biggest = {}
    for m in (100, 200, 400):
        head = StructuredHead(t, _random_graph(t, m), None, 4, 4, d, 5, num_layers=2)
        shapes = _saved_shapes(head, torch.randn(b, 4))
        assert shapes
        for s in shapes:
            n = int(np.prod(s))
            assert n < t * t, f"a saved tensor of shape {s} is as large as T x T"
            assert sum(1 for k in s if k == t) <= 1, f"shape {s} has two task dimensions"
        edge_like = [s for s in shapes if m in s]
        assert (b, m, 2, 2, d) in edge_like  # the C x C x d edge states, one per edge present
        biggest[m] = max(int(np.prod(s)) for s in edge_like)
    # Doubling the edges doubles the largest edge-state tensor.
    assert biggest[200] == 2 * biggest[100] and biggest[400] == 2 * biggest[200]


def test_undirected_pairs_keeps_each_edge_once() -> None:
    ei = np.array([[0, 1, 1, 2], [1, 0, 2, 1]])
    assert undirected_pairs(ei).tolist() == [[0, 1], [1, 2]]


def test_a_graph_without_edges_works() -> None:
    head = StructuredHead(3, np.zeros((2, 0), np.int64), None, 4, 4, 4, 8)
    out = head(torch.randn(2, 4))
    assert out.edge_pot.shape == (2, 0, 2, 2) and out.logits.shape == (2, 3)
    (out.logits.sum() + out.node_pot.sum() + out.edge_pot.sum()).backward()  # the fold too


def _per_edge_layer(
    layer: StateLayer, h: torch.Tensor, e: torch.Tensor, pairs: torch.Tensor, inv_deg: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """StateLayer's update written out edge by edge and label by label (plain autograd)."""
    t, c = h.shape[1], h.shape[2]
    heard: list[list[torch.Tensor]] = [[h[:, i, ci] * 0 for ci in range(c)] for i in range(t)]
    e_new = []
    for m in range(pairs.shape[1]):
        i, j = int(pairs[0, m]), int(pairs[1, m])
        rows = []
        for ci in range(c):
            row = []
            for cj in range(c):
                heard[i][ci] = heard[i][ci] + e[:, m, ci, cj]
                heard[j][cj] = heard[j][cj] + e[:, m, ci, cj]
                x = e[:, m, ci, cj] + layer.pair_lin(h[:, i, ci] + h[:, j, cj])
                row.append(layer.edge_lin(x))
            rows.append(torch.stack(row, 1))
        e_new.append(torch.stack(rows, 1))
    agg = torch.stack([torch.stack(heard[i], 1) for i in range(t)], 1)
    h_new = layer.node_lin(h + agg * inv_deg.view(1, -1, 1, 1))
    return h_new, torch.stack(e_new, 1)


def test_state_layer_matches_the_per_edge_formula() -> None:
    """The hoisted pair product, slice sums and index_select equal the update edge by edge:
    node and edge states, and the gradients of inputs and weights."""
    torch.manual_seed(0)
    b, t, c, d = 3, 6, 2, 5
    pairs = torch.from_numpy(undirected_pairs(_random_graph(t, 8)))
    src, dst = pairs[0], pairs[1]
    layer = StateLayer(d).double()
    h = torch.randn(b, t, c, d, dtype=torch.float64, requires_grad=True)
    e = torch.randn(b, pairs.shape[1], c, c, d, dtype=torch.float64, requires_grad=True)
    deg = torch.bincount(pairs.reshape(-1), minlength=t).double()
    inv_deg = 1.0 / deg.clamp(min=1)
    results = []
    for fn in (
        lambda: layer(h, e, src, dst, inv_deg),
        lambda: _per_edge_layer(layer, h, e, pairs, inv_deg),
    ):
        layer.zero_grad()
        h.grad = e.grad = None
        h_new, e_new = fn()
        gen = torch.Generator().manual_seed(1)
        loss = sum(
            (o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in (h_new, e_new)
        )
        loss.backward()
        grads = [h.grad, e.grad] + [p.grad for p in layer.parameters()]
        results.append([h_new.detach(), e_new.detach()] + [g.clone() for g in grads])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want)


def test_label_sums_and_add_outer_equal_the_broadcast_formulas_with_their_gradients() -> None:
    """The slice-add helpers (custom backward) against sum / broadcast adds, and gradcheck."""
    torch.manual_seed(0)
    kw = {"dtype": torch.float64, "requires_grad": True}
    e, x = torch.randn(3, 4, 2, 2, 5, **kw), torch.randn(3, 4, 2, 2, 5, **kw)
    a, b = torch.randn(3, 4, 2, 5, **kw), torch.randn(3, 4, 2, 5, **kw)
    rows, cols = label_sums(e)
    torch.testing.assert_close(rows, e.sum(3))
    torch.testing.assert_close(cols, e.sum(2))
    torch.testing.assert_close(add_outer(x, a, b), x + a.unsqueeze(3) + b.unsqueeze(2))
    assert torch.autograd.gradcheck(label_sums, (e,))
    assert torch.autograd.gradgradcheck(label_sums, (e,))
    assert torch.autograd.gradcheck(add_outer, (x, a, b))
    assert torch.autograd.gradgradcheck(add_outer, (x, a, b))
    # in place: the result is x itself, and gradients reach what x was computed from
    w = torch.randn(5, 5, **kw)
    inp = torch.randn(3, 4, 2, 2, 5, dtype=torch.float64)

    def inplace(w: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        y = inp @ w
        out = add_outer(y, a, b, inplace=True)
        assert out is y
        return out

    torch.testing.assert_close(inplace(w, a, b), inp @ w + a.unsqueeze(3) + b.unsqueeze(2))
    assert torch.autograd.gradcheck(inplace, (w, a, b))
    # only one of the two sums used: the other's gradient counts as zero
    (g,) = torch.autograd.grad(label_sums(e)[1].sum(), e)
    torch.testing.assert_close(g, torch.ones_like(e))
    with pytest.raises(ValueError, match="2, 2, d"):
        label_sums(torch.randn(2, 3, 2, 4))


def test_broadcast_mlp_equals_an_mlp_on_the_concatenation() -> None:
    torch.manual_seed(0)
    mlp = BroadcastMLP((3, 4, 2), 6, 5).double()
    z = torch.randn(2, 1, 3, dtype=torch.float64)
    t1, t2 = torch.randn(1, 7, 4, dtype=torch.float64), torch.randn(1, 7, 2, dtype=torch.float64)
    cat = torch.cat([z.expand(2, 7, 3), t1.expand(2, 7, 4), t2.expand(2, 7, 2)], dim=-1)
    w = torch.cat([lin.weight for lin in mlp.first], dim=1)
    want = mlp.out(torch.relu(torch.nn.functional.linear(cat, w, mlp.first[0].bias)))
    torch.testing.assert_close(mlp(z, t1, t2), want)


def test_logits_alone_skip_the_edge_readout_and_agree_with_the_full_forward() -> None:
    torch.manual_seed(0)
    head = StructuredHead(8, _random_graph(8, 12), None, 5, 4, 6, 8, num_layers=3).eval()
    z = torch.randn(4, 5)
    full, alone = head(z), head(z, potentials=False)
    torch.testing.assert_close(alone.logits, full.logits)
    assert alone.edge_pot is None and alone.node_pot is None
    h, e = head.states(z, edges=False)
    assert e is None and h.shape == (4, 8, 2, 6 * 4)
    # the last layer's edge update is not built when only logits are asked for
    shapes: list[tuple[int, ...]] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: shapes.append(tuple(t.shape)) or t,
                                                  lambda t: t):  # fmt: skip
        head.train()(z, potentials=False).logits.sum().backward()
    n_full: list[tuple[int, ...]] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: n_full.append(tuple(t.shape)) or t,
                                                  lambda t: t):  # fmt: skip
        head(z, potentials=True).logits.sum().backward()
    edge_saved = sum(1 for s in shapes if 12 in s)
    assert edge_saved < sum(1 for s in n_full if 12 in s)


def _unfolded(head: StructuredHead, z: torch.Tensor) -> SGNNOutput:
    """The head's outputs with the last edge update built: states() + readouts on the concat."""
    h, e = head.states(z, edges=True)
    assert e is not None
    b, t = h.shape[:2]
    m, c = e.shape[1], 2
    logits = head.logit_readout(h.reshape(b, t, -1)).squeeze(-1)
    node = head._log_table(head.node_readout(h).squeeze(-1))
    edge = head._log_table(head.edge_readout(e).reshape(b, m, c * c)).view(b, m, c, c)
    return SGNNOutput(logits, node, edge)


def _outputs_and_grads(
    head: StructuredHead, z: torch.Tensor, fn, seed: int = 0, bf16: bool = False
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """(logits, node_pot, edge_pot) and every parameter's gradient of a fixed weighted sum."""
    head.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout draws for both paths
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = fn(head, z)
    outs = [out.logits, out.node_pot, out.edge_pot]
    gen = torch.Generator().manual_seed(1)
    loss = sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in head.named_parameters() if p.grad is not None}
    return [o.detach() for o in outs], grads


@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("mode", ["train", "eval", "train-dropout"])
def test_folded_edge_readout_equals_the_unfolded_head(num_layers: int, mode: str) -> None:
    """forward folds the last edge update into the edge readout: same outputs and gradients."""
    torch.manual_seed(0)
    p = 0.3 if mode == "train-dropout" else 0.0
    head = StructuredHead(9, _random_graph(9, 14), None, 5, 4, 6, 7, num_layers, dropout=p)
    head.train(mode != "eval")
    z = torch.randn(4, 5)
    want, want_grads = _outputs_and_grads(head, z, _unfolded)
    got, got_grads = _outputs_and_grads(head, z, lambda hd, x: hd(x))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    # every parameter gets a gradient through the fold, the last edge update's included
    assert set(got_grads) == set(want_grads) == {n for n, _ in head.named_parameters()}
    for name, w in want_grads.items():
        torch.testing.assert_close(got_grads[name], w, rtol=1e-4, atol=1e-5, msg=name)


def test_folded_edge_readout_under_bf16_autocast_is_close_to_float32() -> None:
    torch.manual_seed(0)
    head = StructuredHead(9, _random_graph(9, 14), None, 5, 4, 8, 16, num_layers=2).eval()
    z = torch.randn(4, 5)
    want, want_grads = _outputs_and_grads(head, z, _unfolded)
    got, got_grads = _outputs_and_grads(head, z, lambda hd, x: hd(x), bf16=True)
    old, old_grads = _outputs_and_grads(head, z, _unfolded, bf16=True)
    for g, w, o in zip(got, want, old):
        assert g.dtype == torch.float32  # SGNNOutput casts back
        # within bf16 rounding of the float32 head, and about as close to it as the unfolded
        # head under the same autocast (the roundings fall in other places)
        torch.testing.assert_close(g, w, rtol=0.05, atol=0.05)
        assert (g - w).abs().max() <= 2 * (o - w).abs().max() + 1e-3
    # Gradients of a model this small lose several % to bf16 in either path (cancellations;
    # single biases up to tens of %), so compare all of them together, in both paths.
    flat = [torch.cat([g[n].flatten() for n in want_grads]) for g in (got_grads, old_grads)]
    ref = torch.cat([w.flatten() for w in want_grads.values()])
    err, err_old = [float((f - ref).norm() / ref.norm()) for f in flat]
    assert err < 0.25 and err < 3 * err_old + 0.02, (err, err_old)
    assert float(torch.nn.functional.cosine_similarity(flat[0], ref, dim=0)) > 0.97


def test_the_fold_keeps_the_state_dict_and_needs_layers() -> None:
    """No new parameters; without SGNN layers the readout reads e_0 unfolded."""
    torch.manual_seed(0)
    head = StructuredHead(5, _random_graph(5, 4), None, 3, 4, 4, 6, num_layers=2)
    assert not any("fold" in k for k in head.state_dict())
    flat = StructuredHead(5, _random_graph(5, 4), None, 3, 4, 4, 6, num_layers=0).eval()
    z = torch.randn(2, 3)
    got, want = flat(z), _unfolded(flat, z)
    torch.testing.assert_close(got.edge_pot, want.edge_pot)
    torch.testing.assert_close(got.logits, want.logits)


def _train_sgnn_logits(bilinear: bool, z: np.ndarray, y: np.ndarray, edges: np.ndarray):
    from fewmol.multitask.balancing import per_task_bce

    torch.manual_seed(0)
    t = y.shape[1]
    head = StructuredHead(t, edges, None, z.shape[1], 4, 4, 8, num_layers=1, bilinear=bilinear)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    zt, yt = torch.from_numpy(z), torch.from_numpy(y)
    for _ in range(150):
        losses, present = per_task_bce(head(zt, potentials=False).logits, yt)
        opt.zero_grad()
        losses[present].mean().backward()
        opt.step()
    return head.eval()


def test_the_bilinear_term_lets_each_task_read_its_own_direction_of_the_molecule() -> None:
    """40 tasks, each the sign of its own random direction of z: with 8 hidden units the
    MLP(z ⊕ t) node states share their few features of z across tasks (the task only moves
    their thresholds); the rank-8 bilinear term gives every task its own linear view."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    d, t = 8, 40
    w = rng.normal(size=(d, t))
    z, z_test = (rng.normal(size=(600, d)).astype(np.float32) for _ in range(2))
    y, y_test = ((a @ w > 0).astype(np.float32) for a in (z, z_test))
    chain = np.array([np.arange(t - 1), np.arange(1, t)])
    edges = np.concatenate([chain, chain[::-1]], axis=1)
    auc = {}
    for bilinear in (False, True):
        head = _train_sgnn_logits(bilinear, z, y, edges)
        with torch.no_grad():
            pred = torch.sigmoid(head(torch.from_numpy(z_test), potentials=False).logits).numpy()
        auc[bilinear] = np.mean([roc_auc_score(y_test[:, i], pred[:, i]) for i in range(t)])
    assert auc[True] > 0.97 and auc[True] > auc[False] + 0.02, auc
    # off by default, and then no parameters of its own (saved models keep their keys)
    plain = StructuredHead(t, edges, None, d, 4, 4, 8)
    assert plain.node_bilinear is None and "bilinear" not in plain.hparams
    assert not any(k.startswith("node_bilinear") for k in plain.state_dict())
