"""fewmol.models.schnet: pure-torch radius graph and the SchNet encoder used by GraphMVP."""

from __future__ import annotations

import pytest
import torch

from fewmol.models.schnet import SchNetEncoder, edge_pairs, radius_graph


def _small(**kw) -> SchNetEncoder:
    torch.manual_seed(0)
    kw = {
        "hidden_channels": 16,
        "num_filters": 16,
        "num_interactions": 2,
        "num_gaussians": 8,
        "cutoff": 5.0,
        **kw,
    }
    return SchNetEncoder(**kw)


def _molecules(sizes=(5, 3, 7, 1), seed=0, dtype=torch.float32):
    """Random 'molecules': z in 1..9, positions with ~1.5 Å spread, sorted batch."""
    g = torch.Generator().manual_seed(seed)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    z = torch.randint(1, 10, (batch.numel(),), generator=g)
    pos = (torch.randn(batch.numel(), 3, generator=g) * 1.5).to(dtype)
    return z, pos, batch


def _random_rotation(g: torch.Generator, dtype) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))  # unique QR -> uniform over O(3)
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


def _brute_force(pos, batch, cutoff, k) -> set[tuple[int, int]]:
    """Reference: per atom, its k nearest same-graph atoms closer than the cutoff."""
    edges = set()
    for i in range(pos.shape[0]):
        cand = [
            (float((pos[j] - pos[i]).norm()), j)
            for j in range(pos.shape[0])
            if j != i and batch[j] == batch[i] and float((pos[j] - pos[i]).norm()) < cutoff
        ]
        edges.update((j, i) for _, j in sorted(cand)[:k])
    return edges


def _edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in edge_index.T}


# --- radius_graph ---------------------------------------------------------------------------


@pytest.mark.parametrize("cutoff,k", [(10.0, 32), (1.5, 32), (10.0, 3), (2.0, 2)])
def test_radius_graph_matches_brute_force(cutoff: float, k: int) -> None:
    z, pos, batch = _molecules(sizes=(6, 1, 9, 4, 2), seed=1)
    ei = radius_graph(pos, batch, cutoff=cutoff, max_neighbors=k)
    assert ei.dtype == torch.long and ei.shape[0] == 2
    assert ei.shape[1] == len(_edge_set(ei))  # no duplicate edges
    assert _edge_set(ei) == _brute_force(pos, batch, cutoff, k)


def test_radius_graph_structure() -> None:
    z, pos, batch = _molecules(sizes=(8, 5, 12), seed=2)
    cutoff, k = 2.5, 4
    src, dst = radius_graph(pos, batch, cutoff=cutoff, max_neighbors=k)
    assert src.numel() > 0
    assert torch.equal(batch[src], batch[dst])  # no cross-graph edges
    assert not torch.any(src == dst)  # no self loops
    assert torch.all((pos[src] - pos[dst]).norm(dim=-1) < cutoff)
    assert torch.bincount(dst, minlength=pos.shape[0]).max() <= k
    # Unsorted batch: same edges after relabelling through the permutation.
    perm = torch.randperm(pos.shape[0], generator=torch.Generator().manual_seed(0))
    ei_p = radius_graph(pos[perm], batch[perm], cutoff=cutoff, max_neighbors=k)
    assert {(int(perm[a]), int(perm[b])) for a, b in ei_p.T} == set(zip(src.tolist(), dst.tolist()))


def test_radius_graph_edge_cases() -> None:
    assert radius_graph(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)).shape == (2, 0)
    assert radius_graph(torch.zeros(1, 3)).shape == (2, 0)  # one atom, batch=None
    two = torch.tensor([[0.0, 0, 0], [1.0, 0, 0]])
    assert _edge_set(radius_graph(two)) == {(0, 1), (1, 0)}
    with pytest.raises(ValueError, match="max_neighbors"):
        radius_graph(two, max_neighbors=0)


# --- SchNetEncoder --------------------------------------------------------------------------


def test_default_hparams_and_rebuild() -> None:
    enc = SchNetEncoder()
    assert enc.hparams == {
        "hidden_channels": 128,
        "num_filters": 128,
        "num_interactions": 6,
        "num_gaussians": 50,
        "cutoff": 10.0,
        "max_neighbors": 32,
        "readout": "mean",
        "out_channels": 128,
    }
    assert len(enc.interactions) == 6 and enc.out_dim == 128
    assert enc.embedding.num_embeddings == 119  # indexed by Z (1..118), row 0 padding
    again = SchNetEncoder(**enc.hparams)
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in enc.state_dict().items()
    }


@pytest.mark.parametrize("readout", ["mean", "sum"])
def test_output_shapes(readout: str) -> None:
    enc = _small(readout=readout, out_channels=12)
    z, pos, batch = _molecules()
    out = enc(z, pos, batch)
    assert out.shape == (4, 12) and out.dtype == torch.float32
    h = enc.atom_embeddings(z, pos, batch)
    assert h.shape == (z.numel(), 12)
    expect = torch.stack([h[batch == g].mean(0) for g in range(4)])
    if readout == "sum":
        expect = torch.stack([h[batch == g].sum(0) for g in range(4)])
    torch.testing.assert_close(out, expect)
    # An explicit num_graphs allows trailing empty graphs; batch=None is one graph.
    assert enc(z, pos, batch, num_graphs=6).shape == (6, 12)
    assert enc(z[:5], pos[:5]).shape == (1, 12)


