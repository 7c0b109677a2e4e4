"""One drug–target affinity run: load, featurise, train with Lightning, write the run dir.

The run dir gets ``config.json`` (everything to rebuild the model), ``split.json`` (pair
positions of each part), ``model.safetensors`` (best-validation weights), ``train_log.csv``
(one row per epoch, with training throughput), ``predictions.csv`` (valid + test pairs at the
best-validation epoch) and ``metrics.json`` (test MSE and CI at the best-validation epoch and
at the last one, pairs/s). ``checkpoints/last.safetensors`` holds weights, optimiser and RNG of
the last epoch, so ``resume=True`` continues a stopped run as if it had never stopped.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from fewmol import __version__
from fewmol.data.collate import GraphSet
from fewmol.data.dta import (
    MAX_LEN,
    PROTEIN_VOCAB_SIZE,
    DTAData,
    EvalEntities,
    make_pair_loader,
)
from fewmol.data.loaders import drop_single_remainder, trainer_world_size
from fewmol.data.splits import Split
from fewmol.dta.model import DEEPDTA_HIDDEN, build_dta_model
from fewmol.dta.module import DTAModule
from fewmol.errors import InvalidInputError
from fewmol.finetune.metrics import is_better
from fewmol.finetune.run import _Recorder
from fewmol.io.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    load_training_state,
    read_json,
    save_tensors,
    save_training_state,
    write_json,
    write_text,
)
from fewmol.io.modeldir import encoder_hparams, git_commit, load_pretrained_encoder
from fewmol.training import RunCounters, hardware, make_trainer

SELECT_METRIC = "mse"
# config.json entries that must match for --resume to continue the same run
_RESUME_KEYS = ("dataset", "featurizer", "encoder", "protein_encoder", "head", "pooling", "pairs")


class DTADataModule(L.LightningDataModule):
    """Shuffled training pairs plus (valid, test) evaluation loaders."""

    def __init__(
        self,
        data: DTAData,
        graphs: GraphSet,
        split: Split,
        batch_size: int = 256,
        eval_batch_size: int = 256,
        seed: int = 0,
        epoch_offset: int = 0,
        max_len: int = MAX_LEN,
    ):
        super().__init__()
        self.data, self.graphs, self.split = data, graphs, split
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.epoch_offset, self.max_len = seed, epoch_offset, max_len

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (order depends only on seed and epoch; no batch of one)."""
        n, world = len(self.split.train), trainer_world_size(self)
        return make_pair_loader(
            self.data,
            self.graphs,
            self.split.train,
            self.batch_size,
            True,
            self.seed,
            self.epoch_offset,
            self.max_len,
            drop_last=drop_single_remainder(n, self.batch_size, world),
        )

    def val_dataloader(self) -> list[DataLoader]:
        """[valid, test] loaders of PairIds (the module encodes ``eval_entities`` once)."""
        return [
            make_pair_loader(self.data, self.graphs, part, self.eval_batch_size, ids_only=True)
            for part in (self.split.valid, self.split.test)
        ]

    def eval_entities(self) -> EvalEntities:
        """The drugs and proteins of the valid and test pairs."""
        pairs = np.concatenate([self.split.valid, self.split.test])
        return EvalEntities.of_pairs(self.data, self.graphs, pairs, self.max_len)


