"""One multi-task run, end to end: featurise, split, task graph, train with Lightning, model dir.

The model dir (DESIGN §4) gets ``config.json`` (``"kind": "multitask"``, method, task names,
architecture, every setting), ``task_graph.json`` (the graph the model was built on, so predict
rebuilds it), ``split.json``, ``model.safetensors`` (best-validation weights), ``train_log.csv``,
``metrics.json`` (test at the best-validation and at the last epoch) and ``predictions.csv``;
``checkpoints/last.safetensors`` holds weights, optimiser and RNG state for ``resume=True``.

``stl`` trains T single-task models one after the other in the same dir: each task's
best-validation weights go to ``tasks/task_<t>.safetensors`` (no ``model.safetensors``), the
log has one row per (task, epoch), and the checkpoint records which task it belongs to, so a
killed run resumes inside the task it was on. STL can also run as K parts in separate dirs
(``part=(i, K)``: tasks t with t % K == i, e.g. one part per worker process) that
``merge_stl_parts`` joins into one model dir; every task is seeded by its own index, so the
merged dir holds the same models as one run over all tasks.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from fewmol import __version__
from fewmol.data.collate import GraphSet
from fewmol.data.module import GraphDataModule
from fewmol.data.splits import Split
from fewmol.data.store import featurize_to_graphset
from fewmol.errors import InvalidInputError
from fewmol.finetune.metrics import is_better
from fewmol.io.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    json_safe,
    load_tensors,
    load_tensors_with_meta,
    load_training_state,
    read_json,
    save_tensors,
    save_training_state,
    write_json,
    write_text,
)
from fewmol.io.modeldir import (
    encoder_hparams,
    git_commit,
    load_init_encoder,
    load_pretrained_encoder,
)
from fewmol.multitask.balancing import make_balancer
from fewmol.multitask.inputs import MultitaskInput
from fewmol.multitask.model import METHODS, STRUCTURED, build_net
from fewmol.multitask.module import MultitaskModule
from fewmol.multitask.sgnn_ebm import NOISES, label_frequencies
from fewmol.multitask.task_graph import TaskGraph
from fewmol.training import RunCounters, hardware, make_trainer

GRAPH_FILE = "task_graph.json"
STL_DIR = "tasks"
PART_FILE = "stl_part.json"  # a finished STL part: its log rows, best epochs and wall time
PART_PREDICTIONS = "stl_part_predictions.safetensors"  # its tasks' columns of predictions.csv


@dataclass
class MultitaskConfig:
    """Every setting of a multi-task run (saved in config.json under ``training``)."""

    method: str = "sgnn-ebm"
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    encoder_lr: float | None = None
    weight_decay: float = 0.0
    dropout: float = 0.2
    num_layers: int = 5
    dim: int = 300
    jk: str = "last"
    pooling: str = "mean"
    featurizer: str = "hu2019"
    seed: int = 0
    init: str | None = None
    # SGNN / SGNN-EBM
    task_dim: int = 64
    state_dim: int = 64
    sgnn_hidden: int = 128
    sgnn_layers: int = 2
    gcn_layers: int = 2
    smoothing: float = 0.02
    # λ 0.1: SGNN-EBM's released configuration (submit_SGNN_EBM.sh, --structured_lambda=0.1).
    # λ 1 let the pairwise terms swamp the task terms on chembl-10 (session 8's note).
    lam: float = 0.1
    noise: str = "adaptive"
    # fixed noise from this trained multi-task model dir (the paper: a pre-trained SGNN);
    # None: the training label frequencies
    noise_model: str | None = None
    noise_mix: float = 0.1
    # a low-rank bilinear molecule x task term in the SGNN's node states (sgnn.LowRankBilinear)
    bilinear: bool = False
    # the energy tilts the noise: p ∝ q·exp(−E) (sgnn_ebm's docstring; adaptive noise only)
    tilt: bool = False
    # Gibbs noise: sweeps of the energy per training batch (the released code's GS_iteration=2)
    noise_sweeps: int = 2
    # missing labels take the noise sample's values in the NCE (released --filling_missing_data)
    fill_missing: bool = False
    nce_samples: int = 4
    gibbs_sweeps: int = 20
    gibbs_chains: int = 4
    # balancing baselines
    alpha: float = 0.1
    dwa_temperature: float = 2.0
    eval_batch_size: int = 256
    workers: int = 1
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"  # Lightning precision: 32-true | bf16-mixed | 16-mixed
    # resume checkpoint: after an epoch that improved, a unit's last epoch, and otherwise at
    # most this often (0: every epoch); STL's log grows by one row per task-epoch, so writing
    # it all every epoch cost minutes per cell on hundreds of small tasks
    checkpoint_every_s: float = 30.0
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise InvalidInputError for settings that cannot work."""
        if self.method not in METHODS:
            raise InvalidInputError(
                f"--method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )
        if self.noise not in NOISES:
            raise InvalidInputError(
                f"--noise must be one of {', '.join(NOISES)}, got {self.noise!r}"
            )
        for name in (
            "epochs",
            "batch_size",
            "gibbs_sweeps",
            "gibbs_chains",
            "nce_samples",
            "noise_sweeps",
        ):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"--{name.replace('_', '-')} must be >= 1")
        if self.checkpoint_every_s < 0:
            raise InvalidInputError(
                f"--checkpoint-every must be >= 0 seconds, got {self.checkpoint_every_s}"
            )
        if not 0.0 <= self.smoothing < 1.0:
            raise InvalidInputError(f"--smoothing must be in [0, 1), got {self.smoothing}")
        if self.noise_model is not None and (self.method != "sgnn-ebm" or self.noise != "fixed"):
            raise InvalidInputError("--noise-model is for --method sgnn-ebm --noise fixed")
        if self.bilinear and self.method not in STRUCTURED:
            raise InvalidInputError("--bilinear is for --method sgnn or sgnn-ebm")
        if self.tilt and (self.method != "sgnn-ebm" or self.noise != "adaptive"):
            raise InvalidInputError("--tilt is for --method sgnn-ebm --noise adaptive")
        if self.fill_missing and self.method != "sgnn-ebm":
            raise InvalidInputError("--fill-missing is for --method sgnn-ebm")
        if not 0.0 <= self.noise_mix <= 1.0:
            raise InvalidInputError(f"--noise-mix must be in [0, 1], got {self.noise_mix}")


