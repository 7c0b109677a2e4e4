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
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from fewmol import __version__
from fewmol.chem.fingerprints import morgan_packed
from fewmol.chem.mol import Hygiene
from fewmol.data.collate import GraphSet
from fewmol.data.module import GraphDataModule, predict_batches, standardize_stats
from fewmol.data.splits import Split
from fewmol.data.store import featurize_to_graphset
from fewmol.data.tables import Table
from fewmol.errors import InvalidInputError
from fewmol.finetune.applicability import domain_report, fit_on_rows
from fewmol.finetune.baseline import rf_baseline
from fewmol.finetune.calibration import (
    CALIBRATION_FILE,
    apply_calibration,
    calibration_report,
    fit_calibration,
    save_calibration,
)
from fewmol.finetune.config import FinetuneConfig  # re-exported: it lived here
from fewmol.finetune.inference import load_module, run_inference
from fewmol.finetune.metrics import evaluate, is_better
from fewmol.finetune.module import FinetuneModule
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
from fewmol.io.modeldir import build_model, encoder_hparams, git_commit, load_init_encoder
from fewmol.training import RunCounters, hardware, make_trainer


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


class FinetuneRun(RunCounters):
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
        split.check_trainable(
            f"{len(table.smiles)} molecules were kept; check bad_rows.csv, --task and --split "
            "(a scaffold split of a few molecules can leave most of them outside training)"
        )
        cfg.validate()
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
            "hygiene": self.table.hygiene.to_dict(),
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
        state = self.counters()
        save_training_state(self.ckpt_dir / "last.safetensors", module.model, opt, state)

    def restore(self, module: FinetuneModule) -> None:
        """Load the last checkpoint into ``module`` and this run's counters."""
        module.optimizer_state, state = load_training_state(
            self.ckpt_dir / "last.safetensors", module.model
        )
        self.restore_counters(state)

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
            encoder, init_cfg = load_init_encoder(cfg.init, cfg.featurizer)
        config = self.model_config(y_mean, y_std, init_cfg)
        model = build_model(config)
        if init_cfg:
            model.encoder.load_state_dict(encoder.state_dict())
        module = FinetuneModule(
            model,
            self.task_type,
            cfg.lr,
            cfg.weight_decay,
            cfg.encoder_lr,
            y_mean,
            y_std,
            freeze_encoder=cfg.freeze_encoder,
            unfreeze_after=cfg.unfreeze_after,
        )

        if resume and (self.ckpt_dir / "last.safetensors").exists():
            old = read_json(self.out_dir / "config.json", "model config")
            old["hygiene"] = Hygiene.from_dict(old.get("hygiene")).to_dict()  # pre-hygiene dirs
            for key in ("target_names", "featurizer", "encoder", "task_type", "hygiene"):
                if old.get(key) != config[key]:
                    raise InvalidInputError(
                        f"cannot resume {self.out_dir}: its {key} differs from this run's; "
                        "use another --out or drop --resume"
                    )
            self.restore(module)
            module.epoch_offset = self.epochs_done
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
        extras = finish_model_dir(
            self.out_dir, [self.out_dir], self.table, self.split, graphs, self.cfg
        )
        metrics.update(extras)
        write_json(self.out_dir / "metrics.json", metrics)
        return metrics


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


# ---------------------------------------------------------------------- uncertainty and baseline


def uncertainty_name(n_members: int, mc_dropout: int) -> str:
    """How a model dir estimates its spread, e.g. 'ensemble of 5 + MC-dropout x20'."""
    parts = []
    if n_members > 1:
        parts.append(f"ensemble of {n_members}")
    if mc_dropout:
        parts.append(f"MC-dropout x{mc_dropout}")
    return " + ".join(parts) or "none"


