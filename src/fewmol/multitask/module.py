"""LightningModule for every multi-task method: masked per-task losses, NCE, Gibbs evaluation.

One module trains all eight methods of ``fewmol multitask``:

* heads (``mtl``, ``stl`` per task, ``uw``, ``gradnorm``, ``dwa``, ``lbtw``): per-task masked
  BCE combined by a :class:`~fewmol.multitask.balancing.Balancer`; predictions are sigmoids;
* ``sgnn``: the structured head's logits with the plain per-task mean BCE;
* ``sgnn-ebm``: NCE on the energy (plus, with adaptive or Gibbs noise, the BCE of the SGNN
  logits that define or steer the noise); predictions are Gibbs marginals.

Optimisation is manual (one Adam step per batch) so GradNorm can set its weights' gradient
between backward and step. Everything trained and checkpointed lives in ``train_state``
(network + balancer); only the network goes into ``model.safetensors``.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import nn

from fewmol.data.collate import GraphBatch
from fewmol.finetune.metrics import evaluate
from fewmol.multitask.balancing import Balancer, per_task_bce
from fewmol.multitask.model import MultitaskNet
from fewmol.multitask.sgnn_ebm import (
    NOISES,
    GibbsSampler,
    gibbs_noise,
    mix_uniform,
    nce_loss,
)
from fewmol.training import adam_with_encoder_lr, gather_columns, gather_ranks, gathered_mean_loss


class MultitaskModule(L.LightningModule):
    """Trains a MultitaskNet with one of the methods; collects per-epoch valid/test metrics."""

    def __init__(
        self,
        net: MultitaskNet,
        method: str,
        balancer: Balancer | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        encoder_lr: float | None = None,
        *,
        lam: float = 0.1,
        noise: str = "adaptive",
        noise_mix: float = 0.1,
        noise_prob: np.ndarray | None = None,
        nce_samples: int = 1,
        gibbs_sweeps: int = 20,
        gibbs_chains: int = 1,
        eval_seed: int = 0,
        noise_net: MultitaskNet | None = None,
        tilt: bool = False,
        noise_sweeps: int = 2,
        fill_missing: bool = False,
    ):
        super().__init__()
        if method == "sgnn-ebm" and noise not in NOISES:
            raise ValueError(f"noise must be one of {', '.join(NOISES)}, got {noise!r}")
        for name, n in (("gibbs_sweeps", gibbs_sweeps), ("gibbs_chains", gibbs_chains),
                        ("noise_sweeps", noise_sweeps), ("nce_samples", nce_samples)):  # fmt: skip
            if not isinstance(n, int) or n < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
        lam = float(lam)
        if tilt and noise != "adaptive":
            # predictions need the noise of every new molecule: only the adaptive one (the
            # same network's SGNN logits) travels with the model dir
            raise ValueError("the tilted energy needs the adaptive noise")
        self.automatic_optimization = False
        self.train_state = nn.ModuleDict(
            {"net": net, "balancer": balancer or Balancer(net.num_tasks)}
        )
        self.method = method
        self.lr, self.weight_decay, self.encoder_lr = lr, weight_decay, encoder_lr
        self.lam, self.noise, self.noise_mix, self.nce_samples = lam, noise, noise_mix, nce_samples
        self.gibbs_sweeps, self.gibbs_chains, self.eval_seed = gibbs_sweeps, gibbs_chains, eval_seed
        self.tilt = tilt and method == "sgnn-ebm"
        self.noise_sweeps, self.fill_missing = noise_sweeps, fill_missing
        freq = np.full(net.num_tasks, 0.5, np.float32) if noise_prob is None else noise_prob
        self.register_buffer("noise_freq", torch.as_tensor(freq, dtype=torch.float32), False)
        self.sampler = GibbsSampler(net.head.pairs, net.num_tasks) if self.ebm else None
        # Fixed noise from a trained model (the paper's pre-trained SGNN): frozen, in eval mode,
        # and kept in a tuple so it is no submodule (not in state_dict, never trained).
        self._noise_net: tuple[MultitaskNet, ...] = ()
        if noise_net is not None:
            for p in noise_net.parameters():
                p.requires_grad_(False)
            self._noise_net = (noise_net.eval(),)
        self.optimizer_state: dict | None = None  # restored on --resume
        self._eval_gen: torch.Generator | None = None
        self._reset_epoch()
        self._eval_buf: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.epoch_metrics: dict[str, float] = {}

    @property
    def net(self) -> MultitaskNet:
        """The network (saved as model.safetensors)."""
        return self.train_state["net"]

    @property
    def balancer(self) -> Balancer:
        """The task weighting (equal weights for sgnn / sgnn-ebm / stl / mtl)."""
        return self.train_state["balancer"]

    @property
    def ebm(self) -> bool:
        """True for SGNN-EBM (NCE training, Gibbs inference)."""
        return self.method == "sgnn-ebm"

    def _reset_epoch(self) -> None:
        t = self.net.num_tasks
        self._loss_sum = torch.zeros(t, dtype=torch.float64)
        self._loss_n = torch.zeros(t, dtype=torch.float64)
        self._parts: dict[str, list[tuple[float, int]]] = {}
        self._train_buf: list[tuple[np.ndarray, np.ndarray]] = []

    # ------------------------------------------------------------------ predictions
    @torch.no_grad()
    def predict_proba(
        self,
        batch: GraphBatch,
        evidence: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """P(y_t = 1 | x) per task (B, T): Gibbs marginals (sgnn-ebm) or sigmoids.

        ``evidence`` (B, T) holds known labels (0/1, NaN unknown) that the Gibbs sampler
        clamps; the independent-head methods ignore it.
        """
        out = self.net(batch, potentials=self.ebm)
        if not self.ebm:
            return torch.sigmoid(out.logits)
        prob = torch.sigmoid(out.logits)
        init = prob if self.noise != "fixed" else None
        # the tilt is the logit of the noise the energy was trained against (tilted model), or
        # of the SGNN that steered the Gibbs noise (that chain, run longer)
        tilted = self.tilt or self.noise == "gibbs"
        tilt = torch.logit(mix_uniform(prob, self.noise_mix)) if tilted else None
        return self.sampler.marginals(
            out.node_pot,
            out.edge_pot,
            self.lam,
            self.gibbs_sweeps,
            self.gibbs_chains,
            evidence=evidence,
            init=init,
            generator=generator,
            tilt=tilt,
        )

    # ------------------------------------------------------------------ training
    @torch.no_grad()
    def fixed_noise(self, batch: GraphBatch) -> torch.Tensor:
        """P(y_t = 1) of the fixed noise (B, T): the frozen noise model's sigmoids, or the
        training label frequencies when there is none."""
        if not self._noise_net:
            return self.noise_freq.expand(batch.num_graphs, -1)
        net = self._noise_net[0]
        if next(net.parameters()).device != self.noise_freq.device:
            net.to(self.noise_freq.device)
        return torch.sigmoid(net(batch, potentials=False).logits.float())

    def _loss(self, batch: GraphBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """(loss, per-task BCE (T,), present (T,), loss parts to log)."""
        y = batch.y
        out = self.net(batch, potentials=self.ebm)
        losses, present = per_task_bce(out.logits, y)
        if self.ebm:
            if self.noise != "fixed":
                bce = Balancer(self.net.num_tasks).loss(losses, present)
                prob = torch.sigmoid(out.logits).detach()
            else:
                bce = out.logits.sum() * 0.0  # the logits are unused with a fixed noise
                prob = self.fixed_noise(batch).to(out.logits.dtype)
            q = mix_uniform(prob, self.noise_mix)
            if self.noise == "gibbs":
                gibbs = gibbs_noise(
                    self.sampler, out.node_pot, out.edge_pot, q.float(), self.lam, self.noise_sweeps
                )
                q = mix_uniform(gibbs, self.noise_mix).to(q.dtype)
            nce = nce_loss(
                out.node_pot,
                out.edge_pot,
                self.net.head.pairs,
                y,
                q,
                self.lam,
                self.nce_samples,
                tilted=self.tilt,
                fill_missing=self.fill_missing,
            )
            parts = {"nce": float(nce.detach()), "bce": float(bce.detach())}
            return nce + bce, losses, present, parts
        loss = self.balancer.loss(losses, present)
        if not self.net.structured:
            self._train_buf.append(
                (y.detach().cpu().numpy(), torch.sigmoid(out.logits.detach()).cpu().numpy())
            )
        return loss, losses, present, {}

    def training_step(self, batch: GraphBatch, batch_idx: int) -> torch.Tensor:
        """One manual Adam step on the method's loss."""
        opt = self.optimizers()
        loss, losses, present, parts = self._loss(batch)
        opt.zero_grad()
        self.manual_backward(loss)
        if self.balancer.needs_head_grad:
            head = self.net.head.linear.weight
            grad = head.grad if head.grad is not None else torch.zeros_like(head)
            self.balancer.after_backward(losses.detach(), present, grad)
            g = self.balancer.task_weights.grad
            if g is not None and self.trainer.world_size > 1:
                self.balancer.task_weights.grad = self.trainer.strategy.reduce(g, "mean")
        opt.step()
        self.balancer.after_step()
        n = batch.num_graphs
        self._loss_sum += (losses.detach() * present).cpu().double()
        self._loss_n += present.cpu().double()
        for k, v in {"loss": float(loss.detach()), **parts}.items():
            self._parts.setdefault(k, []).append((v, n))
        self.log("train_loss", loss.detach(), batch_size=n, prog_bar=True)
        return loss.detach()

    # ------------------------------------------------------------------ evaluation
    def on_validation_epoch_start(self) -> None:
        """A fixed-seed generator: evaluation is a deterministic function of the weights."""
        self._eval_gen = torch.Generator(device=self.device).manual_seed(self.eval_seed)

    def validation_step(self, batch: GraphBatch, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Collect predictions of the valid (0) and test (1) loaders."""
        prob = self.predict_proba(batch, generator=self._eval_gen)
        self._eval_buf.setdefault(dataloader_idx, []).append(
            (batch.y.cpu().numpy(), prob.cpu().numpy())
        )

    def on_validation_epoch_end(self) -> None:
        """Score valid and test into ``epoch_metrics`` (ROC-AUC over tasks with both classes)."""
        for k, part in ((0, "valid"), (1, "test")):
            buf = self._eval_buf.get(k)
            if not buf:
                continue
            y, p = gather_columns(self, buf)
            for name, v in evaluate("classification", y, p).items():
                self.epoch_metrics[f"{part}_{name}"] = v
        self._eval_buf = {}

    def finish_train_epoch(self) -> dict[str, float]:
        """Train losses/metrics of the epoch; feeds each task's mean loss to the balancer.

        Under DDP every rank must call this (it gathers across ranks).
        """
        out: dict[str, float] = {}
        for k, vals in self._parts.items():
            out[f"train_{k}"] = gathered_mean_loss(self, vals)
        if self._train_buf:
            y, p = gather_columns(self, self._train_buf)
            for name, v in evaluate("classification", y, p).items():
                out[f"train_{name}"] = v
        s = gather_ranks(self, self._loss_sum.numpy()[None]).sum(0)
        n = gather_ranks(self, self._loss_n.numpy()[None]).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        self.balancer.end_epoch(torch.as_tensor(mean, dtype=torch.float32))
        if self.balancer.name != "mtl":
            w = self.balancer.weights().float()
            out["weight_min"], out["weight_max"] = float(w.min()), float(w.max())
        self._reset_epoch()
        return out

    # ------------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam; the encoder may get its own learning rate; balancer parameters train too."""
        opt = adam_with_encoder_lr(
            self.train_state,
            self.net.encoder,
            self.lr,
            self.encoder_lr,
            self.weight_decay,
            self.optimizer_state,
        )
        self.optimizer_state = None
        return opt
