"""Predictions for new molecules from a multi-task model dir (one output row per input row).

Every task gets a ``<task>_pred`` column with P(label = 1): Gibbs marginals of the joint label
distribution for ``sgnn-ebm``, sigmoids of the task logits for the other methods. The model is
rebuilt from ``config.json`` and ``task_graph.json`` and loaded from safetensors (no pickle).
Gibbs sampling uses a fixed seed, so the same input gives the same output. Labels already
measured for some tasks (input columns named like the tasks) can be given as evidence: SGNN-EBM
then samples the other labels conditioned on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fewmol.data.collate import GraphSet
from fewmol.data.loaders import predict_batches
from fewmol.data.store import featurize_to_graphset
from fewmol.data.tables import Table
from fewmol.errors import InvalidInputError, ModelFileError
from fewmol.io.checkpoint import load_state_into, load_tensors, read_json
from fewmol.io.modeldir import read_model_config
from fewmol.multitask.model import METHODS, build_net
from fewmol.multitask.module import MultitaskModule
from fewmol.multitask.task_graph import TaskGraph
from fewmol.training import inference_autocast


def load_noise_model(
    model_dir: str | Path, task_names: list[str], featurizer: str
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A trained multi-task net to serve as SGNN-EBM's fixed noise, and what to record of it.

    It must predict the same tasks, in the same order, from the same featurisation; STL dirs
    (one weights file per task) are refused.
    """
    from fewmol.io.modeldir import weights_sha256

    d = Path(model_dir)
    if not is_multitask_dir(d):
        raise InvalidInputError(f"--noise-model {d} is not a multi-task model dir")
    pred = MultitaskPredictor(d)
    if pred.method == "stl":
        raise InvalidInputError(f"--noise-model {d} is an STL run; give one model for all tasks")
    if pred.task_names != list(task_names):
        raise InvalidInputError(
            f"--noise-model {d} predicts other tasks ({len(pred.task_names)}) than this run "
            f"({len(task_names)}), or in another order"
        )
    if pred.featurizer != featurizer:
        raise InvalidInputError(
            f"--noise-model {d} uses featurizer {pred.featurizer!r}, this run {featurizer!r}"
        )
    net = pred._module(d / "model.safetensors").net
    # absolute, so a resume from another working directory names the same model
    info = {"path": str(d.resolve()), "method": pred.method, "weights_sha256": weights_sha256(d)}
    return net, info


def is_multitask_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a config.json of ``"kind": "multitask"`` (never raises)."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return False
    try:
        return read_json(cfg).get("kind") == "multitask"
    except (ModelFileError, OSError):
        return False


class MultitaskPredictor:
    """A multi-task model dir loaded for inference (CPU, eval mode)."""

    def __init__(self, model_dir: str | Path):
        self.model_dir = Path(model_dir)
        cfg = read_model_config(self.model_dir)
        if cfg.get("kind") != "multitask" or cfg.get("method") not in METHODS:
            raise ModelFileError(f"{self.model_dir} is not a multitask model dir")
        if not isinstance(cfg.get("task_names"), list):
            raise ModelFileError(f"{self.model_dir}/config.json lacks 'task_names'")
        self.cfg: dict[str, Any] = cfg
        self.method: str = cfg["method"]
        self.task_names: list[str] = list(cfg["task_names"])
        self.featurizer: str = cfg["featurizer"]
        self.graph: TaskGraph | None = None
        if cfg.get("task_graph"):
            path = self.model_dir / cfg["task_graph"]["file"]
            try:
                self.graph = TaskGraph.from_json(path)
            except (InvalidInputError, OSError, ValueError) as e:
                raise ModelFileError(f"cannot read the task graph {path}: {e}") from None
            if self.graph.task_names != self.task_names:
                raise ModelFileError(f"{path} names other tasks than {self.model_dir}/config.json")

    def _module(self, weights: Path, num_tasks: int | None = None) -> MultitaskModule:
        try:
            net = build_net(self.cfg, self.graph, num_tasks)
        except (KeyError, TypeError, ValueError) as e:  # a config.json edited by hand
            why = f"it lacks {e}" if isinstance(e, KeyError) else str(e)
            raise ModelFileError(
                f"{self.model_dir}/config.json cannot build its net: {why}"
            ) from None
        load_state_into(net, load_tensors(weights), str(weights))
        energy = self.cfg.get("energy") or {}
        try:
            module = MultitaskModule(
                net,
                self.method,
                lam=energy.get("lambda", 1.0),
                noise=energy.get("noise", "adaptive"),
                gibbs_sweeps=energy.get("gibbs_sweeps", 20),
                gibbs_chains=energy.get("gibbs_chains", 1),
                noise_mix=energy.get("noise_mix", 0.1),
                tilt=bool(energy.get("tilt", False)),
                noise_sweeps=energy.get("noise_sweeps", 2),
                fill_missing=bool(energy.get("fill_missing", False)),
            )
        except (TypeError, ValueError) as e:  # a config.json edited by hand
            raise ModelFileError(f"{self.model_dir}/config.json: energy: {e}") from None
        return module.to("cpu").eval()

    @torch.no_grad()
    def _run(
        self,
        module: MultitaskModule,
        graphs: GraphSet,
        batch_size: int,
        evidence: np.ndarray | None,
        seed: int,
        precision: str,
    ) -> np.ndarray:
        gen = torch.Generator().manual_seed(seed)
        outs, start = [], 0
        for batch in predict_batches(graphs, batch_size):
            ev = None
            if evidence is not None:
                ev = torch.from_numpy(evidence[start : start + batch.num_graphs].astype(np.float32))
            with inference_autocast(precision):
                outs.append(module.predict_proba(batch, ev, gen).float().numpy())
            start += batch.num_graphs
        t = module.net.num_tasks
        return np.concatenate(outs) if outs else np.zeros((0, t), np.float32)

    def predict(
        self,
        graphs: GraphSet,
        batch_size: int = 256,
        evidence: np.ndarray | None = None,
        seed: int = 0,
        precision: str = "32-true",
        tasks: list[int] | None = None,
    ) -> np.ndarray:
        """P(y_t = 1 | x) for every molecule and task, (N, T).

        ``tasks`` (STL only): predict just these task indices, (N, len(tasks)); an STL part
        has the weights of its own tasks only.

        ``evidence`` (N, T) holds known labels (0/1, NaN unknown): SGNN-EBM conditions on them
        (Gibbs sampling with those labels clamped); the other methods ignore it. ``precision``
        as ``fewmol predict --precision`` (the networks under autocast; Gibbs in float32).
        """
        if evidence is not None and evidence.shape != (len(graphs), len(self.task_names)):
            raise ValueError(f"evidence must be {(len(graphs), len(self.task_names))}")
        if self.method != "stl":
            if tasks is not None:
                raise ValueError("tasks= is for STL model dirs (one model per task)")
            module = self._module(self.model_dir / "model.safetensors")
            return self._run(module, graphs, batch_size, evidence, seed, precision)
        cols, module = [], None
        for t in range(len(self.task_names)) if tasks is None else tasks:  # one model at a time
            path = self.model_dir / self.cfg.get("weights", "tasks/") / f"task_{t:04d}.safetensors"
            if module is None:
                module = self._module(path, 1)
            else:  # every task's net has one shape: reload weights, no re-initialised build
                load_state_into(module.net, load_tensors(path), str(path))
            cols.append(self._run(module, graphs, batch_size, None, seed, precision)[:, 0])
        return np.stack(cols, axis=1) if cols else np.zeros((len(graphs), 0), np.float32)