def finish_model_dir(
    out_dir: Path,
    member_dirs: list[Path],
    table: Table,
    split: Split,
    graphs: GraphSet,
    cfg: FinetuneConfig,
) -> dict[str, Any]:
    """Fit calibration and applicability domain, run the baseline, write predictions.csv.

    ``member_dirs`` is ``[out_dir]`` for one model, or the members of an ensemble stored in
    ``out_dir``. Calibration and the in-domain thresholds are fitted on ``split.valid`` and
    written to ``out_dir``; returns what goes into metrics.json (calibration and AD reports on
    the test split, the baseline's scores, the predictor's own valid/test metrics).
    """
    out_dir = Path(out_dir)
    modules = [load_module(Path(d))[0] for d in member_dirs]
    inf = run_inference(modules, graphs, table.rows, cfg.mc_dropout, cfg.seed, embed=True)
    task_type, names = table.task_type, list(table.target_names)
    y = table.targets.astype(np.float64)
    mean, std = inf.mean, inf.std
    tr, va, te = split.train, split.valid, split.test
    extras: dict[str, Any] = {"uncertainty": uncertainty_name(len(modules), cfg.mc_dropout)}
    extras["predictor"] = {
        part: evaluate(task_type, y[idx], mean[idx])
        for part, idx in (("valid", va), ("test", te))
        if len(idx)
    }

    cal = None
    if len(va):
        sv = None if std is None else std[va]
        cal = fit_calibration(
            task_type,
            names,
            y[va],
            mean[va],
            sv,
            cfg.coverage,
            cfg.calibration,
            extras["uncertainty"],
        )
        cal["report"] = {"valid": calibration_report(cal, names, y[va], mean[va], sv)}
        if len(te):
            st = None if std is None else std[te]
            cal["report"]["test"] = calibration_report(cal, names, y[te], mean[te], st)
        save_calibration(out_dir, cal)
        extras["calibration"] = {
            k: cal[k] for k in ("coverage", "method", "uncertainty", "n_valid") if k in cal
        }
        extras["calibration"].update({p: r["mean"] for p, r in cal["report"].items()})
    else:
        (out_dir / CALIBRATION_FILE).unlink(missing_ok=True)  # never keep a stale fit
        extras["calibration"] = None

    ad, sim, dist, flag = fit_on_rows(
        morgan_packed(table.smiles),
        inf.embedding,
        tr,
        va,
        cfg.ad_quantile,
        embedding_from="model" if Path(member_dirs[0]) == out_dir else Path(member_dirs[0]).name,
    )
    if flag is not None and len(te):
        ad.info["test"] = domain_report(task_type, y[te], mean[te], flag[te])
    ad.save(out_dir)
    extras["applicability"] = {
        "sim_threshold": ad.sim_threshold,
        "dist_threshold": ad.dist_threshold,
        "test": ad.info.get("test"),
    }

    part = np.full(len(table.smiles), "", dtype=object)
    for name in ("train", "valid", "test"):
        part[getattr(split, name)] = name
    cols: dict[str, Any] = {"row": table.rows, "smiles": table.input_smiles, "split": part}
    calibrated = apply_calibration(cal, names, mean, std) if cal else {}
    rf_pred = None
    if cfg.baseline == "rf":
        summary, rf_pred = rf_baseline(table, split, cfg.seed, workers=cfg.workers)
        summary["gnn"] = extras["predictor"]
        extras["baseline"] = summary
    for t, name in enumerate(names):
        cols[name] = table.targets[:, t]
        cols[f"{name}_pred"] = mean[:, t]
        if std is not None:
            cols[f"{name}_std"] = std[:, t]
        for suffix, values in calibrated.items():
            cols[f"{name}_{suffix}"] = values[:, t]
        if rf_pred is not None:
            cols[f"{name}_rf_pred"] = rf_pred[:, t]
    cols["ad_max_tanimoto"] = sim
    cols["ad_nearest_distance"] = dist
    if flag is not None:
        cols["ad_in_domain"] = flag
    write_text(out_dir / "predictions.csv", pd.DataFrame(cols).to_csv(index=False))
    return extras


ENSEMBLE_FILE = "ensemble.json"


def finish_ensemble(
    out_dir: Path,
    member_dirs: list[Path],
    table: Table,
    split: Split,
    graphs: GraphSet,
    cfg: FinetuneConfig,
    member_metrics: list[dict[str, Any]],
) -> dict[str, Any]:
    """Top level of an ensemble dir: ensemble.json, split.json, calibration, AD, metrics.json.

    Members must share ``split`` (so the validation molecules are held out of every member).
    """
    out_dir = Path(out_dir)
    extras = finish_model_dir(out_dir, member_dirs, table, split, graphs, cfg)
    member_cfg = read_json(Path(member_dirs[0]) / "config.json", "model config")
    write_json(
        out_dir / ENSEMBLE_FILE,
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": "ensemble",
            "members": [Path(d).name for d in member_dirs],
            "seeds": [m.get("seed") for m in member_metrics],
            "task_type": table.task_type,
            "target_names": list(table.target_names),
            "featurizer": member_cfg["featurizer"],
            "hygiene": table.hygiene.to_dict(),
            "mc_dropout": cfg.mc_dropout,
            "coverage": cfg.coverage,
            "calibration": cfg.calibration,
            "baseline": cfg.baseline,
            "split": split.kind,
            "fewmol_version": __version__,
            "git_commit": git_commit(),
        },
    )
    split.to_json(out_dir / "split.json")
    metric = cfg.metric(table.task_type)
    metrics = {
        "kind": "ensemble",
        "task_type": table.task_type,
        "select_metric": metric,
        "n_members": len(member_dirs),
        "members": [Path(d).name for d in member_dirs],
        "member_test_at_best_valid": [m["test_at_best_valid"].get(metric) for m in member_metrics],
        "split_sizes": split.sizes(),
        "n_molecules": len(table.smiles),
        **extras,
        "hardware": hardware(),
        "git_commit": git_commit(),
    }
    write_json(out_dir / "metrics.json", metrics)
    return metrics
