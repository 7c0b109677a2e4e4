"""One pre-training run, end to end: build the modules, train with Lightning, write the dir.

The out dir is an encoder dir (``fewmol finetune --init DIR`` loads it) plus the run's record:

* ``config.json``: what :func:`~fewmol.io.modeldir.save_encoder` writes (kind ``encoder``, GIN
  hyper-parameters, featuriser, git commit) plus ``method``, every pre-training setting
  (``pretraining``), the data description (molecule and conformer counts, exclusions, cache
  keys), hardware, epochs done, wall time and throughput;
* ``encoder.safetensors``: the GIN weights after the last finished epoch;
* ``pretrain_log.csv``: one row per epoch: mean of every loss part, molecules, seconds, mol/s;
* ``checkpoints/last.safetensors``: all weights (GIN, SchNet, heads), optimiser and RNG state,
  written after every epoch and every ``checkpoint_every_s`` seconds within one (then with the
  epoch's loss sums and random states so far), so ``resume=True`` continues where it stopped
  with the same shuffling and masks;
* ``loss_curve.png``, and ``excluded.csv`` (molecules without usable conformers).
"""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch

from fewmol import __version__
from fewmol.chem.motifs import motif_source
from fewmol.data.store import motif_labels_cached
from fewmol.errors import InvalidInputError
from fewmol.io.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    load_training_state,
    read_json,
    save_training_state,
    write_json,
    write_text,
)
from fewmol.io.modeldir import build_encoder, encoder_hparams, git_commit, save_encoder
from fewmol.models.schnet import SchNetEncoder
from fewmol.pretrain.config import PretrainConfig  # re-exported: they lived here
from fewmol.pretrain.data import (
    METHODS_3D,
    PretrainData,
)
from fewmol.pretrain.datamodule import PretrainDataModule
from fewmol.pretrain.losses import GraphMVPLoss
from fewmol.pretrain.methods import METHODS
from fewmol.pretrain.methods.contextual import build_context_vocab
from fewmol.pretrain.module import GraphMVPModule, Pretrain2DModule, PretrainModule
from fewmol.training import RunCounters, hardware, make_trainer

# settings that may change between a run and its resume
_RESUMABLE = {
    "epochs",
    "progress",
    "workers",
    "accelerator",
    "devices",
    "strategy",
    "num_nodes",
    "precision",
    "checkpoint_every_s",
}


def build_method_2d(
    cfg: PretrainConfig, data: PretrainData | None = None
) -> torch.nn.Module | None:
    """The 2D method module of the run (alone or inside GraphMVP-G / -C), or None.

    G-Contextual builds its context vocabulary from ``data`` (the pre-training molecules).
    """
    name = cfg.method_2d
    if name is None:
        return None
    common: dict[str, Any] = {"featurizer": cfg.featurizer, "dim": cfg.dim}
    if name == "attrmask":
        return METHODS[name](**common, mask_ratio=cfg.attrmask_ratio)
    if name == "contextpred":
        return METHODS[name](
            **common, num_layers=cfg.num_layers, logit_scale=cfg.contextpred_logit_scale
        )
    if name == "graphcl":
        return METHODS[name](**common, aug_strength=cfg.aug_strength)
    if name == "joao":
        return METHODS[name](**common, aug_strength=cfg.aug_strength, gamma=cfg.joao_gamma)
    if name == "g-motif":
        return METHODS[name](dim=cfg.dim)
    if name == "g-contextual":
        if data is None:
            raise ValueError("g-contextual builds its vocabulary from the data: pass data")
        return METHODS[name](**common, vocab=build_context_vocab(data.graphs, cfg.featurizer))
    return METHODS[name](**common)


def prepare_data(cfg: PretrainConfig, data: PretrainData) -> PretrainData:
    """Attach what the method trains on besides the graphs (G-Motif: motif labels, cached).

    Idempotent; returns ``data``.
    """
    if cfg.method_2d == "g-motif" and data.graph_labels is None:
        labels = motif_labels_cached(data.smiles, workers=max(cfg.workers, 1))
        data.graph_labels = labels
        data.info["motif_labels"] = {
            "source": motif_source(),
            "n_labels": int(labels.shape[1]),
            "positive_rate": round(float(labels.mean()), 4) if labels.size else 0.0,
        }
    return data