class _Recorder(L.Callback):
    """After each epoch: log row, best-validation weights, resumable checkpoint (rank 0)."""

    def __init__(self, run: MultitaskRun):
        self.run = run

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: MultitaskModule) -> None:
        run = self.run
        row: dict[str, Any] = {}
        if run.is_stl:
            row["task"] = run.task_names[run.unit]
        row["epoch"] = run.epochs_done + 1
        row.update(pl_module.finish_train_epoch())
        row.update(pl_module.epoch_metrics)
        pl_module.epoch_metrics = {}
        row["time_s"] = round(time.time() - run.epoch_start, 3)
        run.epoch_start = time.time()
        run.epochs_done += 1
        if trainer.is_global_zero:
            run.record_epoch(row, pl_module, trainer.optimizers[0])


TRAIN_SPLIT_HINT = (
    "check --split and bad_rows.csv (a scaffold split of a few molecules can leave most of "
    "them outside training)"
)


def _missing(score: float | None) -> bool:
    return score is None or score != score


class MultitaskRun(RunCounters):
    """State of one multi-task run in ``out_dir`` (fresh or resumed)."""

    def __init__(
        self,
        inp: MultitaskInput,
        split: Split,
        graph: TaskGraph | None,
        cfg: MultitaskConfig,
        out_dir: Path,
        part: tuple[int, int] | None = None,
    ):
        cfg.check()
        split.check_trainable(TRAIN_SPLIT_HINT)
        if part is not None and (cfg.method != "stl" or not 0 <= part[0] < part[1]):
            raise InvalidInputError(f"a run part {part} is for --method stl, as (i, K), i < K")
        self.part = part
        self.inp, self.split, self.cfg = inp, split, cfg
        self.graph = graph if cfg.method in STRUCTURED else None
        if cfg.method in STRUCTURED and graph is None:
            raise InvalidInputError(f"--method {cfg.method} needs a task graph")
        self.task_names = list(inp.task_names)
        self.out_dir = Path(out_dir)
        self.noise_net, self.noise_info = None, None
        if cfg.noise_model is not None:
            from fewmol.multitask.predict import load_noise_model

            self.noise_net, self.noise_info = load_noise_model(
                cfg.noise_model, self.task_names, cfg.featurizer
            )
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.is_stl = cfg.method == "stl"
        self.units = list(range(len(self.task_names))) if self.is_stl else [0]
        self.unit = 0
        self.epochs_done = 0
        self.log_rows: list[dict[str, Any]] = []
        self.best: dict[str, dict[str, Any]] = {}
        self.wall_before = 0.0
        self.epoch_start = time.time()
        self.started = time.time()
        self.saved_at = time.time()  # last resume checkpoint
        self.init_cfg: dict[str, Any] | None = None

    # -------------------------------------------------------------- config
    def model_config(self) -> dict[str, Any]:
        """config.json content: everything needed to rebuild and re-run the model."""
        cfg = self.cfg
        enc_hp = (
            dict(self.init_cfg["encoder"], dropout=cfg.dropout)
            if self.init_cfg
            else encoder_hparams(cfg.featurizer, cfg.num_layers, cfg.dim, cfg.dropout, cfg.jk)
        )
        structured = None
        energy = None
        if cfg.method in STRUCTURED:
            structured = {
                "task_dim": cfg.task_dim,
                "state_dim": cfg.state_dim,
                "hidden": cfg.sgnn_hidden,
                "num_layers": cfg.sgnn_layers,
                "gcn_layers": cfg.gcn_layers,
                "dropout": cfg.dropout,
                "smoothing": cfg.smoothing,
            }
            if cfg.bilinear:  # absent when off, so dirs written before the option stay resumable
                structured["bilinear"] = True
        if cfg.method == "sgnn-ebm":
            energy = {
                "lambda": cfg.lam,
                "noise": cfg.noise,
                "noise_mix": cfg.noise_mix,
                "nce_samples": cfg.nce_samples,
                "gibbs_sweeps": cfg.gibbs_sweeps,
                "gibbs_chains": cfg.gibbs_chains,
                "noise_model": self.noise_info,
            }
            # absent when off, so dirs written before these options stay resumable
            if cfg.tilt:
                energy["tilt"] = True
            if cfg.noise == "gibbs":
                energy["noise_sweeps"] = cfg.noise_sweeps
            if cfg.fill_missing:
                energy["fill_missing"] = True
        graph_info = None
        if self.graph is not None:
            graph_info = {
                "file": GRAPH_FILE,
                "source": self.graph.source,
                "undirected_edges": self.graph.num_undirected_edges,
            }
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": "multitask",
            "method": cfg.method,
            "fewmol_version": __version__,
            "git_commit": git_commit(),
            "featurizer": cfg.featurizer,
            "encoder": enc_hp,
            "pooling": cfg.pooling,
            "task_type": "classification",
            "task_names": self.task_names,
            "smiles_col": self.inp.smiles_col,
            "structured": structured,
            "energy": energy,
            "task_graph": graph_info,
            "weights": f"{STL_DIR}/" if self.is_stl else "model.safetensors",
            "select_metric": "roc_auc",
            "training": dataclasses.asdict(cfg),
            "data": _jsonable(self.inp.info),
            "split": self.split.kind,
            "init_from": self.init_cfg.get("source") if self.init_cfg else None,
        }

    # -------------------------------------------------------------- building
    def _module(self, config: dict[str, Any], unit: int) -> MultitaskModule:
        cfg = self.cfg
        L.seed_everything(cfg.seed + unit, workers=True, verbose=False)
        net = build_net(config, self.graph, 1 if self.is_stl else None)
        if self.init_cfg is not None:
            encoder, _ = load_pretrained_encoder(cfg.init)
            net.encoder.load_state_dict(encoder.state_dict())
        y = self._labels(unit)[self.split.train]
        balancer = make_balancer(cfg.method, net.num_tasks, cfg.alpha, cfg.dwa_temperature)
        return MultitaskModule(
            net,
            cfg.method,
            balancer,
            cfg.lr,
            cfg.weight_decay,
            cfg.encoder_lr,
            lam=cfg.lam,
            noise=cfg.noise,
            noise_mix=cfg.noise_mix,
            noise_prob=label_frequencies(y),
            nce_samples=cfg.nce_samples,
            gibbs_sweeps=cfg.gibbs_sweeps,
            gibbs_chains=cfg.gibbs_chains,
            eval_seed=cfg.seed,
            noise_net=self.noise_net,
            tilt=cfg.tilt,
            noise_sweeps=cfg.noise_sweeps,
            fill_missing=cfg.fill_missing,
        )

    def _labels(self, unit: int) -> np.ndarray:
        y = self.inp.y.astype(np.float32)
        return y[:, [unit]] if self.is_stl else y

    def _unit_split(self, unit: int) -> Split:
        """STL trains and scores task ``unit`` on the molecules labelled for it only."""
        if not self.is_stl:
            return self.split
        lab = np.isfinite(self.inp.y[:, unit])
        part = [
            getattr(self.split, k)[lab[getattr(self.split, k)]] for k in ("train", "valid", "test")
        ]
        return Split(*part, kind=self.split.kind)

    def _weights_path(self, unit: int) -> Path:
        if self.is_stl:
            return self.out_dir / STL_DIR / f"task_{unit:04d}.safetensors"
        return self.out_dir / "model.safetensors"

    # -------------------------------------------------------------- per-epoch bookkeeping
    def record_epoch(self, row: dict, module: MultitaskModule, opt: torch.optim.Optimizer) -> None:
        """Append the log row, keep the best-validation weights, write the resume checkpoint.

        The checkpoint (and train_log.csv) is written whenever the best weights change, at
        the unit's last epoch, and otherwise once ``checkpoint_every_s`` has passed: a kill
        loses at most that much training, and a resume re-runs those epochs identically.
        """
        self.log_rows.append(row)
        key = str(self.unit)
        valid = row.get("valid_roc_auc")
        best = self.best.get(key)
        # Until some epoch has a validation score (none ever will when no valid task has both
        # classes), the latest epoch is the one kept, as `fewmol finetune` does.
        improved = (
            best is None
            or (valid is not None and is_better("roc_auc", valid, best["valid"]))
            or (_missing(valid) and _missing(best["valid"]))
        )
        if improved:
            self.best[key] = {"epoch": row["epoch"], "valid": valid}
            save_tensors(self._weights_path(self.unit), module.net.state_dict())
        due = time.time() - self.saved_at >= self.cfg.checkpoint_every_s
        if not (improved or due or self.epochs_done >= self.cfg.epochs):
            return
        self.saved_at = time.time()
        write_text(self.out_dir / "train_log.csv", pd.DataFrame(self.log_rows).to_csv(index=False))
        state = {"unit": self.unit, **self.counters()}
        save_training_state(self.ckpt_dir / "last.safetensors", module.train_state, opt, state)

    def _restore(self, config: dict[str, Any]) -> MultitaskModule | None:
        """Counters from the last checkpoint; the module of an unfinished unit, else None."""
        path = self.ckpt_dir / "last.safetensors"
        old = read_json(self.out_dir / "config.json", "model config")
        for key in ("method", "task_names", "featurizer", "encoder", "structured", "energy"):
            if old.get(key) != _jsonable(config[key]):
                raise InvalidInputError(
                    f"cannot resume {self.out_dir}: its {key} differs from this run's; "
                    "use another --out or drop --resume"
                )
        # The unit comes from the weights file's own header: the .json copy is written after
        # it and may be one epoch behind if the run stopped in between.
        _, meta = load_tensors_with_meta(path)
        try:
            unit = int(json.loads(meta["state"])["unit"])
        except (KeyError, ValueError, TypeError):
            raise InvalidInputError(f"cannot resume from {path}: no training state") from None
        old_epochs = (old.get("training") or {}).get("epochs")
        if self.is_stl and unit > 0 and old_epochs is not None and old_epochs != self.cfg.epochs:
            # the finished tasks would keep their old budget while the rest get the new one
            raise InvalidInputError(
                f"cannot resume {self.out_dir} with --epochs {self.cfg.epochs}: STL tasks "
                f"finished with {old_epochs} epochs; resume with --epochs {old_epochs} or "
                "start over (another --out, or drop --resume)"
            )
        module = self._module(config, unit)
        module.optimizer_state, state = load_training_state(path, module.train_state)
        self.unit = int(state["unit"])
        self.restore_counters(state)
        if self.epochs_done >= self.cfg.epochs:
            self.unit, self.epochs_done = self.unit + 1, 0
            return None
        return module

    # -------------------------------------------------------------- main
    def fit(self, graphs: GraphSet, resume: bool = False) -> dict[str, Any]:
        """Train (or continue training) and write the complete model dir; return metrics."""
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._load_init()
        config = self.model_config()
        module = None
        if resume and (self.ckpt_dir / "last.safetensors").exists():
            module = self._restore(config)
        self._write_setup(config)

        while self.unit < len(self.units):
            if self.part is not None and self.unit % self.part[1] != self.part[0]:
                self.unit += 1  # another part's task
                continue
            if module is None:
                module = self._module(config, self.unit)
            unit_split = self._unit_split(self.unit)
            if len(unit_split.train) == 0:
                # STL task whose labels all fell into valid/test: nothing to fit, keep it
                # untrained (its scores show that) rather than stop the whole run.
                save_tensors(self._weights_path(self.unit), module.net.state_dict())
                self.best[str(self.unit)] = {"epoch": 0, "valid": None}
                self.unit, self.epochs_done, module = self.unit + 1, 0, None
                continue
            remaining = cfg.epochs - self.epochs_done
            dm = GraphDataModule(
                graphs,
                self._labels(self.unit),
                unit_split,
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
            self.unit, self.epochs_done, module = self.unit + 1, 0, None
        if self.part is not None:
            return self._finish_part(graphs)
        return self.finish(graphs)

    def _load_init(self) -> None:
        """Read the --init encoder's config (its featuriser must be this run's)."""
        if self.cfg.init:
            self.init_cfg = load_init_encoder(self.cfg.init, self.cfg.featurizer)[1]

    def _write_setup(self, config: dict[str, Any]) -> None:
        """config.json, the task graph and the split: what predict and resume read back."""
        write_json(self.out_dir / "config.json", config)
        if self.graph is not None:
            self.graph.to_json(self.out_dir / GRAPH_FILE)
        self.split.to_json(self.out_dir / "split.json")

    def _finish_part(self, graphs: GraphSet) -> dict[str, Any]:
        """Predict the part's own tasks and write its record (what merge_stl_parts reads).

        Predicting every molecule for its tasks here lets the parts share that work too: for
        ToxCast's 617 one-task models it is over an hour on one thread.
        """
        assert self.part is not None
        from fewmol.multitask.predict import load_predictor

        own = [t for t in self.units if t % self.part[1] == self.part[0]]
        preds = load_predictor(self.out_dir).predict(
            graphs, batch_size=self.cfg.eval_batch_size, tasks=own
        )
        save_tensors(self.out_dir / PART_PREDICTIONS, {"predictions": torch.from_numpy(preds)})
        write_text(self.out_dir / "train_log.csv", pd.DataFrame(self.log_rows).to_csv(index=False))
        record = {
            "part": list(self.part),
            "n_tasks": len(self.task_names),
            "epochs": self.cfg.epochs,
            "log_rows": self.log_rows,
            "best": self.best,
            "wall_s": round(self.wall_before + time.time() - self.started, 3),
        }
        record = json_safe(record)  # NaN scores as None, as a resumed run reads them back
        write_json(self.out_dir / PART_FILE, record)
        return record

    def merge_parts(self, part_dirs: list[Path], graphs: GraphSet) -> dict[str, Any]:
        """Join finished STL parts (dirs of this run's data, split and settings) into out_dir."""
        if not self.is_stl or self.part is not None:
            raise InvalidInputError("only a whole STL run merges parts")
        parts = [read_json(Path(d) / PART_FILE, "STL part record") for d in part_dirs]
        k = len(parts)
        got = sorted(tuple(p["part"]) for p in parts)
        if got != [(i, k) for i in range(k)]:
            raise InvalidInputError(f"STL parts {got} are not the {k} parts of one run")
        for p, d in zip(parts, part_dirs):
            if p["n_tasks"] != len(self.task_names) or p["epochs"] != self.cfg.epochs:
                raise InvalidInputError(f"STL part {d} was trained with other tasks or epochs")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # a one-process run's resume state left here (e.g. before --force) is not this run's
        shutil.rmtree(self.ckpt_dir, ignore_errors=True)
        self._load_init()
        self._write_setup(self.model_config())
        order = {name: t for t, name in enumerate(self.task_names)}
        self.log_rows, self.best = [], {}
        preds = np.full((len(graphs), len(self.task_names)), np.nan, np.float32)
        for p, d in zip(parts, part_dirs):
            i, k = p["part"]
            own = [t for t in range(len(self.task_names)) if t % k == i]
            preds[:, own] = load_tensors(Path(d) / PART_PREDICTIONS)["predictions"].numpy()
            self.log_rows += p["log_rows"]
            self.best.update(p["best"])
            for t in p["best"]:
                # moved, not copied (ToxCast's 617 models are ~4 GB); a merge cut short and run
                # again finds the ones it moved already in place
                name = f"task_{int(t):04d}.safetensors"
                src, dst = Path(d) / STL_DIR / name, self.out_dir / STL_DIR / name
                if src.is_file():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, dst)
                elif not dst.is_file():
                    raise InvalidInputError(f"STL part {d} has no weights for task {int(t)}")
        # task order, then epoch, as one run over all tasks logs them
        self.log_rows.sort(key=lambda r: (order[r["task"]], r["epoch"]))
        self.wall_before = float(sum(p["wall_s"] for p in parts))
        self.started = time.time()
        write_text(self.out_dir / "train_log.csv", pd.DataFrame(self.log_rows).to_csv(index=False))
        return self.finish(graphs, preds)

    # -------------------------------------------------------------- results
    def _summary(self, rows: list[dict], part: str) -> dict[str, float]:
        """``part`` metrics of the given log rows (one row per run; STL: averaged over tasks)."""
        keys = [k for k in rows[0] if k.startswith(part + "_")] if rows else []
        out: dict[str, float] = {}
        for k in keys:
            vals = [r.get(k) for r in rows]
            vals = [float(v) for v in vals if v is not None and np.isfinite(float(v))]
            name = k[len(part) + 1 :]
            if name == "n_tasks_scored":
                out[name] = float(sum(vals))
            elif vals:
                out[name] = float(np.mean(vals))
        return out

    def finish(self, graphs: GraphSet, preds: np.ndarray | None = None) -> dict[str, Any]:
        """Write metrics.json and predictions.csv from the best-validation weights."""
        best_rows, last_rows = [], []
        for u in self.units:
            task = self.task_names[u] if self.is_stl else None
            rows = [r for r in self.log_rows if not self.is_stl or r.get("task") == task]
            if not rows:
                continue
            b = self.best.get(str(u), {}).get("epoch")
            best_rows.append(next((r for r in rows if r["epoch"] == b), rows[-1]))
            last_rows.append(rows[-1])
        wall = self.wall_before + time.time() - self.started
        metrics = {
            "method": self.cfg.method,
            "select_metric": "roc_auc",
            "epochs": self.cfg.epochs,
            "epochs_done": self.epochs_done_total(),
            "best_epoch": None if self.is_stl else self.best.get("0", {}).get("epoch"),
            "best_valid": self._summary(best_rows, "valid"),
            "test_at_best_valid": self._summary(best_rows, "test"),
            "test_at_last_epoch": self._summary(last_rows, "test"),
            "valid_at_last_epoch": self._summary(last_rows, "valid"),
            "split": self.split.kind,
            "split_sizes": self.split.sizes(),
            "n_molecules": len(self.inp.dataset.smiles),
            "n_tasks": len(self.task_names),
            "task_graph_edges": None if self.graph is None else self.graph.num_undirected_edges,
            "seed": self.cfg.seed,
            "wall_time_s": round(wall, 2),
            "hardware": hardware(),
            "git_commit": git_commit(),
        }
        if self.is_stl:
            metrics["stl_note"] = "one model per task; metrics averaged over tasks"
            metrics["best_epoch_per_task"] = {
                self.task_names[int(k)]: v["epoch"] for k, v in self.best.items()
            }
        write_json(self.out_dir / "metrics.json", metrics)
        self.write_predictions(graphs, preds)
        return metrics

    def epochs_done_total(self) -> int:
        """Epochs trained (per task for STL: the minimum over tasks)."""
        if not self.log_rows:
            return 0
        if not self.is_stl:
            return int(self.log_rows[-1]["epoch"])
        per = pd.DataFrame(self.log_rows).groupby("task")["epoch"].max()
        return int(per.min()) if len(per) == len(self.task_names) else 0

    def write_predictions(self, graphs: GraphSet, preds: np.ndarray | None = None) -> None:
        """predictions.csv: every kept molecule with its split, labels and predictions."""
        from fewmol.multitask.predict import load_predictor

        if preds is None:  # (STL parts bring their own columns, predicted side by side)
            predictor = load_predictor(self.out_dir)
            preds = predictor.predict(graphs, batch_size=self.cfg.eval_batch_size)
        part = np.full(len(self.inp.dataset.smiles), "", dtype=object)
        for name in ("train", "valid", "test"):
            part[getattr(self.split, name)] = name
        df = pd.DataFrame({"row": self.inp.rows, "smiles": self.inp.input_smiles, "split": part})
        cols = {}
        for t, name in enumerate(self.task_names):
            cols[name] = self.inp.y[:, t]
            cols[f"{name}_pred"] = preds[:, t]
        df = pd.concat([df, pd.DataFrame(cols)], axis=1)
        write_text(self.out_dir / "predictions.csv", df.to_csv(index=False))


