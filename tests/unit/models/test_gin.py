"""fewmol.models.gin and heads: GIN encoder (pretrain-gnns form), pooling and heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewmol.chem.featurize import FEATURIZERS, featurize_smiles, get_featurizer
from fewmol.data.collate import GraphSet
from fewmol.models.gin import CategoricalEmbedding, GINEncoder, GINLayer
from fewmol.models.heads import GraphPropertyModel, LinearHead, MLPHead, global_pool

HU = FEATURIZERS["hu2019"]
SMILES = ["CCO", "c1ccccc1C(=O)O", "[Na+]", "F/C=C/F", "C[C@H](N)C#N"]


def _encoder(**kw) -> GINEncoder:
    torch.manual_seed(0)
    kw = {"num_layers": 2, "dim": 16, **kw}
    return GINEncoder(HU.atom_dims, HU.bond_dims, HU.self_loop_bond, **kw)


def _batch(smiles=SMILES, featurizer="hu2019"):
    gs = GraphSet.from_graphs(
        [featurize_smiles(s, featurizer) for s in smiles],
        len(FEATURIZERS[featurizer].atom_dims),
        len(FEATURIZERS[featurizer].bond_dims),
    )
    return gs.collate(np.arange(len(smiles)))


def test_default_output_shape_and_hparams() -> None:
    torch.manual_seed(0)
    enc = GINEncoder(HU.atom_dims, HU.bond_dims, HU.self_loop_bond)
    b = _batch()
    enc.eval()
    with torch.no_grad():
        h = enc(b.x, b.edge_index, b.edge_attr)
    assert h.shape == (b.x.shape[0], 300)
    assert h.dtype == torch.float32
    assert enc.out_dim == 300
    assert len(enc.layers) == 5 and len(enc.batch_norms) == 5
    assert enc.hparams == {
        "atom_dims": [120, 3],
        "bond_dims": [6, 3],
        "self_loop_bond": [4, 0],
        "num_layers": 5,
        "dim": 300,
        "dropout": 0.0,
        "jk": "last",
    }
    # MLP 300 -> 600 -> 300
    mlp = enc.layers[0].mlp
    assert (mlp[0].in_features, mlp[0].out_features) == (300, 600)
    assert (mlp[2].in_features, mlp[2].out_features) == (600, 300)
    # a rebuilt encoder from its hparams has the same parameter shapes
    again = GINEncoder(**enc.hparams)
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in enc.state_dict().items()
    }


@pytest.mark.parametrize(("jk", "factor"), [("last", 1), ("sum", 1), ("max", 1), ("concat", 4)])
def test_jk_modes_shape_and_out_dim(jk: str, factor: int) -> None:
    enc = _encoder(num_layers=3, jk=jk).eval()
    b = _batch()
    with torch.no_grad():
        h = enc(b.x, b.edge_index, b.edge_attr)
    assert enc.out_dim == 16 * factor
    assert h.shape == (b.x.shape[0], enc.out_dim)


def test_jk_modes_combine_layer_outputs() -> None:
    b = _batch()
    outs = {}
    for jk in ("last", "sum", "max", "concat"):
        enc = _encoder(num_layers=3, jk=jk).eval()  # same seed -> same weights
        with torch.no_grad():
            outs[jk] = enc(b.x, b.edge_index, b.edge_attr)
    layers = outs["concat"].split(16, dim=1)  # [embedding, layer1, layer2, layer3]
    assert len(layers) == 4
    assert torch.allclose(layers[-1], outs["last"])
    assert torch.allclose(layers[1] + layers[2] + layers[3], outs["sum"], atol=1e-6)
    assert torch.allclose(
        torch.maximum(torch.maximum(layers[1], layers[2]), layers[3]), outs["max"]
    )
    assert (layers[1] >= 0).all() and (layers[2] >= 0).all()  # ReLU between layers
    assert (layers[3] < 0).any()  # no ReLU after the last layer


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="jk"):
        _encoder(jk="mean")
    with pytest.raises(ValueError, match="num_layers"):
        _encoder(num_layers=0)


def test_repr() -> None:
    enc = GINEncoder(HU.atom_dims, HU.bond_dims, HU.self_loop_bond, dropout=0.5)
    assert repr(enc) == "GINEncoder(layers=5, dim=300, dropout=0.5, jk=last)"
    assert repr(_encoder(jk="concat")) == "GINEncoder(layers=2, dim=16, dropout=0.0, jk=concat)"
    assert repr(enc.layers[0]) == "GINLayer(300)"
    assert repr(LinearHead(300, 12)) == "LinearHead(300, 12)"
    assert repr(MLPHead(300, 2, hidden=64)) == "MLPHead(300, 64, 2)"


def _permute(b, perm: torch.Tensor):
    """Reorder atoms: new atom k is old atom perm[k]; edges remapped accordingly."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm))
    return b.x[perm], inv[b.edge_index], b.edge_attr, b.batch[perm]


