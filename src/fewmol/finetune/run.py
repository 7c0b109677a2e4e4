"""One fine-tuning run, end to end: featurise, split, train with Lightning, write the model dir.

The model dir (DESIGN §4) gets ``config.json``, ``split.json``, ``model.safetensors`` (weights
of the best-validation epoch), ``train_log.csv`` (one row per epoch), ``metrics.json`` (test at
the best-validation epoch and at the last epoch) and ``predictions.csv``. ``checkpoints/``
holds the last epoch's weights, optimiser and RNG state so ``resume=True`` continues a killed
run exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from fewmol import __version__
from fewmol.data.collate import GraphSet
from fewmol.data.module import GraphDataModule, predict_batches, standardize_stats
from fewmol.data.splits import Split
from fewmol.data.store import featurize_to_graphset
from fewmol.data.tables import Table
from fewmol.errors import InvalidInputError
from fewmol.finetune.metrics import is_better
from fewmol.finetune.module import FinetuneModule
from fewmol.io.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    load_state_into,
    load_tensors,
    load_training_state,
    read_json,
    save_tensors,
    save_training_state,
    write_json,
    write_text,
)
from fewmol.io.modeldir import build_model, encoder_hparams, git_commit, load_pretrained_encoder
from fewmol.training import hardware, make_trainer


@dataclass
class FinetuneConfig:
    """Every setting of a fine-tuning run (saved in config.json under ``training``)."""

    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    encoder_lr: float | None = None
    weight_decay: float = 0.0
    dropout: float = 0.5
    num_layers: int = 5
    dim: int = 300
    jk: str = "last"
    pooling: str = "mean"
    head: str = "linear"
    featurizer: str = "hu2019"
    seed: int = 0
    init: str | None = None
    select_metric: str | None = None  # default: roc_auc (classification) / rmse (regression)
    eval_batch_size: int = 256
    workers: int = 1  # featurisation processes
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def metric(self, task_type: str) -> str:
        """Validation metric used to pick the best epoch."""
        return self.select_metric or ("roc_auc" if task_type == "classification" else "rmse")


class _Recorder(L.Callback):
    """After each epoch: log row, best-validation weights, resumable checkpoint (rank 0 only)."""

    def __init__(self, run: FinetuneRun):
        self.run = run

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: FinetuneModule) -> None:
        row = {"epoch": self.run.epochs_done + 1, **pl_module.pop_train_metrics()}
        row.update(pl_module.epoch_metrics)
        pl_module.epoch_metrics = {}
        row["time_s"] = round(time.time() - self.run.epoch_start, 3)
        self.run.epoch_start = time.time()
        self.run.epochs_done += 1
        if trainer.is_global_zero:
            self.run.record_epoch(row, pl_module, trainer.optimizers[0])


class FinetuneRun:
    """State of one fine-tuning run in ``out_dir`` (fresh or resumed)."""

    def __init__(
        self,
        table: Table,
        split: Split,
        cfg: FinetuneConfig,
        out_dir: Path,
        data_info: dict[str, Any] | None = None,
    ):
        if table.targets is None or table.task_type is None:
            raise InvalidInputError("fine-tuning needs target columns")
        if len(split.train) == 0:
            raise InvalidInputError(
                f"the training split is empty: {len(table.smiles)} molecules were kept "
                f"({split.sizes()}); check bad_rows.csv, --task and --split"
            )
        self.table, self.split, self.cfg = table, split, cfg
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.data_info = data_info or {}
        self.task_type = table.task_type
        self.metric = cfg.metric(self.task_type)
        self.log_rows: list[dict[str, Any]] = []
        self.epochs_done = 0
        self.best: dict[str, Any] = {"epoch": None, "valid": None}
        self.wall_before = 0.0
        self.epoch_start = time.time()
        self.started = time.time()

    # -------------------------------------------------------------- config
    def model_config(self, y_mean: np.ndarray, y_std: np.ndarray, init_cfg: dict | None) -> dict:
        """config.json content: everything needed to rebuild and re-run the model."""
        enc_hp = (
            dict(init_cfg["encoder"], dropout=self.cfg.dropout)
            if init_cfg
            else encoder_hparams(
                self.cfg.featurizer,
                self.cfg.num_layers,
                self.cfg.dim,
                self.cfg.dropout,
                self.cfg.jk,
            )
        )
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": "property_model",
            "fewmol_version": __version__,
            "git_commit": git_commit(),
            "featurizer": self.cfg.featurizer,
            "encoder": enc_hp,
            "head": {"type": self.cfg.head},
            "pooling": self.cfg.pooling,
            "task_type": self.task_type,
            "target_names": list(self.table.target_names),
            "smiles_col": self.table.smiles_col,
            "target_scaling": {"mean": y_mean.tolist(), "std": y_std.tolist()}
            if self.task_type == "regression"
            else None,
            "select_metric": self.metric,
            "training": {k: v for k, v in dataclasses.asdict(self.cfg).items()},
            "data": self.data_info,
            "init_from": init_cfg.get("source") if init_cfg else None,
        }

    # -------------------------------------------------------------- per-epoch bookkeeping
    def record_epoch(self, row: dict, module: FinetuneModule, opt: torch.optim.Optimizer) -> None:
        """Append the log row, keep the best-validation weights, write the resume checkpoint."""
        self.log_rows.append(row)
        valid = row.get(f"valid_{self.metric}")
        if valid is None:  # no validation split: the last epoch is the model
            improved = True
        else:
            improved = self.best["epoch"] is None or is_better(
                self.metric, valid, self.best["valid"]
            )
        if improved:
            self.best = {"epoch": row["epoch"], "valid": valid}
            save_tensors(self.out_dir / "model.safetensors", module.model.state_dict())
        write_text(self.out_dir / "train_log.csv", pd.DataFrame(self.log_rows).to_csv(index=False))
        state = {
            "epochs_done": self.epochs_done,
            "best": self.best,
            "log_rows": self.log_rows,
            "wall_s": self.wall_before + time.time() - self.started,
        }
        save_training_state(self.ckpt_dir / "last.safetensors", module.model, opt, state)

    def restore(self, module: FinetuneModule) -> None:
        """Load the last checkpoint into ``module`` and this run's counters."""
        module.optimizer_state, state = load_training_state(
            self.ckpt_dir / "last.safetensors", module.model
        )
        self.epochs_done = int(state["epochs_done"])
        self.best = state["best"]
        self.log_rows = state["log_rows"]
        self.wall_before = float(state.get("wall_s", 0.0))

    # -------------------------------------------------------------- main
    def fit(self, graphs: GraphSet, resume: bool = False) -> dict[str, Any]:
        """Train (or continue training) and write the complete model dir; return metrics."""
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        y = self.table.targets.astype(np.float32)
        if self.task_type == "regression":
            y_mean, y_std = standardize_stats(y[self.split.train])
        else:
            y_mean, y_std = np.zeros(y.shape[1], np.float32), np.ones(y.shape[1], np.float32)

        L.seed_everything(cfg.seed, workers=True, verbose=False)
        init_cfg = None
        if cfg.init:
            encoder, init_cfg = load_pretrained_encoder(cfg.init)
            if init_cfg.get("featurizer", "hu2019") != cfg.featurizer:
                raise InvalidInputError(
                    f"--init encoder was trained with featurizer {init_cfg.get('featurizer')!r} "
                    f"but this run uses {cfg.featurizer!r}; pass --featurizer "
                    f"{init_cfg.get('featurizer')}"
                )
            init_cfg = dict(init_cfg, source=str(cfg.init))
        config = self.model_config(y_mean, y_std, init_cfg)
        model = build_model(config)
        if init_cfg:
            model.encoder.load_state_dict(encoder.state_dict())
        module = FinetuneModule(
            model, self.task_type, cfg.lr, cfg.weight_decay, cfg.encoder_lr, y_mean, y_std
        )

        if resume and (self.ckpt_dir / "last.safetensors").exists():
            old = read_json(self.out_dir / "config.json", "model config")
            for key in ("target_names", "featurizer", "encoder", "task_type"):
                if old.get(key) != config[key]:
                    raise InvalidInputError(
                        f"cannot resume {self.out_dir}: its {key} differs from this run's; "
                        "use another --out or drop --resume"
                    )
            self.restore(module)
        write_json(self.out_dir / "config.json", config)
        self.split.to_json(self.out_dir / "split.json")

        remaining = cfg.epochs - self.epochs_done
        if remaining > 0:
            dm = GraphDataModule(
                graphs,
                y,
                self.split,
                cfg.batch_size,
                cfg.eval_batch_size,
                cfg.seed,
                epoch_offset=self.epochs_done,
            )
            trainer = make_trainer(cfg, remaining, [_Recorder(self)])
            self.epoch_start = time.time()
            trainer.fit(module, datamodule=dm)
            if not trainer.is_global_zero:
                return {}
        return self.finish(graphs)

    def finish(self, graphs: GraphSet) -> dict[str, Any]:
        """Write metrics.json and predictions.csv from the best-validation weights."""
        last = self.log_rows[-1] if self.log_rows else {}
        best_row = next((r for r in self.log_rows if r["epoch"] == self.best["epoch"]), last)
        parts = ("train", "valid", "test")
        keys = [k for k in last if any(k.startswith(p + "_") for p in parts)]

        def pick(row: dict, part: str) -> dict:
            return {k[len(part) + 1 :]: row[k] for k in keys if k.startswith(part + "_")}

        wall = self.wall_before + time.time() - self.started
        metrics = {
            "task_type": self.task_type,
            "select_metric": self.metric,
            "epochs": self.cfg.epochs,
            "epochs_done": self.epochs_done,
            "best_epoch": self.best["epoch"],
            "best_valid": pick(best_row, "valid"),
            "test_at_best_valid": pick(best_row, "test"),
            "test_at_last_epoch": pick(last, "test"),
            "valid_at_last_epoch": pick(last, "valid"),
            "split_sizes": self.split.sizes(),
            "n_molecules": len(self.table.smiles),
            "seed": self.cfg.seed,
            "wall_time_s": round(wall, 2),
            "hardware": hardware(),
            "git_commit": git_commit(),
        }
        write_json(self.out_dir / "metrics.json", metrics)
        self.write_predictions(graphs)
        return metrics

    def write_predictions(self, graphs: GraphSet) -> None:
        """predictions.csv: every kept row with its split, labels and best-model predictions."""
        model = build_model(read_json(self.out_dir / "config.json"))
        load_state_into(model, load_tensors(self.out_dir / "model.safetensors"))
        module = FinetuneModule(
            model, self.task_type, y_mean=self._scaling("mean"), y_std=self._scaling("std")
        )
        preds = predict_array(module, graphs)
        part = np.full(len(self.table.smiles), "", dtype=object)
        for name in ("train", "valid", "test"):
            part[getattr(self.split, name)] = name
        df = pd.DataFrame(
            {"row": self.table.rows, "smiles": self.table.input_smiles, "split": part}
        )
        for t, name in enumerate(self.table.target_names):
            df[name] = self.table.targets[:, t]
            df[f"{name}_pred"] = preds[:, t]
        write_text(self.out_dir / "predictions.csv", df.to_csv(index=False))

    def _scaling(self, key: str) -> np.ndarray | None:
        sc = read_json(self.out_dir / "config.json").get("target_scaling")
        return None if sc is None else np.asarray(sc[key], np.float32)