def build_module(cfg: PretrainConfig, data: PretrainData | None = None) -> PretrainModule:
    """A fresh (randomly initialised) LightningModule for the configured method.

    ``data`` is needed by methods with data-derived parts (G-Contextual's vocabulary).
    """
    encoder = build_encoder(
        encoder_hparams(cfg.featurizer, cfg.num_layers, cfg.dim, cfg.dropout, cfg.jk)
    )
    method = build_method_2d(cfg, data)
    if cfg.method not in METHODS_3D:
        return Pretrain2DModule(encoder, method, cfg.lr, cfg.weight_decay, cfg.seed)
    encoder_3d = SchNetEncoder(
        hidden_channels=cfg.schnet_hidden,
        num_filters=cfg.schnet_filters,
        num_interactions=cfg.schnet_interactions,
        num_gaussians=cfg.schnet_gaussians,
        cutoff=cfg.cutoff,
        max_neighbors=cfg.max_neighbors,
        readout="mean",
        out_channels=encoder.out_dim,
    )
    loss = GraphMVPLoss(
        encoder.out_dim,
        encoder.out_dim,
        alpha1=cfg.alpha1,
        alpha2=cfg.alpha2,
        beta=cfg.beta,
        contrastive=cfg.contrastive,
        generative=cfg.generative,
        temperature=cfg.temperature,
    )
    return GraphMVPModule(
        encoder,
        encoder_3d,
        loss,
        method,
        alpha3=cfg.alpha3,
        mask_ratio=cfg.mask_ratio,
        mask_mode=cfg.mask_mode,
        featurizer=cfg.featurizer,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        schnet_lr_scale=cfg.schnet_lr_scale,
    )


def module_hparams(module: PretrainModule) -> dict[str, Any]:
    """Hyper-parameters of every part of the module, as built (for config.json)."""
    out: dict[str, Any] = {"encoder": module.encoder.hparams}
    method = getattr(module, "method", None)
    if method is not None:
        out["method_2d"] = {"name": method.name, **method.hparams}
    if isinstance(module, GraphMVPModule):
        out["encoder_3d"] = module.encoder_3d.hparams
        out["loss"] = module.loss_fn.hparams
        out["param_group_lrs"] = [g["lr"] for g in module.param_groups() if g["params"]]
    return out


class _Unaliased:
    """A module's state dict with each shared tensor listed once, for safetensors.

    PyG's SchNet ``InteractionBlock`` shares its filter MLP between ``mlp`` and ``conv.nn``;
    safetensors refuses tensors that share memory. Saving keeps the first name of each tensor,
    loading fills the aliases back in, so the checkpoint round-trips strictly.
    """

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.aliases: dict[str, str] = {}
        first: dict[tuple, str] = {}
        for name, t in module.state_dict().items():
            if t.numel() == 0:
                continue
            where = (t.untyped_storage().data_ptr(), t.storage_offset(), t.shape, t.stride())
            if where in first:
                self.aliases[name] = first[where]
            else:
                first[where] = name

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The module's state dict without the aliased names."""
        return {k: v for k, v in self.module.state_dict().items() if k not in self.aliases}

    def load_state_dict(self, state: dict[str, torch.Tensor], strict: bool = True) -> Any:
        """Load a state dict saved by :meth:`state_dict` (aliases restored from their source)."""
        full = dict(state)
        for alias, source in self.aliases.items():
            if source in state:
                full[alias] = state[source]
        return self.module.load_state_dict(full, strict=strict)


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def _map_rng_states(progress: dict[str, Any], fn: Callable[[Any], Any]) -> dict[str, Any]:
    """``progress`` with ``fn`` applied to every per-rank RNG state (None stays None)."""
    keys = ("generators", "torch_rngs", "cuda_rngs")
    return {**progress, **{k: [None if g is None else fn(g) for g in progress[k]] for k in keys}}


# Under DDP, ranks agree every this many steps on whether a mid-epoch checkpoint is due (one
# small collective): each rank's clock alone could make them disagree and deadlock the gather.
_SYNC_EVERY = 16


class _Recorder(L.Callback):
    """After each epoch: log row, encoder dir, resumable checkpoint (rank 0 writes); within an
    epoch, a resumable checkpoint every ``checkpoint_every_s`` seconds."""

    def __init__(self, run: PretrainRun):
        self.run = run

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: PretrainModule) -> None:
        # not at fit(): DDP process launch and setup are not training time
        self.run.epoch_start = time.time()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: PretrainModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        run = self.run
        every = run.cfg.checkpoint_every_s
        if every <= 0 or idx + 1 >= trainer.num_training_batches or not pl_module.mid_epoch_resume:
            return  # the epoch's end writes a checkpoint anyway
        due = time.time() - run.last_checkpoint >= every
        if trainer.world_size > 1:
            if idx % _SYNC_EVERY:
                return
            due = trainer.strategy.reduce_boolean_decision(due, all=False)
        if not due:
            return
        progress = pl_module.epoch_progress()  # every rank: it gathers across ranks
        items = run.items_before + (idx + 1) * run.cfg.batch_size * trainer.world_size
        if trainer.is_global_zero:
            run.record_progress(items, progress, pl_module, trainer.optimizers[0])
        run.last_checkpoint = time.time()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: PretrainModule) -> None:
        metrics = pl_module.pop_epoch_metrics()  # every rank: it gathers across ranks
        seconds = time.time() - self.run.epoch_start + self.run.seconds_before
        self.run.epochs_done += 1
        self.run.items_before, self.run.seconds_before = 0, 0.0
        row = {"epoch": self.run.epochs_done, "loss": metrics.pop("loss", None), **metrics}
        row["time_s"] = round(seconds, 3)
        row["mol_per_s"] = round(metrics["molecules"] / max(seconds, 1e-9), 2)
        if trainer.is_global_zero:
            self.run.record_epoch(row, pl_module, trainer.optimizers[0])
        self.run.last_checkpoint = time.time()