def load_predictor(model_dir: str | Path) -> MultitaskPredictor:
    """A :class:`MultitaskPredictor` for ``model_dir``."""
    return MultitaskPredictor(model_dir)


def _frame(table: Table) -> pd.DataFrame:
    """Input rows in order with validity flags (all input columns passed through)."""
    df = table.raw.copy() if table.raw is not None else pd.DataFrame(index=range(table.n_input))
    df.insert(0, "row", np.arange(table.n_input))
    reasons = (
        table.bad_rows.groupby("row")["reason"].agg("; ".join)
        if len(table.bad_rows)
        else pd.Series(dtype=str)
    )
    df["valid"] = table.kept_mask()
    df["error"] = [reasons.get(i, "") for i in range(table.n_input)]
    return df


def evidence_from_table(table: Table, task_names: list[str]) -> np.ndarray:
    """Known labels from input columns named like tasks (0/1 or -1/1; anything else unknown)."""
    ev = np.full((table.n_kept, len(task_names)), np.nan, dtype=np.float32)
    if table.raw is None:
        return ev
    for t, name in enumerate(task_names):
        if name in table.raw.columns:
            v = pd.to_numeric(table.raw[name].iloc[table.rows], errors="coerce").to_numpy(float)
            v = np.where(v == -1, 0.0, v)
            ev[:, t] = np.where(np.isin(v, (0.0, 1.0)), v, np.nan)
    return ev


def label_columns(table: Table, task_names: list[str]) -> list[str]:
    """The input columns named like one of the model's tasks, in task order."""
    cols = set(table.raw.columns) if table.raw is not None else set()
    return [name for name in task_names if name in cols]


def predict_table(
    model_dir: str | Path,
    table: Table,
    workers: int = 1,
    use_labels: bool = False,
    precision: str = "32-true",
) -> pd.DataFrame:
    """Per-task probabilities for every input row (NaN where the row is invalid).

    With ``use_labels``, labels found in input columns named like the tasks are given to
    SGNN-EBM as evidence (its other predictions then condition on them; a known label's own
    column holds that label).
    """
    predictor = load_predictor(model_dir)
    graphs = featurize_to_graphset(table.smiles, predictor.featurizer, workers=workers)
    evidence = evidence_from_table(table, predictor.task_names) if use_labels else None
    preds = predictor.predict(graphs, evidence=evidence, precision=precision)
    df = _frame(table)
    cols = {}
    for t, name in enumerate(predictor.task_names):
        col = np.full(table.n_input, np.nan)
        col[table.rows] = preds[:, t]
        cols[f"{name}_pred"] = col
    return pd.concat([df.reset_index(drop=True), pd.DataFrame(cols)], axis=1)