@torch.no_grad()
def predict_array(module: FinetuneModule, graphs: GraphSet, batch_size: int = 256) -> np.ndarray:
    """Output-scale predictions (n_graphs, n_tasks) of a module in eval mode, on CPU."""
    module = module.to("cpu").eval()
    outs = [module.to_output_scale(module(b)).numpy() for b in predict_batches(graphs, batch_size)]
    n_tasks = module.model.head.n_tasks
    return np.concatenate(outs) if outs else np.zeros((0, n_tasks), np.float32)


@torch.no_grad()
def embed_array(module: FinetuneModule, graphs: GraphSet, batch_size: int = 256) -> np.ndarray:
    """Pooled encoder embeddings (n_graphs, d) in eval mode."""
    module = module.to("cpu").eval()
    outs = [
        module.model.embed(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs).numpy()
        for b in predict_batches(graphs, batch_size)
    ]
    return np.concatenate(outs) if outs else np.zeros((0, module.model.encoder.out_dim))


def featurize_table(table: Table, featurizer: str = "hu2019", workers: int = 1) -> GraphSet:
    """GraphSet for the kept rows of a table (cached on disk)."""
    return featurize_to_graphset(table.smiles, featurizer, workers=workers)


def finetune(
    table: Table,
    split: Split,
    cfg: FinetuneConfig,
    out_dir: str | Path,
    resume: bool = False,
    data_info: dict[str, Any] | None = None,
    graphs: GraphSet | None = None,
) -> dict[str, Any]:
    """Fine-tune one model into ``out_dir``; return its metrics dict."""
    if graphs is None:
        graphs = featurize_table(table, cfg.featurizer, cfg.workers)
    run = FinetuneRun(table, split, cfg, Path(out_dir), data_info)
    return run.fit(graphs, resume=resume)


def summarize_seeds(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of every numeric test/valid metric."""
    out: dict[str, Any] = {"n_seeds": len(metrics), "seeds": [m.get("seed") for m in metrics]}
    for key in ("test_at_best_valid", "test_at_last_epoch", "best_valid"):
        names = sorted({k for m in metrics for k in m.get(key, {})})
        out[key] = {}
        for n in names:
            vals = [m[key].get(n) for m in metrics]
            vals = [float(v) for v in vals if v is not None and not math.isnan(float(v))]
            if vals:
                out[key][n] = {
                    "mean": float(np.mean(vals)),
                    "std": float(np.std(vals)),
                    "values": vals,
                }
    return out
