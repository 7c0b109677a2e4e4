"""The fast CPU dropout: rate, scale, gradient, determinism, and the nn.Dropout module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fewmol.models.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.9])
def test_rate_and_scale(p):
    torch.manual_seed(0)
    x = torch.ones(400, 2500)  # 1e6 elements: the dropped fraction is within ~5e-4 (1 sigma)
    out = dropout(x, p)
    dropped = (out == 0).float().mean().item()
    assert dropped == pytest.approx(p, abs=3e-3)
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)), rtol=1e-4)
    assert out.mean().item() == pytest.approx(1.0, abs=1e-2)  # unbiased


def test_identity_cases_and_bad_rate():
    x = torch.randn(50, 7)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match="must be in"):
        dropout(x, 1.5)


def test_gradient_is_the_mask_and_dtype_kept():
    torch.manual_seed(1)
    x = torch.randn(301, 33, requires_grad=True)  # an element count not divisible by 4
    out = dropout(x, 0.5)
    out.sum().backward()
    assert torch.equal(x.grad, (out != 0).float() * 2.0)
    assert torch.allclose(out, x.detach() * x.grad)
    xb = torch.randn(64, 64, dtype=torch.bfloat16)
    assert dropout(xb, 0.3).dtype == torch.bfloat16


def test_seeded_draws_repeat_and_masks_differ():
    x = torch.ones(1000)
    torch.manual_seed(3)
    a, b = dropout(x, 0.5), dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.5), a)
    assert not torch.equal(a, b)  # consecutive calls draw new masks
    # neighbouring elements (slices of one 64-bit word) are not correlated
    m = (a != 0).float()
    assert abs(torch.corrcoef(torch.stack([m[:-1], m[1:]]))[0, 1].item()) < 0.1


def test_module_follows_train_eval_and_is_an_nn_dropout():
    mod = Dropout(0.5)
    assert isinstance(mod, nn.Dropout)  # mc_dropout switches nn.Dropout modules on by type
    x = torch.ones(200, 50)
    assert (mod(x) == 0).any()
    assert torch.equal(mod.eval()(x), x)
