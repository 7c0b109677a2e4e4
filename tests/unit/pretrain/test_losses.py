"""fewmol.pretrain.losses: EBM-NCE, InfoNCE, VRR/RR and the combined GraphMVP loss."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fewmol.pretrain.losses import (
    EBMNCE,
    VRR,
    GraphMVPLoss,
    InfoNCE,
    Reconstructor,
    gaussian_kl,
    reconstruction_loss,
)


def _aligned(b: int = 16, d: int = 8, noise: float = 0.05, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=g)
    return x, x + noise * torch.randn(b, d, generator=g), g


# --- contrastive ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loss",
    [EBMNCE(), EBMNCE(num_negatives=3), EBMNCE(negatives="random", num_negatives=4), InfoNCE()],
    ids=["ebm", "ebm-k3", "ebm-random", "infonce"],
)
def test_aligned_pairs_beat_shuffled(loss: nn.Module) -> None:
    x, y, g = _aligned()
    shuffled = y[torch.randperm(len(y), generator=g)]
    aligned_loss, parts = loss(x, y)
    shuffled_loss, parts_shuffled = loss(x, shuffled)
    assert aligned_loss < shuffled_loss
    # EBM-NCE's accuracy thresholds each logit at 0, so unrelated (near-orthogonal) negatives
    # count only about half the time; it must still beat the shuffled pairs.
    assert parts["acc"] > parts_shuffled["acc"]
    if isinstance(loss, InfoNCE):
        assert parts["acc"] == 1  # aligned partners are retrieved


def test_ebm_nce_matches_equation_k1() -> None:
    """K=1, shift negatives, no normalisation: the closed form, both directions averaged."""
    x, y, _ = _aligned(b=5, d=3, noise=0.5)
    x, y = x.double(), y.double()  # the closed form below is not numerically stable
    t = 0.5
    loss, _ = EBMNCE(temperature=t, normalize=False)(x, y)
    pos = (x * y).sum(1) / t
    neg_xy = (x * y.roll(-1, 0)).sum(1) / t  # y_{i+1} is x_i's negative
    neg_yx = (y * x.roll(-1, 0)).sum(1) / t

    def nce(p, n):
        return -torch.log(torch.sigmoid(p)).mean() - torch.log(1 - torch.sigmoid(n)).mean()

    torch.testing.assert_close(loss, 0.5 * (nce(pos, neg_xy) + nce(pos, neg_yx)))


def test_ebm_nce_negatives_never_the_positive() -> None:
    for mode in ("shift", "random"):
        for b, k in [(2, 1), (5, 4), (9, 3)]:
            idx = EBMNCE(num_negatives=k, negatives=mode).negative_index(b, torch.device("cpu"))
            assert idx.shape == (k, b)
            assert not torch.any(idx == torch.arange(b))
            # distinct negatives per positive
            assert all(len(set(idx[:, i].tolist())) == k for i in range(b))
    with pytest.raises(ValueError, match="batch size 3"):
        EBMNCE(num_negatives=3)(torch.randn(3, 4), torch.randn(3, 4))


def test_ebm_nce_normalize_makes_scale_irrelevant() -> None:
    x, y, _ = _aligned()
    loss = EBMNCE(normalize=True)
    torch.testing.assert_close(loss(x, y)[0], loss(10 * x, 0.1 * y)[0])
    assert not torch.isclose(
        EBMNCE(normalize=False)(x, y)[0], EBMNCE(normalize=False)(10 * x, y)[0]
    )


def test_infonce_temperature_two_by_two() -> None:
    """x = y = I: each row's logits are (1/t, 0), so CE = log(1 + exp(-1/t))."""
    eye = torch.eye(2)
    for t in (1.0, 0.5, 0.1):
        loss, parts = InfoNCE(temperature=t)(eye, eye)
        torch.testing.assert_close(loss, torch.tensor(math.log1p(math.exp(-1 / t))))
        assert parts["acc"] == 1
    # Lower temperature sharpens the softmax: aligned pairs cost less.
    assert InfoNCE(temperature=0.1)(eye, eye)[0] < InfoNCE(temperature=1.0)(eye, eye)[0]
    # Swapped pairs: the positive logit is 0 and the negative 1/t, CE = log(1 + exp(1/t)).
    swapped = eye.flip(0)
    torch.testing.assert_close(
        InfoNCE(temperature=0.5)(eye, swapped)[0], torch.tensor(math.log1p(math.exp(2.0)))
    )