def _jsonable(obj: Any) -> Any:
    """A JSON round trip (numpy values -> numbers/lists), so configs compare equal after reading."""

    def default(o: Any) -> Any:
        if hasattr(o, "tolist"):
            return o.tolist()
        return str(o)

    return json.loads(json.dumps(json_safe(obj), default=default))


def featurize_input(inp: MultitaskInput, featurizer: str = "hu2019", workers: int = 1) -> GraphSet:
    """GraphSet of the kept molecules (cached on disk)."""
    return featurize_to_graphset(inp.dataset.smiles, featurizer, workers=workers)


def train_multitask(
    inp: MultitaskInput,
    split: Split,
    graph: TaskGraph | None,
    cfg: MultitaskConfig,
    out_dir: str | Path,
    resume: bool = False,
    graphs: GraphSet | None = None,
    part: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Train one multi-task model into ``out_dir``; return its metrics dict.

    ``part=(i, K)`` (STL only) trains the tasks t with t % K == i and returns the part's
    record instead; ``merge_stl_parts`` joins the K part dirs.
    """
    if graphs is None:
        graphs = featurize_input(inp, cfg.featurizer, cfg.workers)
    run = MultitaskRun(inp, split, graph, cfg, Path(out_dir), part=part)
    return run.fit(graphs, resume=resume)


def _one_torch_thread() -> None:
    """A process of train_stl_jobs: one thread each, so N processes fill N cores."""
    torch.set_num_threads(1)


def train_stl_jobs(
    inp: MultitaskInput,
    split: Split,
    cfg: MultitaskConfig,
    out_dir: str | Path,
    jobs: int,
    resume: bool = False,
    graphs: GraphSet | None = None,
) -> dict[str, Any]:
    """STL in ``jobs`` processes side by side (part i of ``jobs`` each, in out_dir/parts/),
    merged into ``out_dir``; return its metrics. ``resume`` continues the parts."""
    if cfg.method != "stl" or jobs < 1:
        raise InvalidInputError("--stl-jobs is for --method stl, with at least 1 process")
    cfg.check()
    split.check_trainable(TRAIN_SPLIT_HINT)
    out_dir = Path(out_dir)
    if graphs is None:
        graphs = featurize_input(inp, cfg.featurizer, cfg.workers)
    parts = out_dir / "parts"
    if not resume and parts.exists():
        shutil.rmtree(parts)
    part_dirs = [parts / f"part{i}of{jobs}" for i in range(jobs)]
    todo = [i for i, d in enumerate(part_dirs) if not (d / PART_FILE).is_file()]
    quiet = dataclasses.replace(cfg, progress=False)  # N progress bars would garble each other
    if todo:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
        with ProcessPoolExecutor(len(todo), mp_context=ctx, initializer=_one_torch_thread) as pool:
            args = (inp, split, None, quiet)
            futures = [
                pool.submit(train_multitask, *args, part_dirs[i], resume, graphs, (i, jobs))
                for i in todo
            ]
            for f in futures:
                f.result()  # the first failure is raised here, as in one process
    return merge_stl_parts(inp, split, cfg, out_dir, part_dirs, graphs)


def merge_stl_parts(
    inp: MultitaskInput,
    split: Split,
    cfg: MultitaskConfig,
    out_dir: str | Path,
    part_dirs: list[Path],
    graphs: GraphSet | None = None,
) -> dict[str, Any]:
    """Join the K finished part dirs of one STL run into the model dir ``out_dir``; metrics."""
    if graphs is None:
        graphs = featurize_input(inp, cfg.featurizer, cfg.workers)
    run = MultitaskRun(inp, split, None, cfg, Path(out_dir))
    return run.merge_parts([Path(d) for d in part_dirs], graphs)
