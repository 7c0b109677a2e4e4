"""Fixtures shared by the 2D pre-training method tests: tiny batches, a GIN, a validity check."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from fewmol.chem.featurize import FEATURIZERS, featurize_smiles
from fewmol.chem.mol import try_canonical_smiles
from fewmol.data.collate import GraphBatch, GraphSet
from fewmol.data.registry import load_frame
from fewmol.models.gin import GINEncoder

SMILES = [
    "CCO",
    "c1ccccc1C(=O)O",
    "[Na+].[Cl-]",
    "F/C=C/F",
    "C[C@H](N)C#N",
    "C",
    "CC(C)(C)c1ccc(O)cc1N",
    "O=C1CCCN1C1CC1",
]


def graphset(smiles: list[str], featurizer: str = "hu2019") -> GraphSet:
    """Featurised molecules as a GraphSet."""
    spec = FEATURIZERS[featurizer]
    return GraphSet.from_graphs(
        [featurize_smiles(s, featurizer) for s in smiles], len(spec.atom_dims), len(spec.bond_dims)
    )


@pytest.fixture
def small_batch() -> Callable[..., GraphBatch]:
    """Factory: a batch of SMILES (default: 8 varied molecules, salts and stereo included)."""

    def make(smiles: list[str] | None = None, featurizer: str = "hu2019") -> GraphBatch:
        smiles = SMILES if smiles is None else smiles
        return graphset(smiles, featurizer).collate(np.arange(len(smiles)))

    return make


@pytest.fixture(scope="session")
def bbbp_smiles() -> list[str]:
    """The first 32 distinct canonical SMILES of BBBP (bundled)."""
    out: list[str] = []
    for s in load_frame("bbbp")["smiles"].tolist():
        c, _ = try_canonical_smiles(s)
        if c is not None and c not in out:
            out.append(c)
        if len(out) == 32:
            break
    return out


@pytest.fixture
def bbbp_batch(bbbp_smiles) -> GraphBatch:
    """32 BBBP molecules, hu2019 features, as one batch."""
    return graphset(bbbp_smiles).collate(np.arange(len(bbbp_smiles)))


@pytest.fixture
def tiny_encoder() -> Callable[..., GINEncoder]:
    """Factory: a 2-layer, 16-wide GIN (seeded)."""

    def make(featurizer: str = "hu2019", num_layers: int = 2, dim: int = 16) -> GINEncoder:
        torch.manual_seed(0)
        spec = FEATURIZERS[featurizer]
        return GINEncoder(
            spec.atom_dims, spec.bond_dims, spec.self_loop_bond, num_layers=num_layers, dim=dim
        )

    return make


def check_valid(batch: GraphBatch, featurizer: str = "hu2019", nonempty: bool = True) -> None:
    """Assert a batch is a well-formed molecular graph batch for the featuriser.

    Atom / bond features inside their vocabularies, edge endpoints in range and inside one
    graph, no self-loops, every bond stored in both directions with equal features, graph ids
    in range and (``nonempty``) every graph with at least one atom.
    """
    spec = FEATURIZERS[featurizer]
    n = batch.x.shape[0]
    assert batch.x.dtype == torch.long and batch.edge_index.dtype == torch.long
    assert batch.x.shape[1] == len(spec.atom_dims)
    assert batch.edge_attr.shape == (batch.edge_index.shape[1], len(spec.bond_dims))
    for k, d in enumerate(spec.atom_dims):
        assert batch.x[:, k].min() >= 0 and batch.x[:, k].max() < d, f"atom column {k}"
    if batch.edge_attr.numel():
        for k, d in enumerate(spec.bond_dims):
            col = batch.edge_attr[:, k]
            assert col.min() >= 0 and col.max() < d, f"bond column {k}"
    assert batch.batch.shape == (n,)
    assert batch.batch.min() >= 0 and batch.batch.max() < batch.num_graphs
    if nonempty:
        assert torch.bincount(batch.batch, minlength=batch.num_graphs).min() >= 1
    src, dst = batch.edge_index
    if src.numel():
        assert src.min() >= 0 and src.max() < n and dst.min() >= 0 and dst.max() < n
        assert torch.equal(batch.batch[src], batch.batch[dst]), "edge between two graphs"
        assert bool((src != dst).all()), "self-loop"
        fwd = {(int(a), int(b)): tuple(batch.edge_attr[i].tolist()) for i, (a, b) in
               enumerate(batch.edge_index.T.tolist())}  # fmt: skip
        assert len(fwd) == src.numel(), "duplicate edge"
        for (a, b), attr in fwd.items():
            assert fwd.get((b, a)) == attr, f"bond {a}-{b} not stored both ways"


@pytest.fixture
def assert_valid() -> Callable[..., None]:
    """The :func:`check_valid` assertion, as a fixture (tests are not a package)."""
    return check_valid