def test_contrastive_shape_errors_and_flags() -> None:
    with pytest.raises(ValueError, match="equal shape"):
        InfoNCE()(torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(ValueError, match="temperature"):
        InfoNCE(temperature=0)
    with pytest.raises(ValueError, match="num_negatives"):
        EBMNCE(num_negatives=0)
    with pytest.raises(ValueError, match="negatives"):
        EBMNCE(negatives="perm")


# --- generative -----------------------------------------------------------------------------


def test_gaussian_kl_helper() -> None:
    zero = torch.zeros(4, 6)
    assert gaussian_kl(zero, zero) == 0
    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # per row: 0.5 * sum(mu^2 + s^2 - 1 - log s^2); rows: 0.5*(1 + 1 - ln2) and 0.5*4
    expected = 0.5 * ((1 + 1 - math.log(2.0)) * 0.5 + 4 * 0.5)
    torch.testing.assert_close(gaussian_kl(mu, logvar), torch.tensor(expected))
    assert gaussian_kl(torch.randn(5, 3), torch.randn(5, 3)) > 0


def test_kl_zero_when_posterior_is_prior_through_module(monkeypatch) -> None:
    torch.manual_seed(0)
    rec = Reconstructor(8, 6, beta=2.0)
    x, y = torch.randn(10, 8), torch.randn(10, 6)
    # A controlled encoder that returns the prior's parameters.
    monkeypatch.setattr(rec, "encode", lambda x: (x.new_zeros(10, 8), x.new_zeros(10, 8)))
    loss, parts = rec(x, y)
    assert parts["kl"] == 0
    torch.testing.assert_close(loss, parts["recon"])
    # Same through zeroed posterior layers, no monkeypatching.
    rec = Reconstructor(8, 6, beta=2.0).eval()
    with torch.no_grad():
        for lin in (rec.fc_mu, rec.fc_logvar):
            lin.weight.zero_()
            lin.bias.zero_()
    assert rec(x, y)[1]["kl"] == 0


def test_vrr_target_gets_no_gradient() -> None:
    torch.manual_seed(0)
    source = nn.Linear(4, 8)  # the source-side encoder
    target_enc = nn.Linear(4, 6)  # the target-side encoder
    inp = torch.randn(12, 4)
    for variational in (True, False):
        source.zero_grad()
        target_enc.zero_grad()
        target = target_enc(inp)
        target.retain_grad()
        loss, _ = Reconstructor(8, 6, variational=variational)(source(inp), target)
        loss.backward()
        assert target.grad is None
        assert target_enc.weight.grad is None and target_enc.bias.grad is None
        assert source.weight.grad is not None and source.weight.grad.abs().sum() > 0
    # With detach_target=False the target side is trained too (GraphMVP's ablation flag).
    target = target_enc(inp)
    Reconstructor(8, 6, detach_target=False)(source(inp), target)[0].backward()
    assert target_enc.weight.grad is not None


def test_vrr_both_directions_and_rr_variant() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(10, 8), torch.randn(10, 6)
    vrr = VRR(8, 6, beta=0.5)
    loss, parts = vrr(x, y)
    assert set(parts) == {"recon", "kl"}
    la, pa = vrr.to_3d(x, y)
    lb, pb = vrr.to_2d(y, x)
    assert (vrr.to_3d.in_dim, vrr.to_3d.out_dim, vrr.to_2d.in_dim) == (8, 6, 6)
    vrr.eval()  # deterministic z = mu so the parts can be recomputed exactly
    loss, parts = vrr(x, y)
    la, pa = vrr.to_3d(x, y)
    lb, pb = vrr.to_2d(y, x)
    torch.testing.assert_close(loss, 0.5 * (la + lb))
    torch.testing.assert_close(la, pa["recon"] + 0.5 * pa["kl"])
    # RR: no encoder layers, no KL part, loss = reconstruction.
    rr = VRR(8, 6, variational=False)
    loss, parts = rr(x, y)
    assert set(parts) == {"recon"}
    torch.testing.assert_close(loss, parts["recon"])
    assert not hasattr(rr.to_3d, "fc_mu")
    with pytest.raises(RuntimeError, match="variational"):
        rr.to_3d.encode(x)
    with pytest.raises(ValueError, match="same batch"):
        vrr(x, y[:5])


def test_reconstruction_losses() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 4.0]])
    torch.testing.assert_close(reconstruction_loss(a, b, "l2"), torch.tensor((1 + 1 + 0 + 4) / 4))
    torch.testing.assert_close(reconstruction_loss(a, b, "l1"), torch.tensor((1 + 1 + 0 + 2) / 4))
    torch.testing.assert_close(reconstruction_loss(a, b, "cosine"), torch.tensor(-0.5))
    with pytest.raises(ValueError, match="reconstruction loss"):
        Reconstructor(2, 2, loss="huber")


