"""Task weighting: masked per-task losses and the UW, GradNorm, DWA and LBTW weights."""

from __future__ import annotations

import math

import pytest
import torch

from fewmol.multitask.balancing import (
    Balancer,
    DynamicWeightAverage,
    GradNorm,
    LossBalancedTaskWeighting,
    UncertaintyWeighting,
    make_balancer,
    per_task_bce,
)

NAN = float("nan")


def test_per_task_bce_ignores_missing_labels() -> None:
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0], [3.0, 0.5]])
    y = torch.tensor([[1.0, NAN], [0.0, NAN], [NAN, NAN]])
    losses, present = per_task_bce(logits, y)
    expected0 = (math.log(2) + math.log(1 + math.e)) / 2  # rows 0 and 1 of task 0
    assert float(losses[0]) == pytest.approx(expected0, rel=1e-6)
    assert float(losses[1]) == 0.0
    assert present.tolist() == [True, False]
    # MTL: the mean over tasks present in the batch.
    assert float(Balancer(2).loss(losses, present)) == pytest.approx(expected0, rel=1e-6)


def test_uncertainty_weights_move_toward_the_lower_loss_task() -> None:
    uw = UncertaintyWeighting(2)
    losses = torch.tensor([0.1, 1.0])
    present = torch.tensor([True, True])
    assert uw.weights().tolist() == [1.0, 1.0]
    opt = torch.optim.Adam(uw.parameters(), lr=0.05)
    for _ in range(600):
        opt.zero_grad()
        uw.loss(losses, present).backward()
        opt.step()
    w = uw.weights()
    assert w[0] > w[1]
    # The optimum of e^{-2s} L + s is e^{-2s} = 1 / (2 L).
    assert w.tolist() == pytest.approx([5.0, 0.5], rel=0.02)


def test_dwa_weights_from_loss_ratios_of_the_last_two_epochs() -> None:
    dwa = DynamicWeightAverage(3, temperature=2.0)
    dwa.end_epoch(torch.tensor([1.0, 1.0, 1.0]))
    assert dwa.weights().tolist() == [1.0, 1.0, 1.0]  # one epoch of history: equal
    dwa.end_epoch(torch.tensor([0.5, 1.0, NAN]))  # task 0 halves, task 1 flat, task 2 unseen
    r = torch.tensor([0.5, 1.0, 1.0])
    expected = 3 * torch.softmax(r / 2.0, 0)
    torch.testing.assert_close(dwa.weights(), expected)
    assert dwa.weights()[0] < dwa.weights()[1]  # the faster-learning task is down-weighted
    assert float(dwa.weights().sum()) == pytest.approx(3.0)


def test_lbtw_weights_are_loss_ratios_to_the_first_seen_loss() -> None:
    lbtw = LossBalancedTaskWeighting(2, alpha=0.5)
    present = torch.tensor([True, False])
    lbtw.loss(torch.tensor([2.0, 0.0]), present)  # first sight of task 0 only
    assert lbtw.initial[0] == 2.0 and torch.isnan(lbtw.initial[1])
    losses = torch.tensor([0.5, 3.0])
    out = lbtw.loss(losses, torch.tensor([True, True]))  # task 1 seen now: its reference
    w = lbtw.weights()
    assert w.tolist() == pytest.approx([0.25**0.5, 1.0])
    assert float(out) == pytest.approx((0.5 * 0.5 + 1.0 * 3.0) / 2)


def test_gradnorm_equalises_gradient_norms() -> None:
    """Two tasks whose output-layer gradients differ 10x end with equal weighted norms."""
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = torch.stack([(x[:, 0] > 0).float(), (x[:, 1] > 0).float()], 1)
    head = torch.nn.Linear(4, 2)
    with torch.no_grad():  # task 0's inputs are scaled up: its raw gradient norm is larger
        head.weight[0].mul_(0.0)
    xs = torch.stack([x * 10.0, x], 0)  # per-task inputs
    gn = GradNorm(2, alpha=0.0)
    opt = torch.optim.Adam(gn.parameters(), lr=0.02)

    def step() -> torch.Tensor:
        logits = torch.stack([head(xs[0])[:, 0], head(xs[1])[:, 1]], 1)
        losses, present = per_task_bce(logits, y)
        head.zero_grad()
        gn.loss(losses, present).backward()
        opt.zero_grad()
        gn.after_backward(losses.detach(), present, head.weight.grad)
        opt.step()
        gn.after_step()
        return gn.last_grad_norms

    first = step()
    assert first[0] > 3 * first[1]
    for _ in range(300):
        g = step()
    assert float(g[0] / g[1]) == pytest.approx(1.0, abs=0.1), g
    w = gn.weights()
    assert w[0] < w[1] and float(w.sum()) == pytest.approx(2.0)


def test_make_balancer_names() -> None:
    assert type(make_balancer("mtl", 3)) is Balancer
    assert type(make_balancer("stl", 1)) is Balancer
    assert isinstance(make_balancer("uw", 3), UncertaintyWeighting)
    assert isinstance(make_balancer("gradnorm", 3), GradNorm)
    assert isinstance(make_balancer("dwa", 3), DynamicWeightAverage)
    assert isinstance(make_balancer("lbtw", 3), LossBalancedTaskWeighting)
    with pytest.raises(ValueError, match="unknown balancing"):
        make_balancer("magic", 3)