class PretrainRun(RunCounters):
    """State of one pre-training run in ``out_dir`` (fresh or resumed)."""

    def __init__(self, data: PretrainData, cfg: PretrainConfig, out_dir: str | Path):
        cfg.validate()
        if cfg.method in METHODS_3D and not data.is_3d:
            raise InvalidInputError(f"--method {cfg.method} needs conformers; the data has none")
        if cfg.mask_mode == "subgraph" and data.info.get("hydrogens"):
            raise InvalidInputError(
                "--mask-mode subgraph needs conformers without hydrogens (the store was built "
                "with --keep-hs)"
            )
        if len(data) < 2:
            raise InvalidInputError(
                f"pre-training needs at least 2 molecules, got {len(data)}"
                + (f" ({data.info.get('excluded_reasons')} excluded)" if len(data.excluded) else "")
            )
        self.data, self.cfg = prepare_data(cfg, data), cfg
        self.out_dir = Path(out_dir)
        self.ckpt = self.out_dir / "checkpoints" / "last.safetensors"
        self.log_rows: list[dict[str, Any]] = []
        self.epochs_done = 0
        self.wall_before = 0.0
        self.started = self.epoch_start = self.last_checkpoint = time.time()
        self.hparams: dict[str, Any] = {}
        # a run resumed mid-epoch: items of that epoch trained before, and their seconds
        self.items_before, self.seconds_before = 0, 0.0
        self.commits: list[str] = []  # git commits of the processes that trained epochs

    # -------------------------------------------------------------- config
    def info(self) -> dict[str, Any]:
        """Everything config.json records beside the encoder (see the module docstring)."""
        train_s = sum(r["time_s"] for r in self.log_rows)
        molecules = sum(r["molecules"] for r in self.log_rows)
        return {
            "method": self.cfg.method,
            "epochs": self.cfg.epochs,
            "epochs_done": self.epochs_done,
            "complete": self.epochs_done >= self.cfg.epochs,
            "data": self.data.info,
            "pretraining": dataclasses.asdict(self.cfg),
            "modules": self.hparams,
            "wall_time_s": round(self.wall_before + time.time() - self.started, 2),
            "train_time_s": round(train_s, 2),
            "molecules_per_s": round(molecules / train_s, 2) if train_s > 0 else None,
            "git_commits": list(self.commits),
            "fewmol_version": __version__,
            "hardware": hardware(),
        }

    def _check_resumable(self, module: PretrainModule) -> None:
        """Refuse to resume a run whose method, model, settings or molecules differ."""
        old = read_json(self.out_dir / "config.json", "pre-training config")
        new_cfg = dataclasses.asdict(self.cfg)
        old_cfg = old.get("pretraining", {})
        # a setting added after that run was written had its default value there
        defaults = dataclasses.asdict(PretrainConfig())
        diff = [
            k for k in new_cfg if k not in _RESUMABLE and old_cfg.get(k, defaults[k]) != new_cfg[k]
        ]
        if old.get("encoder") != module.encoder.hparams:
            diff.append("encoder")
        for key in ("features_key", "store_key"):
            if old.get("data", {}).get(key) != self.data.info.get(key):
                diff.append(f"data ({key})")
        if diff:
            raise InvalidInputError(
                f"cannot resume {self.out_dir}: {', '.join(diff)} differ from that run's; "
                "use another --out, or --force to start over"
            )

    # -------------------------------------------------------------- per-epoch bookkeeping
    def record_epoch(
        self, row: dict[str, Any], module: PretrainModule, opt: torch.optim.Optimizer
    ) -> None:
        """Append the log row; write the log, the encoder dir and the resume checkpoint."""
        self.log_rows.append(row)
        write_text(
            self.out_dir / "pretrain_log.csv", pd.DataFrame(self.log_rows).to_csv(index=False)
        )
        save_encoder(self.out_dir, module.encoder, self.cfg.featurizer, **self.info())
        state = self.counters()
        save_training_state(self.ckpt, _Unaliased(module), opt, state)  # type: ignore[arg-type]

    def counters(self) -> dict[str, Any]:
        """The resume state, with the commits that trained this run so far."""
        return {**super().counters(), "commits": list(self.commits)}

    def restore_counters(self, state: dict[str, Any]) -> None:
        """Take the counters (and the commits) back from a saved state."""
        super().restore_counters(state)
        self.commits = list(state.get("commits", []))

    def record_progress(
        self,
        items: int,
        progress: dict[str, Any],
        module: PretrainModule,
        opt: torch.optim.Optimizer,
    ) -> None:
        """Write a mid-epoch resume checkpoint: weights, optimiser and the epoch so far.

        The encoder dir and the log keep the last finished epoch; ``--resume`` continues this
        epoch after its first ``items`` samples, with the loss sums and random states as they
        were, so the run ends as an unbroken one would.
        """
        state = self.counters()
        seconds = self.seconds_before + time.time() - self.epoch_start
        state["progress"] = _map_rng_states({"items": items, "seconds": seconds, **progress}, _b64)
        save_training_state(self.ckpt, _Unaliased(module), opt, state)  # type: ignore[arg-type]

    def restore(self, module: PretrainModule) -> None:
        """Load the last checkpoint into ``module`` and this run's counters."""
        module.optimizer_state, state = load_training_state(
            self.ckpt,
            _Unaliased(module),  # type: ignore[arg-type]
        )
        self.restore_counters(state)
        progress = state.get("progress")
        if progress:
            self.items_before = int(progress["items"])
            self.seconds_before = float(progress["seconds"])
            module.pending_progress = _map_rng_states(progress, _unb64)

    # -------------------------------------------------------------- main
    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train (or continue) and write the out dir; returns the final info (rank 0)."""
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        module = build_module(cfg, self.data)
        self.hparams = module_hparams(module)
        if resume and self.ckpt.exists():
            self._check_resumable(module)
            self.restore(module)
        else:
            for stale in ("encoder.safetensors", "pretrain_log.csv", "loss_curve.png"):
                (self.out_dir / stale).unlink(missing_ok=True)
            # the encoder dir's config before any weights exist: --init then fails clearly
            write_json(
                self.out_dir / "config.json",
                {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "kind": "encoder",
                    "featurizer": cfg.featurizer,
                    "encoder": module.encoder.hparams,
                    "git_commit": git_commit(),
                    **self.info(),
                },
            )
        if len(self.data.excluded):
            write_text(self.out_dir / "excluded.csv", self.data.excluded.to_csv(index=False))

        remaining = cfg.epochs - self.epochs_done
        if remaining <= 0 and resume:
            # nothing left to train: the dir stays as the run that trained it wrote it (its
            # commit and wall time), however often a queue resumes it, unless the planned
            # epochs changed (a shorter plan marks the run complete)
            done = read_json(self.out_dir / "config.json", "pre-training config")
            if done.get("epochs") == cfg.epochs and done.get("epochs_done") == self.epochs_done:
                return done
        if remaining > 0:
            commit = git_commit()
            if commit and commit not in self.commits:
                self.commits.append(commit)
            module.epoch_offset = self.epochs_done
            dm = PretrainDataModule(
                self.data,
                cfg.batch_size,
                cfg.seed,
                epoch_offset=self.epochs_done,
                conf_sampling=cfg.conf_sampling,
                use_3d=cfg.method in METHODS_3D,
                skip=self.items_before,
            )
            # a mid-epoch resume shortens the first epoch's loader only: reload it every epoch
            reload = {"reload_dataloaders_every_n_epochs": 1} if self.items_before else {}
            trainer = make_trainer(cfg, remaining, [_Recorder(self)], limit_val_batches=0, **reload)
            trainer.fit(module, datamodule=dm)
            if not trainer.is_global_zero:
                return {}
        return self.finish(module)

    def finish(self, module: PretrainModule) -> dict[str, Any]:
        """Final encoder dir (config marked complete) and the loss curve."""
        info = self.info()
        save_encoder(self.out_dir, module.encoder, self.cfg.featurizer, **info)
        plot_losses(self.log_rows, self.out_dir / "loss_curve.png", self.cfg.method)
        return info


def plot_losses(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """loss_curve.png: the total loss and its main parts per epoch (matplotlib, Agg)."""
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    df = pd.DataFrame(rows)
    names = ["loss", "contrastive", "generative", *METHODS]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in names:
        if name in df.columns:
            ax.plot(df["epoch"], df[name], marker="o", ms=3, label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss")
    ax.set_title(f"fewmol pretrain {title}")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def pretrain(
    data: PretrainData, cfg: PretrainConfig, out_dir: str | Path, resume: bool = False
) -> dict[str, Any]:
    """Pre-train one encoder into ``out_dir``; returns config.json's info (empty on rank > 0)."""
    return PretrainRun(data, cfg, out_dir).fit(resume=resume)