# --- combined -------------------------------------------------------------------------------


@pytest.mark.parametrize("contrastive", ["ebm_nce", "infonce"])
@pytest.mark.parametrize("generative", ["vrr", "rr", "none"])
def test_graphmvp_loss_weights_parts_exactly(contrastive: str, generative: str) -> None:
    torch.manual_seed(0)
    x, y, _ = _aligned(b=8, d=6)
    full = GraphMVPLoss(
        6, 6, alpha1=0.7, alpha2=0.3, contrastive=contrastive, generative=generative
    )
    full.eval()  # deterministic VRR so the total can be recomputed from the parts
    total, parts = full(x, y)
    torch.testing.assert_close(total, 0.7 * parts["contrastive"] + 0.3 * parts["generative"])
    assert parts["loss"] == total.detach()
    assert "contrastive_acc" in parts
    if generative == "none":
        assert parts["generative"] == 0 and full.generative is None
    else:
        assert "generative_recon" in parts
        assert ("generative_kl" in parts) == (generative == "vrr")
    # alpha = 0 drops a term from the total but keeps it in the parts.
    only_c = GraphMVPLoss(6, 6, alpha2=0.0, contrastive=contrastive, generative=generative).eval()
    total_c, parts_c = only_c(x, y)
    torch.testing.assert_close(total_c, parts_c["contrastive"])


def test_graphmvp_loss_validation() -> None:
    with pytest.raises(ValueError, match="out_channels=300"):
        GraphMVPLoss(300, 128)
    with pytest.raises(ValueError, match="contrastive"):
        GraphMVPLoss(4, 4, contrastive="nce")
    with pytest.raises(ValueError, match="generative"):
        GraphMVPLoss(4, 4, generative="vae")
    with pytest.raises(ValueError, match="alpha"):
        GraphMVPLoss(4, 4, alpha1=-1)


@pytest.mark.parametrize("contrastive", ["ebm_nce", "infonce"])
def test_losses_decrease_when_training_linear_encoders(contrastive: str) -> None:
    """Two linear 'view encoders' on aligned random data learn to agree."""
    torch.manual_seed(0)
    n, d_in, d = 64, 10, 8
    view_2d = torch.randn(n, d_in)
    view_3d = view_2d @ torch.randn(d_in, d_in) + 0.05 * torch.randn(n, d_in)  # same molecules
    enc_2d, enc_3d = nn.Linear(d_in, d), nn.Linear(d_in, d)
    crit = GraphMVPLoss(d, d, contrastive=contrastive, generative="vrr", alpha2=0.5)
    params = [*enc_2d.parameters(), *enc_3d.parameters(), *crit.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)

    def parts_now() -> dict[str, torch.Tensor]:
        crit.eval()
        with torch.no_grad():
            out = crit(enc_2d(view_2d), enc_3d(view_3d))[1]
        crit.train()
        return out

    before = parts_now()
    for _ in range(50):
        opt.zero_grad()
        crit(enc_2d(view_2d), enc_3d(view_3d))[0].backward()
        opt.step()
    after = parts_now()
    assert after["loss"] < 0.8 * before["loss"]
    assert after["contrastive"] < before["contrastive"]
    assert after["generative"] < before["generative"]
    assert after["contrastive_acc"] >= before["contrastive_acc"]
