"""Integrated gradients over atom embeddings: completeness, batch independence, ensembles."""

from __future__ import annotations

import numpy as np
import torch

from fewmol.chem.featurize import get_featurizer
from fewmol.data.store import featurize_to_graphset
from fewmol.finetune.explain import integrated_gradients
from fewmol.finetune.module import FinetuneModule
from fewmol.models.gin import GINEncoder
from fewmol.models.heads import GraphPropertyModel, LinearHead

SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC", "c1ccncc1", "OCC(O)CO", "ClC(Cl)Cl"]


def _module(seed: int, task_type: str = "classification") -> FinetuneModule:
    torch.manual_seed(seed)
    spec = get_featurizer("hu2019")
    enc = GINEncoder(spec.atom_dims, spec.bond_dims, spec.self_loop_bond, 3, 32, dropout=0.5)
    model = GraphPropertyModel(enc, LinearHead(32, 2))
    with torch.no_grad():
        model.head.linear.weight.mul_(50.0)  # outputs that move by O(1) between x and baseline
    module = FinetuneModule(
        model, task_type, y_mean=np.array([1.0, -2.0]), y_std=np.array([2.0, 0.5])
    )
    # batch norm with non-trivial running statistics, so eval mode is not the identity
    for bn in enc.batch_norms:
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    return module.eval()


def _graphs():
    return featurize_to_graphset(SMILES, "hu2019", cache=False)


def test_attributions_sum_to_the_output_minus_the_baseline() -> None:
    graphs = _graphs()
    for task_type in ("classification", "regression"):
        module = _module(0, task_type)
        errors = []
        for steps in (64, 512):
            attrs, out, base = integrated_gradients([module], graphs, [0, 1], steps)
            assert [a.shape for a in attrs] == [(g, 2) for g in (13, 7, 6, 6, 4)]
            gap = out - base
            assert np.abs(gap).min() > 0.02  # the check below is not vacuous
            errors.append(np.abs(np.stack([a.sum(0) for a in attrs]) - gap).max())
        # completeness up to the quadrature error, which shrinks with more steps
        assert errors[1] < 2e-3 and errors[1] < errors[0] / 2, errors


def test_batching_and_task_selection_do_not_change_attributions() -> None:
    graphs, module = _graphs(), _module(1)
    together, _, _ = integrated_gradients([module], graphs, [0, 1], 16, batch_size=64)
    alone, _, _ = integrated_gradients([module], graphs, [1], 16, batch_size=1)
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a[:, 1:], b, rtol=1e-5, atol=1e-7)


def test_an_ensemble_averages_its_members() -> None:
    graphs, m0, m1 = _graphs(), _module(2), _module(3)
    a0, o0, _ = integrated_gradients([m0], graphs, [0], 8)
    a1, o1, _ = integrated_gradients([m1], graphs, [0], 8)
    both, ob, _ = integrated_gradients([m0, m1], graphs, [0], 8)
    np.testing.assert_allclose(ob, (o0 + o1) / 2, rtol=1e-6)
    for x, y, z in zip(a0, a1, both):
        np.testing.assert_allclose(z, (x + y) / 2, rtol=1e-5, atol=1e-8)