@dataclass
class DTAConfig:
    """Every setting of a DTA run (saved in config.json under ``training``)."""

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    encoder_lr: float | None = None
    weight_decay: float = 0.0
    # GraphMVP's dti_finetune.py trains the GIN without dropout; DeepDTA's MLP uses 0.1
    dropout: float = 0.0
    num_layers: int = 5
    dim: int = 300
    jk: str = "last"
    pooling: str = "mean"
    featurizer: str | None = None  # None: the --init encoder's, else hu2019
    protein_emb_dim: int = 128
    protein_filters: tuple[int, ...] = (32, 64, 96)
    protein_kernel: int = 8
    max_len: int = MAX_LEN
    mlp_hidden: tuple[int, ...] = DEEPDTA_HIDDEN
    mlp_dropout: float = 0.1
    seed: int = 0
    init: str | None = None
    max_pairs: int | None = None  # subsample of training pairs (quick runs)
    max_eval_pairs: int | None = None  # subsample of valid and of test pairs (quick runs)
    eval_batch_size: int = 256
    workers: int = 1
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"  # Lightning precision: 32-true | bf16-mixed | 16-mixed
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def subsample_split(split: Split, max_pairs: int | None, max_eval: int | None, seed: int) -> Split:
    """Seeded subsets of the training pairs and of the valid/test pairs (None = all)."""
    rng = np.random.default_rng([seed, 7919])  # own stream: training shuffles are unaffected

    def pick(a: np.ndarray, n: int | None) -> np.ndarray:
        if n is None or n >= len(a):
            return a
        return np.sort(rng.choice(a, size=n, replace=False))

    return Split(
        pick(split.train, max_pairs),
        pick(split.valid, max_eval),
        pick(split.test, max_eval),
        kind=split.kind
        + (f", train subsample {max_pairs}" if max_pairs is not None else "")
        + (f", eval subsample {max_eval}" if max_eval is not None else ""),
    )


