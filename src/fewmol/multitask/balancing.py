"""Task weighting for multi-task losses with missing labels: MTL, UW, GradNorm, DWA, LBTW.

Every method turns the per-task losses L_t of a batch (mean BCE over that task's observed
labels) into one loss Σ_t w_t L_t / n, where n is the number of tasks with a label in the batch
(the per-task averaging of SGNN-EBM's baselines). They differ in w_t:

* ``mtl``: w_t = 1.
* ``uw`` (Kendall et al. 2018): learned s_t = log σ_t; the loss is Σ_t (e^{−2 s_t} L_t + s_t) / n,
  so w_t = e^{−2 s_t} tends to 1 / (2 L_t): tasks with a lower loss get more weight.
* ``gradnorm`` (Chen et al. 2018): learned w_t (renormalised to sum T) chosen so that the weighted
  gradient norms G_t = w_t ||∇_W L_t|| approach their mean times r_t^α, r_t the task's relative
  inverse training rate (L_t / L_t(0), over its mean). W is each task's row of the output layer,
  so all G_t come from one backward pass (as in SGNN-EBM's baseline code).
* ``dwa`` (Liu et al. 2019): w_t = T softmax_t(r_t / temperature) with r_t = L̄_t(e−1) / L̄_t(e−2),
  the ratio of the task's mean training loss in the last two epochs (w = 1 for the first two).
* ``lbtw`` (Liu et al. 2019, loss-balanced task weighting): w_t = (L_t / L_t(0))^α, detached.

L_t(0) is the task's loss the first time it is seen in training (a per-task buffer, saved in
checkpoints, so a resumed run continues with the same reference).
"""

from __future__ import annotations

import torch
from torch import nn

BALANCERS = ("mtl", "uw", "gradnorm", "dwa", "lbtw")