def test_rigid_motion_invariance() -> None:
    enc = _small().double()
    z, pos, batch = _molecules(dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    moved = pos.clone()
    for b in range(int(batch.max()) + 1):  # a different rotation + translation per molecule
        m = batch == b
        rot = _random_rotation(g, torch.float64)
        moved[m] = pos[m] @ rot.T + torch.randn(3, generator=g, dtype=torch.float64) * 5
    torch.testing.assert_close(enc(z, moved, batch), enc(z, pos, batch), atol=1e-10, rtol=1e-8)


def test_atom_permutation_invariance() -> None:
    enc = _small()
    z, pos, batch = _molecules(sizes=(6, 4, 5))
    perm = torch.randperm(z.numel(), generator=torch.Generator().manual_seed(5))
    out = enc(z, pos, batch)
    torch.testing.assert_close(enc(z[perm], pos[perm], batch[perm], num_graphs=3), out)
    torch.testing.assert_close(
        enc.atom_embeddings(z[perm], pos[perm], batch[perm]),
        enc.atom_embeddings(z, pos, batch)[perm],
    )


def test_graphs_do_not_interact() -> None:
    enc = _small()
    z, pos, batch = _molecules(sizes=(4, 5))
    out = enc(z, pos, batch)
    torch.testing.assert_close(out[:1], enc(z[:4], pos[:4]))
    torch.testing.assert_close(out[1:], enc(z[4:], pos[4:]))


def test_gradients_reach_all_parameters() -> None:
    enc = _small()
    z, pos, batch = _molecules(sizes=(5, 6))
    pos.requires_grad_(True)
    enc(z, pos, batch).pow(2).sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert pos.grad is not None and torch.isfinite(pos.grad).all()
    # padding row 0 never gets gradient (PyG's padding_idx convention)
    assert enc.embedding.weight.grad[0].abs().sum() == 0


def test_reset_parameters_restores_distribution_and_padding() -> None:
    enc = _small()
    with torch.no_grad():
        for p in enc.parameters():
            p.fill_(0.3)
    enc.reset_parameters()
    assert torch.all(enc.embedding.weight[0] == 0)
    assert torch.all(enc.lin1.bias == 0) and enc.lin1.weight.std() > 0


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="readout"):
        SchNetEncoder(readout="max")
    with pytest.raises(ValueError, match="num_interactions"):
        SchNetEncoder(num_interactions=0)
    with pytest.raises(ValueError, match="cutoff"):
        SchNetEncoder(cutoff=0)


def test_repr() -> None:
    assert repr(SchNetEncoder()) == (
        "SchNetEncoder(hidden_channels=128, num_filters=128, num_interactions=6, "
        "num_gaussians=50, cutoff=10.0, max_neighbors=32, readout=mean, out_channels=128)"
    )
    assert repr(_small(readout="sum", out_channels=300)) == (
        "SchNetEncoder(hidden_channels=16, num_filters=16, num_interactions=2, "
        "num_gaussians=8, cutoff=5.0, max_neighbors=32, readout=sum, out_channels=300)"
    )


def _pyg_atom_embeddings(enc: SchNetEncoder, z, pos, batch) -> torch.Tensor:
    """The encoder with PyG's own ``InteractionBlock.forward`` (the reference)."""
    edge_index = radius_graph(pos, batch, enc.cutoff, enc.max_neighbors)
    src, dst = edge_index
    edge_weight = (pos[src] - pos[dst]).norm(dim=-1)
    edge_attr = enc.distance_expansion(edge_weight)
    h = enc.embedding(z)
    for block in enc.interactions:
        h = h + block(h, edge_index, edge_weight, edge_attr)
    return enc.lin2(enc.act(enc.lin1(h)))


def test_interactions_compute_what_pyg_blocks_compute() -> None:
    enc = _small(cutoff=4.0)
    z, pos, batch = _molecules(sizes=(6, 9, 4), seed=3)
    pos.requires_grad_(True)
    ours = enc.atom_embeddings(z, pos, batch)
    ref = _pyg_atom_embeddings(enc, z, pos, batch)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    (g_ours,) = torch.autograd.grad(ours.square().sum(), pos)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), pos)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-5)
    # under bf16 autocast (--precision bf16-mixed): the same up to bfloat16 rounding
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = enc.atom_embeddings(z, pos, batch).float()
    scale = ref.abs().max()
    assert (low - ref).abs().max() < 0.05 * scale


@pytest.mark.parametrize("max_neighbors", [32, 3])
def test_one_filter_per_atom_pair_gives_pyg_outputs_and_gradients(max_neighbors: int) -> None:
    # 3 nearest neighbours leave many edges without their reverse: such a pair serves one edge
    enc = _small(cutoff=4.0, max_neighbors=max_neighbors)
    z, pos, batch = _molecules(sizes=(7, 9, 5), seed=5)
    src, dst = radius_graph(pos, batch, enc.cutoff, enc.max_neighbors)
    a, b, pair = edge_pairs(src, dst, len(z))
    assert bool((a < b).all()) and len(a) == len(set(zip(a.tolist(), b.tolist())))
    assert torch.equal(torch.minimum(src, dst), a[pair]) and torch.equal(
        torch.maximum(src, dst), b[pair]
    )
    one_way = len(a) * 2 - len(src)  # pairs with a single edge
    assert (one_way > 0) == (max_neighbors == 3)

    ours = enc.atom_embeddings(z, pos, batch)
    ref = _pyg_atom_embeddings(enc, z, pos, batch)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    params = [p for p in enc.parameters() if p.requires_grad]
    g_ours = torch.autograd.grad(ours.square().sum(), params, allow_unused=True)
    g_ref = torch.autograd.grad(ref.square().sum(), params, allow_unused=True)
    for go, gr in zip(g_ours, g_ref):
        if gr is None:
            assert go is None
        else:
            torch.testing.assert_close(go, gr, rtol=1e-4, atol=1e-5)
