r"""GraphMVP pre-training losses between the 2D (GIN) and 3D (SchNet) views of a molecule.

Each loss is an ``nn.Module`` whose ``forward(x, y)`` takes the pooled 2D and 3D
representations of the same molecules, row-aligned, and returns ``(loss, parts)``: a scalar
to minimise and a dict of detached scalars for logging.

Choices follow the GraphMVP code (chao1224/GraphMVP, ``src_classification/util.py``
``do_CL``/``dual_CL`` and ``models/auto_encoder.py``) and its pre-training scripts
(``--CL_similarity_metric=EBM_dot_prod --normalize --T 0.1|0.2``, ``--AE_model=VAE
--AE_loss=l2 --detach_target --beta 1|2``, ``--alpha_1 1 --alpha_2 0.1|1``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Parts = dict[str, torch.Tensor]

CONTRASTIVE = ("ebm_nce", "infonce")
GENERATIVE = ("vrr", "rr", "none")
RECON_LOSSES = ("l2", "l1", "cosine")


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    """Raise ValueError unless x and y are aligned (batch, dim) matrices of equal shape."""
    if x.dim() != 2 or x.shape != y.shape:
        raise ValueError(
            f"expected two aligned (batch, dim) tensors of equal shape, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )


def _critic_inputs(
    x: torch.Tensor, y: torch.Tensor, normalize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalise both views when asked (GraphMVP's ``--normalize``)."""
    if normalize:
        return F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    return x, y