class _DTARecorder(_Recorder):
    """finetune's per-epoch recorder plus timing of the training part of each epoch."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: DTAModule) -> None:
        self.run.train_start = time.time()

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: DTAModule) -> None:
        if trainer.sanity_checking or self.run.train_start is None:
            return
        train_s = time.time() - self.run.train_start
        pl_module.epoch_metrics["train_s"] = round(train_s, 3)
        pl_module.epoch_metrics["train_pairs_per_s"] = round(
            self.run.n_train / max(train_s, 1e-9), 2
        )
        self.run.eval_start = time.time()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: DTAModule) -> None:
        if self.run.eval_start is not None:
            pl_module.epoch_metrics["eval_s"] = round(time.time() - self.run.eval_start, 3)


class DTARun(RunCounters):
    """State of one DTA run in ``out_dir`` (fresh or resumed)."""

    def __init__(self, data: DTAData, cfg: DTAConfig, out_dir: Path):
        self.data, self.cfg = data, cfg
        self.split = subsample_split(data.split, cfg.max_pairs, cfg.max_eval_pairs, cfg.seed)
        if len(self.split.train) == 0:
            raise InvalidInputError(f"{data.name}: no training pairs")
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.n_train = len(self.split.train)
        self.log_rows: list[dict[str, Any]] = []
        self.epochs_done = 0
        self.best: dict[str, Any] = {"epoch": None, "valid": None}
        self.wall_before = 0.0
        self.epoch_start = self.started = time.time()
        self.train_start: float | None = None
        self.eval_start: float | None = None

    # -------------------------------------------------------------- config
    def model_config(
        self, featurizer: str, y_mean: float, y_std: float, init_cfg: dict | None
    ) -> dict:
        """config.json content: everything needed to rebuild and re-run the model."""
        cfg = self.cfg
        enc_hp = (
            dict(init_cfg["encoder"], dropout=cfg.dropout)
            if init_cfg
            else encoder_hparams(featurizer, cfg.num_layers, cfg.dim, cfg.dropout, cfg.jk)
        )
        filters = list(cfg.protein_filters)
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": "dta_model",
            "fewmol_version": __version__,
            "git_commit": git_commit(),
            "featurizer": featurizer,
            "encoder": enc_hp,
            "pooling": cfg.pooling,
            "protein_encoder": {
                "vocab_size": PROTEIN_VOCAB_SIZE,
                "emb_dim": cfg.protein_emb_dim,
                "filters": filters,
                "kernel_sizes": [cfg.protein_kernel] * len(filters),
            },
            "max_len": cfg.max_len,
            "head": {"hidden": list(cfg.mlp_hidden), "dropout": cfg.mlp_dropout},
            "dataset": self.data.name,
            "units": self.data.units,
            "ligands": self.data.ligands,
            "target_scaling": {"mean": y_mean, "std": y_std},
            "select_metric": SELECT_METRIC,
            "pairs": {
                "setting": self.data.setting,
                "valid_fold": self.data.valid_fold,
                "max_pairs": cfg.max_pairs,
                "max_eval_pairs": cfg.max_eval_pairs,
                "seed": cfg.seed,
            },
            "split": self.data.split.kind,  # deepdta-setting1(...) | random / cold-* (tables)
            "training": dataclasses.asdict(cfg),
            "data": {"source": self.data.source, **self.data.counts()},
            "init_from": init_cfg.get("source") if init_cfg else None,
        }

    # -------------------------------------------------------------- per-epoch bookkeeping
    def record_epoch(self, row: dict, module: DTAModule, opt: torch.optim.Optimizer) -> None:
        """Append the log row, keep best-validation weights + predictions, write the checkpoint."""
        self.log_rows.append(row)
        valid = row.get(f"valid_{SELECT_METRIC}")
        improved = (
            valid is None
            or self.best["epoch"] is None
            or is_better(SELECT_METRIC, valid, self.best["valid"])
        )
        if improved:
            self.best = {"epoch": row["epoch"], "valid": valid}
            save_tensors(self.out_dir / "model.safetensors", module.model.state_dict())
            self.write_predictions(module.eval_predictions)
        write_text(self.out_dir / "train_log.csv", pd.DataFrame(self.log_rows).to_csv(index=False))
        state = self.counters()
        save_training_state(self.ckpt_dir / "last.safetensors", module.model, opt, state)

    def write_predictions(
        self, preds: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    ) -> None:
        """predictions.csv: valid and test pairs with drug, protein, label and prediction."""
        frames = []
        for part, (idx, y, p) in preds.items():
            idx, keep = np.unique(idx, return_index=True)  # DDP pads shards with repeats
            where = {}
            if self.data.pair_rows is not None:  # a user table: the input row of each pair
                rows = self.data.pair_rows[idx]
                where = {"row": rows, "line": rows + 2}
            frames.append(
                pd.DataFrame(
                    {
                        "pair": idx,
                        **where,
                        "split": part,
                        "drug": np.asarray(self.data.drug_ids, dtype=object)[
                            self.data.drug_idx[idx]
                        ],
                        "protein": np.asarray(self.data.proteins.names, dtype=object)[
                            self.data.prot_idx[idx]
                        ],
                        self.data.units: y[keep],
                        "prediction": p[keep],
                    }
                )
            )
        if frames:
            write_text(self.out_dir / "predictions.csv", pd.concat(frames).to_csv(index=False))

    def restore(self, module: DTAModule) -> None:
        """Load the last checkpoint into ``module`` and this run's counters."""
        module.optimizer_state, state = load_training_state(
            self.ckpt_dir / "last.safetensors", module.model
        )
        self.restore_counters(state)

    # -------------------------------------------------------------- main
    def build(self) -> tuple[DTAModule, dict[str, Any]]:
        """Model (pre-trained GIN loaded if ``init``) wrapped in its LightningModule, and config."""
        cfg = self.cfg
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        init_cfg, encoder = None, None
        featurizer = cfg.featurizer or "hu2019"
        if cfg.init:
            encoder, init_cfg = load_pretrained_encoder(cfg.init)
            init_feat = init_cfg.get("featurizer", "hu2019")
            if cfg.featurizer is not None and cfg.featurizer != init_feat:
                raise InvalidInputError(
                    f"--init encoder was trained with featurizer {init_feat!r} but this run asks "
                    f"for {cfg.featurizer!r}; drop --featurizer or pass --featurizer {init_feat}"
                )
            featurizer = init_feat
            init_cfg = dict(init_cfg, source=str(cfg.init))
        y = self.data.affinity[self.split.train]
        y_mean, y_std = float(y.mean()), float(y.std()) or 1.0
        config = self.model_config(featurizer, y_mean, y_std, init_cfg)
        model = build_dta_model(config)
        if encoder is not None:
            model.drug_encoder.load_state_dict(encoder.state_dict())
        module = DTAModule(model, cfg.lr, cfg.weight_decay, cfg.encoder_lr, y_mean, y_std)
        return module, config

    def fit(self, graphs: GraphSet | None = None, resume: bool = False) -> dict[str, Any]:
        """Train (or continue training) and write the complete run dir; return metrics."""
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        module, config = self.build()
        if graphs is None:
            graphs = self.data.featurize(config["featurizer"], cfg.workers)
        if resume and (self.ckpt_dir / "last.safetensors").exists():
            old = read_json(self.out_dir / "config.json", "model config")
            for key in _RESUME_KEYS:
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
            dm = DTADataModule(
                self.data,
                graphs,
                self.split,
                cfg.batch_size,
                cfg.eval_batch_size,
                cfg.seed,
                epoch_offset=self.epochs_done,
                max_len=cfg.max_len,
            )
            module.eval_entities, module.eval_chunk = dm.eval_entities(), cfg.eval_batch_size
            trainer = make_trainer(cfg, remaining, [_DTARecorder(self)])
            self.epoch_start = time.time()
            trainer.fit(module, datamodule=dm)
            if not trainer.is_global_zero:
                return {}
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Write metrics.json from the log: test at the best-validation epoch and at the last."""
        last = self.log_rows[-1] if self.log_rows else {}
        best_row = next((r for r in self.log_rows if r["epoch"] == self.best["epoch"]), last)

        def pick(row: dict, part: str) -> dict:
            return {k[len(part) + 1 :]: v for k, v in row.items() if k.startswith(part + "_")}

        speeds = [r["train_pairs_per_s"] for r in self.log_rows if r.get("train_pairs_per_s")]
        wall = self.wall_before + time.time() - self.started
        metrics = {
            "dataset": self.data.name,
            "units": self.data.units,
            "select_metric": SELECT_METRIC,
            "epochs": self.cfg.epochs,
            "epochs_done": self.epochs_done,
            "best_epoch": self.best["epoch"],
            "best_valid": pick(best_row, "valid"),
            "test_at_best_valid": pick(best_row, "test"),
            "test_at_last_epoch": pick(last, "test"),
            "valid_at_last_epoch": pick(last, "valid"),
            "split_sizes": self.split.sizes(),
            "max_pairs": self.cfg.max_pairs,
            "max_eval_pairs": self.cfg.max_eval_pairs,
            "counts": self.data.counts(),
            "throughput": {
                "train_pairs_per_s": float(np.median(speeds)) if speeds else None,
                "batch_size": self.cfg.batch_size,
                "torch_threads": torch.get_num_threads(),
            },
            "seed": self.cfg.seed,
            "wall_time_s": round(wall, 2),
            "hardware": hardware(),
            "git_commit": git_commit(),
        }
        write_json(self.out_dir / "metrics.json", metrics)
        return metrics


def train_dta(
    data: DTAData,
    cfg: DTAConfig,
    out_dir: str | Path,
    resume: bool = False,
    graphs: GraphSet | None = None,
) -> dict[str, Any]:
    """Train one DTA model into ``out_dir``; return its metrics dict."""
    return DTARun(data, cfg, Path(out_dir)).fit(graphs, resume=resume)


def measure_throughput(
    data: DTAData,
    cfg: DTAConfig,
    steps: int = 5,
    warmup: int = 1,
    graphs: GraphSet | None = None,
) -> dict[str, float]:
    """Training pairs/s of ``steps`` optimiser steps on random training batches (no run dir).

    Used to size epochs before a long run (KIBA on 2 CPU cores); collation is included.
    """
    run = DTARun(data, cfg, Path("."))
    module, config = run.build()
    if graphs is None:
        graphs = data.featurize(config["featurizer"], cfg.workers)
    opt = module.configure_optimizers()
    loader = make_pair_loader(
        data, graphs, run.split.train, cfg.batch_size, True, cfg.seed, max_len=cfg.max_len
    )
    module.train()
    it = iter(loader)
    pairs, start = 0, None
    for step in range(warmup + steps):
        if step == warmup:
            start, pairs = time.perf_counter(), 0
        batch = next(it)
        out = module(batch)
        loss = torch.nn.functional.mse_loss(out, (batch.y - module.y_mean) / module.y_std)
        opt.zero_grad()
        loss.backward()
        opt.step()
        pairs += batch.num_pairs
    seconds = time.perf_counter() - start
    return {
        "train_pairs_per_s": pairs / seconds,
        "seconds_per_step": seconds / steps,
        "batch_size": cfg.batch_size,
        "torch_threads": torch.get_num_threads(),
        "epoch_minutes_estimate": len(run.split.train) / (pairs / seconds) / 60,
    }
