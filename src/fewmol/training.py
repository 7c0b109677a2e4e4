"""What every fewmol training run shares: the Lightning Trainer and hardware provenance."""

from __future__ import annotations

import contextlib
import logging
import platform
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fewmol.errors import InvalidInputError

if TYPE_CHECKING:  # Lightning takes seconds to import; make_trainer imports it when called
    import lightning as L


def hardware() -> str:
    """Short description of the machine (for provenance)."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()} {torch.get_num_threads()} torch threads, {gpu}"


#: set by the CLI: Lightning's info banners (tips, "GPU available", "max_epochs reached") stay
#: out of users' terminals; library callers keep Lightning's own logging
QUIET_LIGHTNING = False
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")


#: Lightning precisions a run may ask for. bf16-mixed autocasts matrix products to bfloat16
#: (weights and optimiser stay float32): ~1.6x faster fine-tuning on CPUs with AVX512-BF16 or AMX
#: and on recent GPUs; 16-mixed is float16 with loss scaling (for GPUs).
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def check_precision(precision: str) -> str:
    """The precision if fewmol supports it, else a user error naming the choices."""
    if precision not in PRECISIONS:
        raise InvalidInputError(
            f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    return precision


def inference_autocast(precision: str, device: str = "cpu") -> Any:
    """The autocast context a precision implies for inference (a no-op for 32-true)."""
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(
        check_precision(precision)
    )
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device, dtype=dtype)


def make_trainer(cfg: Any, max_epochs: int, callbacks: list[L.Callback], **extra: Any) -> L.Trainer:
    """A Lightning Trainer from a run config's accelerator/devices/strategy/num_nodes/precision.

    Lightning's own logger and checkpoints are off: runs write safetensors checkpoints and CSV
    logs through their callbacks. Bad accelerator/devices/strategy flags become user errors.
    """
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    if QUIET_LIGHTNING:  # after the import: importing Lightning sets its loggers to INFO
        for name in LIGHTNING_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)

    kwargs = {
        "max_epochs": max_epochs,
        "accelerator": cfg.accelerator,
        "devices": cfg.devices,
        "strategy": cfg.strategy,
        "num_nodes": cfg.num_nodes,
        "precision": check_precision(cfg.precision),
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "enable_progress_bar": cfg.progress,
        "callbacks": callbacks,
        **extra,
    }
    try:
        return L.Trainer(**kwargs)
    except (MisconfigurationException, ValueError, RuntimeError) as e:
        raise InvalidInputError(
            f"cannot set up training with accelerator={cfg.accelerator!r}, "
            f"devices={cfg.devices!r}, strategy={cfg.strategy!r}, "
            f"precision={kwargs['precision']!r}: {e}"
        ) from None


def make_adam(groups: list[dict], lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam over parameter groups, fused into one kernel where torch has it (CPU, CUDA).

    The per-tensor loop of the default implementation took ~7 % of a GIN fine-tuning step on one
    CPU thread (~7 ms against ~2 ms fused: benchmarks/results/speed.md).
    """
    params = [p for g in groups for p in g["params"]]
    fused = bool(params) and all(
        p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params
    )
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, fused=fused or None)


def adam_with_encoder_lr(
    model: torch.nn.Module,
    encoder: torch.nn.Module,
    lr: float,
    encoder_lr: float | None,
    weight_decay: float,
    state: dict | None = None,
) -> torch.optim.Adam:
    """Adam with the encoder in its own parameter group (``encoder_lr``, default ``lr``).

    ``state`` (an optimiser state_dict restored on --resume) is loaded when given.
    """
    enc = list(encoder.parameters())
    enc_ids = {id(p) for p in enc}
    rest = [p for p in model.parameters() if id(p) not in enc_ids]
    groups = [
        {"params": enc, "lr": encoder_lr if encoder_lr is not None else lr},
        {"params": rest, "lr": lr},
    ]
    opt = make_adam(groups, lr, weight_decay)
    if state is not None:
        opt.load_state_dict(state)
    return opt


def gather_ranks(module: L.LightningModule, a: np.ndarray) -> np.ndarray:
    """Concatenate an array over DDP ranks (each rank holds an equal, padded shard)."""
    if module.trainer.world_size <= 1:
        return a
    g = module.all_gather(torch.from_numpy(np.ascontiguousarray(a)).to(module.device))
    return g.reshape(-1, *a.shape[1:]).cpu().numpy()


def gather_columns(
    module: L.LightningModule, buf: list[tuple[np.ndarray, ...]]
) -> tuple[np.ndarray, ...]:
    """Per-batch tuples (e.g. labels, predictions) -> one array per column over all ranks."""
    return tuple(
        gather_ranks(module, np.concatenate([b[j] for b in buf])) for j in range(len(buf[0]))
    )


def gathered_mean_loss(module: L.LightningModule, rows: list[tuple[float, int]]) -> float:
    """Mean of (batch loss, batch size) rows over all ranks, weighted by batch size."""
    a = gather_ranks(module, np.array(rows, dtype=np.float64))
    return float((a[:, 0] * a[:, 1]).sum() / a[:, 1].sum())


class RunCounters:
    """What a resumable run keeps in its checkpoint beside the weights: epochs done, the per-epoch
    log, the best-validation record (runs that select one) and the wall time so far."""

    epochs_done: int
    log_rows: list
    wall_before: float  # seconds spent by earlier processes of this run
    started: float  # time.time() when this process began the run

    def counters(self) -> dict[str, Any]:
        """The state to save (JSON-ready)."""
        state: dict[str, Any] = {"epochs_done": self.epochs_done, "log_rows": self.log_rows}
        if getattr(self, "best", None) is not None:
            state["best"] = self.best  # type: ignore[attr-defined]
        state["wall_s"] = self.wall_before + time.time() - self.started
        return state

    def restore_counters(self, state: dict[str, Any]) -> None:
        """Take the counters back from a saved state."""
        self.epochs_done = int(state["epochs_done"])
        self.log_rows = list(state["log_rows"])
        if "best" in state:
            self.best = state["best"]
        self.wall_before = float(state.get("wall_s", 0.0))