def per_task_bce(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean BCE-with-logits per task over observed labels (NaN = missing).

    Shapes: logits, y (B, T) -> (losses (T,), present (T,) bool); a task without labels in the
    batch has loss 0 and present False.
    """
    mask = ~torch.isnan(y)
    target = torch.where(mask, y, torch.zeros_like(y))
    per = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    counts = mask.sum(0)
    losses = (per * mask).sum(0) / counts.clamp_min(1)
    return losses, counts > 0


def _weighted_mean(w: torch.Tensor, losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    n = present.sum()
    if not bool(n):
        return losses.sum() * 0.0
    return (w * losses * present).sum() / n


class Balancer(nn.Module):
    """Equal weights (plain MTL); the base class of the weighting methods."""

    name = "mtl"
    needs_head_grad = False

    def __init__(self, num_tasks: int):
        super().__init__()
        self.num_tasks = num_tasks

    def weights(self) -> torch.Tensor:
        """Current task weights (T,), detached."""
        return torch.ones(self.num_tasks)

    def loss(self, losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """The scalar to minimise from per-task losses (T,) and the present mask (T,)."""
        return _weighted_mean(self.weights().to(losses), losses, present)

    def after_backward(
        self, losses: torch.Tensor, present: torch.Tensor, head_grad: torch.Tensor | None
    ) -> None:
        """Hook between backward and the optimiser step (GradNorm sets its weights' gradient)."""

    def after_step(self) -> None:
        """Hook after the optimiser step (GradNorm renormalises)."""

    def end_epoch(self, epoch_losses: torch.Tensor) -> None:
        """Hook with each task's mean training loss over the epoch (NaN if unseen; DWA)."""


class _InitialLoss(Balancer):
    """Keeps L_t(0), each task's loss the first time it is seen."""

    def __init__(self, num_tasks: int):
        super().__init__(num_tasks)
        self.register_buffer("initial", torch.full((num_tasks,), float("nan")))

    def _note_initial(self, losses: torch.Tensor, present: torch.Tensor) -> None:
        new = present & torch.isnan(self.initial)
        if bool(new.any()):
            self.initial[new] = losses.detach()[new].to(self.initial)

    def _loss_ratio(self, losses: torch.Tensor) -> torch.Tensor:
        """L_t / L_t(0), 1 where undefined."""
        r = losses.detach() / self.initial.to(losses).clamp_min(1e-12)
        return torch.where(torch.isfinite(r) & (r > 0), r, torch.ones_like(r))


class UncertaintyWeighting(Balancer):
    """Homoscedastic uncertainty weighting (UW): learned log σ_t per task."""

    name = "uw"

    def __init__(self, num_tasks: int):
        super().__init__(num_tasks)
        self.log_sigma = nn.Parameter(torch.zeros(num_tasks))

    def weights(self) -> torch.Tensor:
        """w_t = 1 / σ_t² = e^{−2 s_t}."""
        return torch.exp(-2.0 * self.log_sigma.detach())

    def loss(self, losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Σ_t (e^{−2 s_t} L_t + s_t) / n over present tasks (gradient reaches s_t)."""
        n = present.sum()
        if not bool(n):
            return losses.sum() * 0.0 + self.log_sigma.sum() * 0.0
        s = self.log_sigma.to(losses)
        return ((torch.exp(-2.0 * s) * losses + s) * present).sum() / n


class GradNorm(_InitialLoss):
    """GradNorm: learned weights that balance per-task gradient norms at the output layer."""

    name = "gradnorm"
    needs_head_grad = True

    def __init__(self, num_tasks: int, alpha: float = 0.1):
        super().__init__(num_tasks)
        self.alpha = alpha
        self.task_weights = nn.Parameter(torch.ones(num_tasks))
        self.last_grad_norms = torch.full((num_tasks,), float("nan"))  # G_t, for inspection

    def weights(self) -> torch.Tensor:
        """The learned w_t (sum T)."""
        return self.task_weights.detach()

    def loss(self, losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Σ w_t L_t / n with w detached: w is moved only by the GradNorm objective."""
        self._note_initial(losses, present)
        return _weighted_mean(self.weights().to(losses), losses, present)

    def after_backward(
        self, losses: torch.Tensor, present: torch.Tensor, head_grad: torch.Tensor | None
    ) -> None:
        """Set ∂L_grad/∂w for L_grad = mean_t |G_t − mean(G) r_t^α| (present tasks only).

        ``head_grad`` (T, d) is the gradient of the weighted loss w.r.t. the output layer's
        weight, whose row t is w_t / n ∇L_t; so ||∇L_t|| = ||row t|| n / w_t.
        """
        if head_grad is None:
            raise ValueError("GradNorm needs the output layer's gradient")
        w = self.task_weights.detach()
        n = present.sum().clamp_min(1).to(w)
        raw = head_grad.detach().norm(dim=1).to(w) * n / w.clamp_min(1e-12)  # ||∇L_t||
        g = w * raw
        p = present.to(w.device)
        if not bool(p.any()):
            self.task_weights.grad = torch.zeros_like(w)
            return
        ratio = self._loss_ratio(losses).to(w)
        inv_rate = ratio / ratio[p].mean()
        target = g[p].mean() * inv_rate.pow(self.alpha)
        grad = torch.sign(g - target) * raw * p / p.sum()
        self.task_weights.grad = grad
        self.last_grad_norms = g.cpu()

    def after_step(self) -> None:
        """Keep weights positive and summing to T."""
        with torch.no_grad():
            w = self.task_weights.clamp_(min=1e-3)
            w.mul_(self.num_tasks / w.sum())


class DynamicWeightAverage(Balancer):
    """DWA: weights from the ratio of each task's epoch-mean loss in the last two epochs."""

    name = "dwa"

    def __init__(self, num_tasks: int, temperature: float = 2.0):
        super().__init__(num_tasks)
        self.temperature = temperature
        self.register_buffer("prev1", torch.full((num_tasks,), float("nan")))
        self.register_buffer("prev2", torch.full((num_tasks,), float("nan")))
        self.register_buffer("current", torch.ones(num_tasks))

    def weights(self) -> torch.Tensor:
        """Weights used in this epoch (sum T)."""
        return self.current.detach()

    def end_epoch(self, epoch_losses: torch.Tensor) -> None:
        """Shift the loss history and compute next epoch's weights."""
        self.prev2.copy_(self.prev1)
        self.prev1.copy_(epoch_losses.to(self.prev1))
        r = self.prev1 / self.prev2
        if bool(torch.isnan(self.prev2).all()):
            self.current.fill_(1.0)
            return
        # A task missing from either epoch counts as "unchanged" (ratio 1).
        r = torch.where(torch.isfinite(r), r, torch.ones_like(r))
        self.current.copy_(self.num_tasks * torch.softmax(r / self.temperature, dim=0))


class LossBalancedTaskWeighting(_InitialLoss):
    """LBTW: w_t = (L_t / L_t(0))^α per batch, detached."""

    name = "lbtw"

    def __init__(self, num_tasks: int, alpha: float = 0.1):
        super().__init__(num_tasks)
        self.alpha = alpha
        self.register_buffer("current", torch.ones(num_tasks), persistent=False)

    def weights(self) -> torch.Tensor:
        """Weights of the last batch."""
        return self.current.detach()

    def loss(self, losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Σ (L_t / L_t(0))^α L_t / n."""
        self._note_initial(losses, present)
        w = self._loss_ratio(losses).pow(self.alpha)
        self.current = torch.where(present, w, torch.ones_like(w)).detach()
        return _weighted_mean(w, losses, present)


def make_balancer(
    name: str, num_tasks: int, alpha: float = 0.1, temperature: float = 2.0
) -> Balancer:
    """A balancer by method name (``mtl`` and ``stl`` use equal weights)."""
    if name in ("mtl", "stl", "sgnn", "sgnn-ebm"):
        return Balancer(num_tasks)
    if name == "uw":
        return UncertaintyWeighting(num_tasks)
    if name == "gradnorm":
        return GradNorm(num_tasks, alpha)
    if name == "dwa":
        return DynamicWeightAverage(num_tasks, temperature)
    if name == "lbtw":
        return LossBalancedTaskWeighting(num_tasks, alpha)
    raise ValueError(f"unknown balancing method {name!r}; expected one of {BALANCERS}")