@pytest.mark.parametrize("featurizer", ["hu2019", "ogb"])
def test_permutation_equivariance_and_pooled_invariance(featurizer: str) -> None:
    spec = FEATURIZERS[featurizer]
    torch.manual_seed(1)
    enc = GINEncoder(spec.atom_dims, spec.bond_dims, spec.self_loop_bond, num_layers=3, dim=16)
    model = GraphPropertyModel(enc, LinearHead(16, 2)).eval()
    b = _batch(featurizer=featurizer)
    g = torch.Generator().manual_seed(3)
    perm = torch.randperm(b.x.shape[0], generator=g)
    assert not torch.equal(perm, torch.arange(len(perm)))
    x2, ei2, ea2, batch2 = _permute(b, perm)
    # shuffle the edge order as well
    eperm = torch.randperm(ei2.shape[1], generator=g)
    ei2, ea2 = ei2[:, eperm], ea2[eperm]
    with torch.no_grad():
        h1 = enc(b.x, b.edge_index, b.edge_attr)
        h2 = enc(x2, ei2, ea2)
        assert torch.allclose(h1[perm], h2, atol=1e-5)
        for mode in ("mean", "sum", "max"):
            model.pooling = mode
            p1 = model.embed(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)
            p2 = model.embed(x2, ei2, ea2, batch2, b.num_graphs)
            assert torch.allclose(p1, p2, atol=1e-5), mode
        out1 = model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)
        out2 = model(x2, ei2, ea2, batch2, b.num_graphs)
    assert out1.shape == (len(SMILES), 2)
    assert torch.allclose(out1, out2, atol=1e-5)


def test_gin_layer_equals_explicit_self_loop_formulation() -> None:
    """pretrain-gnns: add a self-loop edge (type 4, dir 0) per node, sum (h_j + e_ji), MLP."""
    torch.manual_seed(0)
    layer = GINLayer(8, HU.bond_dims, HU.self_loop_bond)
    b = _batch()
    n = b.x.shape[0]
    h = torch.randn(n, 8)
    assert layer.self_loop_attr.tolist() == [[4, 0]]
    loops = torch.arange(n)
    edge_index = torch.cat([b.edge_index, torch.stack([loops, loops])], dim=1)
    edge_attr = torch.cat([b.edge_attr, layer.self_loop_attr.expand(n, 2)], dim=0)
    w_type = layer.edge_embedding.embeddings[0].weight
    w_dir = layer.edge_embedding.embeddings[1].weight
    agg = torch.zeros(n, 8)
    for (src, dst), (t, d) in zip(edge_index.T.tolist(), edge_attr.tolist()):
        agg[dst] += h[src] + w_type[t] + w_dir[d]
    expected = layer.mlp(agg)
    with torch.no_grad():
        got = layer(h, b.edge_index, b.edge_attr)
        assert torch.allclose(got, expected, atol=1e-5)
        # the atom without bonds ([Na+], graph 2): only its self loop contributes
        na = int((b.batch == 2).nonzero()[0])
        alone = layer.mlp(h[na] + w_type[4] + w_dir[0])
        assert torch.allclose(got[na], alone, atol=1e-5)


def test_categorical_embedding_sums_columns() -> None:
    torch.manual_seed(0)
    emb = CategoricalEmbedding((5, 3, 2), 4)
    x = torch.tensor([[0, 1, 1], [4, 2, 0]])
    expected = torch.stack(
        [
            emb.embeddings[0].weight[r[0]]
            + emb.embeddings[1].weight[r[1]]
            + emb.embeddings[2].weight[r[2]]
            for r in x
        ]
    )
    assert torch.allclose(emb(x), expected)


