"""fewmol.pretrain.methods.joao: GraphCL with a min-max learned augmentation distribution."""

from __future__ import annotations

import numpy as np
import torch

from fewmol.pretrain.augment import NUM_PAIRS
from fewmol.pretrain.methods import JOAO, METHODS
from fewmol.pretrain.methods.joao import joao_update, project_to_simplex


def _bisection(prob: np.ndarray, losses: np.ndarray, gamma: float) -> np.ndarray:
    """GraphMVP's update (bisection to 1e-2, then renormalised), for comparison."""
    b = prob + (losses - gamma * (prob - 1 / 25))
    lo, hi = b.min() - 1 / 25, b.max() - 1 / 25
    mu = (lo + hi) / 2
    while abs(np.maximum(b - mu, 0).sum() - 1) > 1e-2:
        if np.maximum(b - mu, 0).sum() > 1:
            lo = mu
        else:
            hi = mu
        mu = (lo + hi) / 2
    p = np.maximum(b - mu, 0)
    return p / p.sum()


def test_simplex_projection_and_update() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = rng.normal(size=25) * 3
        p = project_to_simplex(v)
        assert p.min() >= 0 and abs(p.sum() - 1) < 1e-12
        # optimality: no feasible point of a random sample is closer to v
        q = rng.dirichlet(np.ones(25), size=200)
        assert np.linalg.norm(p - v) <= np.linalg.norm(q - v, axis=1).min() + 1e-12
    prob = np.full(25, 1 / 25)
    losses = rng.uniform(2.0, 2.2, size=25)
    new = joao_update(prob, losses, 0.1)
    assert abs(new.sum() - 1) < 1e-12 and new.min() >= 0
    assert np.argmax(new) == np.argmax(losses)  # ascent: the hardest pair gains most
    assert np.abs(new - _bisection(prob, losses, 0.1)).max() < 0.02


def test_epoch_end_updates_the_distribution_from_kept_batches(bbbp_batch, tiny_encoder) -> None:
    enc = tiny_encoder()
    m = JOAO(dim=16, eval_fraction=0.5)
    assert METHODS["joao"] is JOAO and m.hparams["gamma"] == 0.1
    for i in range(4):  # batches 0 and 2 are kept (every 2nd)
        loss, logs = m.loss(enc, bbbp_batch, torch.Generator().manual_seed(i))
        loss.backward()
    assert len(m._kept) == 2 and "aug_entropy" in logs
    before_bn = {k: v.clone() for k, v in enc.state_dict().items() if "running" in k}
    uniform = m.aug_prob.clone()
    losses = m.pair_losses(enc, m._kept, torch.Generator().manual_seed(0))
    assert losses.shape == (NUM_PAIRS,) and bool(torch.isfinite(losses).all())
    # identity/identity is the easiest pair: both views are the molecule itself
    assert losses[24] == losses.min()
    m.epoch_end(enc, torch.Generator().manual_seed(0))
    assert m._kept == [] and not torch.allclose(m.aug_prob, uniform)
    assert abs(float(m.aug_prob.sum()) - 1) < 1e-6 and float(m.aug_prob.min()) >= 0
    assert m.aug_prob[24] <= m.aug_prob.max()
    after_bn = {k: v for k, v in enc.state_dict().items() if "running" in k}
    assert all(torch.equal(before_bn[k], after_bn[k]) for k in before_bn)


def test_loss_decreases_and_views_follow_the_distribution(
    bbbp_batch, tiny_encoder, assert_valid
) -> None:
    enc = tiny_encoder()
    m = JOAO(dim=16)
    opt = torch.optim.Adam([*enc.parameters(), *m.parameters()], lr=3e-3)
    losses = []
    for step in range(30):
        loss, _ = m.loss(enc, bbbp_batch, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step == 9:
            m.epoch_end(enc, torch.Generator().manual_seed(1))
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 1.0, losses
    pairs = torch.full((bbbp_batch.num_graphs,), int(m.aug_prob.argmax()))
    for view in m.views(bbbp_batch, pairs, torch.Generator().manual_seed(2)):
        assert_valid(view)