class EBMNCE(nn.Module):
    r"""GraphMVP's EBM-NCE: binary noise-contrastive estimation with a dot-product critic.

    .. math::
        f(x, y) = \langle \hat x, \hat y \rangle / \tau, \qquad
        \hat x = x / \lVert x \rVert \ \text{(if normalize)},

        L_{x \to y} = \mathbb{E}_i\Big[-\log \sigma(f(x_i, y_i))
            - \sum_{k=1}^{K} \log\big(1 - \sigma(f(x_i, y_{n_k(i)}))\big)\Big],

        L = \tfrac12 (L_{x \to y} + L_{y \to x}),

    where the :math:`K` = ``num_negatives`` negatives :math:`y_{n_k(i)}` are other molecules of
    the batch, never the positive :math:`i`. As in GraphMVP, the negative term is summed over
    the K negatives (``loss_pos + K * mean(loss_neg)``), so K = 1 gives the expectation form
    :math:`-\mathbb{E}_{pos}\log\sigma - \mathbb{E}_{neg}\log(1-\sigma)`.

    Args:
        temperature: :math:`\tau` (default 0.1; GraphMVP's scripts use 0.1 or 0.2).
        normalize: L2-normalise the representations before the critic (default True, as
            GraphMVP's pre-training scripts pass ``--normalize``).
        num_negatives: K negatives per positive (default 1), must be < batch size.
        negatives: ``shift`` uses the cyclic shifts i+1..i+K of the batch (GraphMVP's
            ``cycle_index``; random because the loader shuffles), ``random`` draws K distinct
            other rows per positive afresh at each call.

    Shapes: x (batch, dim), y (batch, dim) -> scalar loss; parts ``acc`` (fraction of
    positive logits > 0 and negative logits < 0), ``pos_logit``, ``neg_logit``.
    """

    def __init__(
        self,
        temperature: float = 0.1,
        normalize: bool = True,
        num_negatives: int = 1,
        negatives: str = "shift",
    ):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
        if negatives not in ("shift", "random"):
            raise ValueError(f"negatives must be shift or random, got {negatives!r}")
        self.temperature, self.normalize = float(temperature), normalize
        self.num_negatives, self.negatives = num_negatives, negatives

    def negative_index(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """Row index of each positive's K negatives, shape (K, batch); never the positive."""
        k = self.num_negatives
        if batch_size <= k:
            raise ValueError(
                f"EBM-NCE needs more than num_negatives={k} molecules per batch to draw "
                f"negatives from, got batch size {batch_size}"
            )
        rows = torch.arange(batch_size, device=device)
        if self.negatives == "shift":
            offsets = torch.arange(1, k + 1, device=device).unsqueeze(1).expand(k, batch_size)
        else:
            # K distinct offsets in 1..B-1 per row: distinct negatives, never the positive.
            scores = torch.rand(batch_size, batch_size - 1, device=device)
            offsets = scores.argsort(dim=1)[:, :k].T + 1
        return (rows.unsqueeze(0) + offsets) % batch_size

    def _direction(
        self, a: torch.Tensor, b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One direction's loss plus its positive (B,) and negative (K, B) logits."""
        idx = self.negative_index(a.shape[0], a.device)
        pos = (a * b).sum(-1) / self.temperature
        neg = (a.unsqueeze(0) * b[idx]).sum(-1) / self.temperature
        # -log sigma(s) = softplus(-s) and -log(1 - sigma(s)) = softplus(s), both stable.
        loss = F.softplus(-pos).mean() + self.num_negatives * F.softplus(neg).mean()
        return loss, pos, neg

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        """EBM-NCE averaged over the 2D->3D and 3D->2D directions."""
        _check_pair(x, y)
        x, y = _critic_inputs(x, y, self.normalize)
        loss_xy, pos, neg_xy = self._direction(x, y)
        loss_yx, _, neg_yx = self._direction(y, x)
        loss = 0.5 * (loss_xy + loss_yx)
        with torch.no_grad():
            neg = torch.cat([neg_xy.flatten(), neg_yx.flatten()])
            # Per direction (pos>0 + neg<0)/(B + KB), then averaged, as GraphMVP's CL_acc.
            acc = ((pos > 0).sum() + (neg < 0).sum() / 2) / (pos.numel() + neg.numel() / 2)
            parts = {"acc": acc.float(), "pos_logit": pos.mean(), "neg_logit": neg.mean()}
        return loss, parts

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, normalize={self.normalize}, "
            f"num_negatives={self.num_negatives}, negatives={self.negatives}"
        )


class InfoNCE(nn.Module):
    r"""Symmetric InfoNCE over the batch similarity matrix (GraphMVP's ``InfoNCE_dot_prod``).

    .. math::
        S_{ij} = \langle \hat x_i, \hat y_j \rangle / \tau, \qquad
        L = \tfrac12\Big(\mathrm{CE}(S, I) + \mathrm{CE}(S^\top, I)\Big),
        \quad \mathrm{CE}(S, I) = -\tfrac1B \sum_i \log
            \frac{e^{S_{ii}}}{\sum_j e^{S_{ij}}}.

    Args:
        temperature: :math:`\tau` (default 0.1).
        normalize: L2-normalise before the dot product, i.e. cosine similarity (default True).

    Shapes: x (batch, dim), y (batch, dim) -> scalar loss; parts ``acc`` (top-1 retrieval
    accuracy of the aligned partner, both directions averaged).
    """

    def __init__(self, temperature: float = 0.1, normalize: bool = True):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature, self.normalize = float(temperature), normalize

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        """InfoNCE averaged over the x->y (rows) and y->x (columns) directions."""
        _check_pair(x, y)
        x, y = _critic_inputs(x, y, self.normalize)
        logits = x @ y.T / self.temperature
        labels = torch.arange(x.shape[0], device=x.device)
        loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        with torch.no_grad():
            acc_xy = (logits.argmax(1) == labels).float().mean()
            acc_yx = (logits.argmax(0) == labels).float().mean()
        return loss, {"acc": 0.5 * (acc_xy + acc_yx)}

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, normalize={self.normalize}"


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""KL(N(mu, diag exp(logvar)) || N(0, I)), summed over dims and averaged over the batch.

    .. math:: \mathrm{KL} = \mathbb{E}_i\Big[-\tfrac12 \sum_d
        \big(1 + \log\sigma_{id}^2 - \mu_{id}^2 - \sigma_{id}^2\big)\Big]

    Shapes: mu, logvar (batch, latent) -> scalar.
    """
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    r"""GraphMVP's reconstruction criteria, means over the batch.

    ``l2``: :math:`\mathrm{mean}_{i,d} (\hat y_{id} - y_{id})^2` (``nn.MSELoss``; GraphMVP's
    default and the one its scripts use, on raw, unnormalised representations);
    ``l1``: mean absolute error; ``cosine``: :math:`-\mathbb{E}_i \cos(\hat y_i, y_i)`.
    """
    if kind == "l2":
        return F.mse_loss(pred, target)
    if kind == "l1":
        return F.l1_loss(pred, target)
    if kind == "cosine":
        return -F.cosine_similarity(pred, target, dim=1).mean()
    raise ValueError(f"reconstruction loss must be one of {RECON_LOSSES}, got {kind!r}")


class Reconstructor(nn.Module):
    r"""One direction of (variational) representation reconstruction, source -> target.

    Variational (VRR):

    .. math::
        \mu, \log\sigma^2 = W_\mu x, W_\sigma x, \quad
        z = \mu + \sigma \odot \epsilon,\ \epsilon \sim N(0, I), \quad
        L = \ell(\mathrm{dec}(z), \mathrm{sg}(y)) + \beta\, \mathrm{KL}(N(\mu, \sigma^2)
        \,\|\, N(0, I)),

    plain (RR / GraphMVP's ``AutoEncoder``): :math:`L = \ell(\mathrm{dec}(x), \mathrm{sg}(y))`.
    ``dec`` is Linear -> BatchNorm -> ReLU -> Linear, as GraphMVP. ``sg`` (stop-gradient) is
    applied when ``detach_target``. In eval mode the VRR decodes :math:`z = \mu` (no noise) so
    validation losses are deterministic; GraphMVP samples in both modes.

    Shapes: x (batch, in_dim), y (batch, out_dim) -> scalar loss; parts ``recon`` and, when
    variational, ``kl``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        latent_dim: int | None = None,
        variational: bool = True,
        beta: float = 1.0,
        loss: str = "l2",
        detach_target: bool = True,
    ):
        super().__init__()
        if loss not in RECON_LOSSES:
            raise ValueError(f"reconstruction loss must be one of {RECON_LOSSES}, got {loss!r}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        latent_dim = in_dim if latent_dim is None else latent_dim
        self.in_dim, self.out_dim, self.latent_dim = in_dim, out_dim, latent_dim
        self.variational, self.beta, self.loss = variational, float(beta), loss
        self.detach_target = detach_target
        if variational:
            self.fc_mu = nn.Linear(in_dim, latent_dim)
            self.fc_logvar = nn.Linear(in_dim, latent_dim)
        dec_in = latent_dim if variational else in_dim
        self.decoder = nn.Sequential(
            nn.Linear(dec_in, out_dim),
            nn.BatchNorm1d(out_dim),
            nn.ReLU(),
            nn.Linear(out_dim, out_dim),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every layer (PyTorch defaults, as GraphMVP)."""
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters (mu, logvar), each (batch, latent_dim); VRR only."""
        if not self.variational:
            raise RuntimeError("encode() is only defined for the variational reconstructor")
        return self.fc_mu(x), self.fc_logvar(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        """Reconstruct y from x; returns the loss and its parts."""
        if self.detach_target:
            y = y.detach()
        if not self.variational:
            recon = reconstruction_loss(self.decoder(x), y, self.loss)
            return recon, {"recon": recon.detach()}
        mu, logvar = self.encode(x)
        z = mu
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = reconstruction_loss(self.decoder(z), y, self.loss)
        kl = gaussian_kl(mu, logvar)
        return recon + self.beta * kl, {"recon": recon.detach(), "kl": kl.detach()}

    def extra_repr(self) -> str:
        return (
            f"{self.in_dim} -> {self.out_dim}, latent_dim={self.latent_dim}, "
            f"variational={self.variational}, beta={self.beta}, loss={self.loss}, "
            f"detach_target={self.detach_target}"
        )


class VRR(nn.Module):
    r"""Variational representation reconstruction in both directions (GraphMVP's L_G).

    .. math:: L_G = \tfrac12 \big(L_{2D \to 3D}(x, \mathrm{sg}(y))
        + L_{3D \to 2D}(y, \mathrm{sg}(x))\big),

    each direction a :class:`Reconstructor` with its own weights. ``variational=False`` gives
    the plain representation-reconstruction (RR/AE) variant: no sampling, no KL.

    Args:
        dim_2d: width of the 2D representation x.
        dim_3d: width of the 3D representation y.
        latent_dim: width of z (default: the source's width, as GraphMVP).
        variational: VRR (True) or RR (False).
        beta: KL weight (default 1; GraphMVP's scripts use 1 or 2).
        loss: ``l2`` (default, GraphMVP's scripts), ``l1`` or ``cosine``.
        detach_target: stop-gradient on the reconstruction target (default True).

    Shapes: x (batch, dim_2d), y (batch, dim_3d) -> scalar loss; parts ``recon`` and
    ``kl`` (VRR only), each averaged over the directions.
    """

    def __init__(
        self,
        dim_2d: int,
        dim_3d: int,
        latent_dim: int | None = None,
        variational: bool = True,
        beta: float = 1.0,
        loss: str = "l2",
        detach_target: bool = True,
    ):
        super().__init__()
        kw = {"variational": variational, "beta": beta, "loss": loss}
        kw["detach_target"] = detach_target
        self.to_3d = Reconstructor(dim_2d, dim_3d, latent_dim, **kw)
        self.to_2d = Reconstructor(dim_3d, dim_2d, latent_dim, **kw)
        self.variational = variational

    def reset_parameters(self) -> None:
        """Re-initialise both directions."""
        self.to_3d.reset_parameters()
        self.to_2d.reset_parameters()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        """Average of the 2D->3D and 3D->2D reconstruction losses."""
        if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"expected (batch, dim_2d) and (batch, dim_3d) tensors with the same batch, "
                f"got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        loss_a, parts_a = self.to_3d(x, y)
        loss_b, parts_b = self.to_2d(y, x)
        parts = {k: 0.5 * (parts_a[k] + parts_b[k]) for k in parts_a}
        return 0.5 * (loss_a + loss_b), parts


class GraphMVPLoss(nn.Module):
    r"""GraphMVP objective :math:`L = \alpha_1 L_C + \alpha_2 L_G`.

    :math:`L_C` is :class:`EBMNCE` or :class:`InfoNCE`; :math:`L_G` is :class:`VRR`
    (``vrr``), its RR variant (``rr``) or absent (``none``). A term whose weight is 0 is
    left out of the total (as GraphMVP), but still reported in the parts.

    Args:
        dim_2d, dim_3d: representation widths; the contrastive critic needs them equal.
        alpha1, alpha2: weights of L_C and L_G (default 1, 1).
        beta: KL weight of the VRR (default 1).
        contrastive: ``ebm_nce`` (default) or ``infonce``.
        generative: ``vrr`` (default), ``rr`` or ``none``.
        temperature, normalize, num_negatives, negatives: passed to the contrastive loss
            (``num_negatives``/``negatives`` to EBM-NCE only).
        recon_loss: reconstruction criterion of the VRR/RR (default ``l2``).

    Shapes: x (batch, dim_2d), y (batch, dim_3d) -> scalar loss; parts ``loss``,
    ``contrastive``, ``generative`` and the sub-losses' parts prefixed ``contrastive_`` /
    ``generative_``.
    """

    def __init__(
        self,
        dim_2d: int,
        dim_3d: int,
        alpha1: float = 1.0,
        alpha2: float = 1.0,
        beta: float = 1.0,
        contrastive: str = "ebm_nce",
        generative: str = "vrr",
        temperature: float = 0.1,
        normalize: bool = True,
        num_negatives: int = 1,
        negatives: str = "shift",
        recon_loss: str = "l2",
    ):
        super().__init__()
        if contrastive not in CONTRASTIVE:
            raise ValueError(f"contrastive must be one of {CONTRASTIVE}, got {contrastive!r}")
        if generative not in GENERATIVE:
            raise ValueError(f"generative must be one of {GENERATIVE}, got {generative!r}")
        if alpha1 < 0 or alpha2 < 0:
            raise ValueError(f"alpha1 and alpha2 must be >= 0, got {alpha1} and {alpha2}")
        if dim_2d != dim_3d:
            raise ValueError(
                f"the dot-product critic needs equal 2D and 3D widths, got {dim_2d} and "
                f"{dim_3d}; set SchNetEncoder(out_channels={dim_2d})"
            )
        self.alpha1, self.alpha2 = float(alpha1), float(alpha2)
        self.contrastive_name, self.generative_name = contrastive, generative
        self.hparams = {
            "dim_2d": dim_2d,
            "dim_3d": dim_3d,
            "alpha1": self.alpha1,
            "alpha2": self.alpha2,
            "beta": beta,
            "contrastive": contrastive,
            "generative": generative,
            "temperature": temperature,
            "normalize": normalize,
            "num_negatives": num_negatives,
            "negatives": negatives,
            "recon_loss": recon_loss,
        }
        if contrastive == "ebm_nce":
            self.contrastive: nn.Module = EBMNCE(temperature, normalize, num_negatives, negatives)
        else:
            self.contrastive = InfoNCE(temperature, normalize)
        self.generative: nn.Module | None = None
        if generative != "none":
            self.generative = VRR(
                dim_2d, dim_3d, variational=generative == "vrr", beta=beta, loss=recon_loss
            )

    def reset_parameters(self) -> None:
        """Re-initialise the VRR/RR networks (the contrastive losses have no parameters)."""
        if self.generative is not None:
            self.generative.reset_parameters()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Parts]:
        """Total loss and its parts for logging (detached)."""
        l_c, parts_c = self.contrastive(x, y)
        if self.generative is not None:
            l_g, parts_g = self.generative(x, y)
        else:
            l_g, parts_g = x.new_zeros(()), {}
        total = x.new_zeros(())
        # Skipping a zero-weight term (rather than multiplying by 0) keeps a NaN there from
        # poisoning the total, as GraphMVP's `if args.alpha_1 > 0`.
        if self.alpha1 > 0:
            total = total + self.alpha1 * l_c
        if self.alpha2 > 0:
            total = total + self.alpha2 * l_g
        parts = {"loss": total.detach(), "contrastive": l_c.detach(), "generative": l_g.detach()}
        parts.update({f"contrastive_{k}": v for k, v in parts_c.items()})
        parts.update({f"generative_{k}": v for k, v in parts_g.items()})
        return total, parts

    def extra_repr(self) -> str:
        return (
            f"alpha1={self.alpha1}, alpha2={self.alpha2}, contrastive={self.contrastive_name}, "
            f"generative={self.generative_name}"
        )