@pytest.mark.parametrize("featurizer", ["hu2019", "ogb"])
def test_summed_table_gives_the_column_sums_and_their_gradients(featurizer: str) -> None:
    spec = get_featurizer(featurizer)
    torch.manual_seed(0)
    combined = CategoricalEmbedding(spec.bond_dims, 8)
    plain = CategoricalEmbedding(spec.bond_dims, 8)
    plain.load_state_dict(combined.state_dict())  # same parameters, same names
    plain.combined = False
    assert combined.combined
    g = torch.Generator().manual_seed(1)
    x = torch.stack([torch.randint(0, d, (50,), generator=g) for d in spec.bond_dims], 1)
    out, ref = combined(x), plain(x)
    torch.testing.assert_close(out, ref)
    w = torch.randn(out.shape, generator=g)
    (out * w).sum().backward()
    (ref * w).sum().backward()
    for a, b in zip(combined.parameters(), plain.parameters()):
        torch.testing.assert_close(a.grad, b.grad)
    # OGB atoms (119 x 5 x 12 x ...) are too many combinations: embedded column by column
    assert not CategoricalEmbedding(get_featurizer("ogb").atom_dims, 8).combined


def test_summed_table_refuses_an_index_outside_a_vocabulary() -> None:
    emb = CategoricalEmbedding((5, 3), 4)
    # (0, 3) would otherwise read the row of (1, 0)
    with pytest.raises(IndexError, match="column 1 has an index outside its vocabulary of 3"):
        emb(torch.tensor([[0, 1], [0, 3]]))
    with pytest.raises(IndexError, match="column 0"):
        emb(torch.tensor([[-1, 0]]))


def test_gradients_reach_every_parameter() -> None:
    enc = _encoder(num_layers=3, dropout=0.0)
    model = GraphPropertyModel(enc, MLPHead(16, 3, hidden=8)).train()
    b = _batch()
    out = model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)
    torch.manual_seed(5)
    (out * torch.randn_like(out)).sum().backward()
    params = dict(model.named_parameters())
    assert any(k.startswith("encoder.layers.2.edge_embedding") for k in params)
    for name, p in params.items():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_dropout_only_in_training() -> None:
    enc = _encoder(dropout=0.5)
    b = _batch()
    enc.eval()
    with torch.no_grad():
        a1 = enc(b.x, b.edge_index, b.edge_attr)
        a2 = enc(b.x, b.edge_index, b.edge_attr)
    assert torch.equal(a1, a2)
    enc.train()
    torch.manual_seed(0)
    t1 = enc(b.x, b.edge_index, b.edge_attr)
    assert (t1 == 0).float().mean() > 0.2


def _manual_pool(h: torch.Tensor, batch: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    rows = []
    for g in range(n):
        hg = h[batch == g]
        rows.append({"mean": hg.mean(0), "sum": hg.sum(0), "max": hg.max(0).values}[mode])
    return torch.stack(rows)


@pytest.mark.parametrize("mode", ["mean", "sum", "max"])
def test_global_pool_against_manual(mode: str) -> None:
    torch.manual_seed(0)
    batch = torch.tensor([0, 0, 0, 1, 2, 2, 1, 3])  # unsorted on purpose
    h = torch.randn(len(batch), 5) - 3.0  # all negative: max must not clamp at 0
    got = global_pool(h, batch, 4, mode)
    assert got.shape == (4, 5)
    assert torch.allclose(got, _manual_pool(h, batch, 4, mode), atol=1e-6)


def test_global_pool_gradients_and_errors() -> None:
    h = torch.randn(4, 3, requires_grad=True)
    batch = torch.tensor([0, 0, 1, 1])
    global_pool(h, batch, 2, "mean").sum().backward()
    assert torch.allclose(h.grad, torch.full((4, 3), 0.5))
    with pytest.raises(ValueError, match="mean, sum or max"):
        global_pool(h, batch, 2, "attention")


def test_heads_shapes() -> None:
    z = torch.randn(6, 16)
    assert LinearHead(16, 3)(z).shape == (6, 3)
    assert MLPHead(16, 2, hidden=8, dropout=0.1)(z).shape == (6, 2)


def test_state_dict_has_no_self_loop_buffer() -> None:
    enc = _encoder(num_layers=3)
    keys = list(enc.state_dict())
    assert not any("self_loop_attr" in k for k in keys)
    # the buffer still exists and follows the module
    assert all(layer.self_loop_attr.tolist() == [[4, 0]] for layer in enc.layers)
    assert "layers.0.edge_embedding.embeddings.0.weight" in keys
    assert "batch_norms.2.running_mean" in keys
    # a state dict round trip works strictly
    other = _encoder(num_layers=3)
    other.load_state_dict(enc.state_dict(), strict=True)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, other.state_dict()[k])
    model = GraphPropertyModel(enc, LinearHead(16, 1))
    assert not any("self_loop_attr" in k for k in model.state_dict())
