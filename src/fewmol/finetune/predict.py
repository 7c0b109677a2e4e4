"""Predictions and embeddings for new molecules from a model dir (one output row per input row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fewmol.data.store import featurize_to_graphset
from fewmol.data.tables import Table
from fewmol.errors import ModelFileError
from fewmol.finetune.module import FinetuneModule
from fewmol.finetune.run import embed_array, predict_array
from fewmol.io.modeldir import is_model_dir, load_model


def model_members(path: str | Path) -> list[Path]:
    """The model dirs behind ``path``: itself, or its ``seed*/`` runs (averaged as an ensemble)."""
    path = Path(path)
    if is_model_dir(path):
        return [path]
    members = sorted(p for p in path.glob("seed*") if is_model_dir(p))
    if not members:
        raise ModelFileError(
            f"{path} is not a fewmol model dir (no config.json + model.safetensors) and has no "
            "seed*/ model dirs; point at the --out of `fewmol finetune`"
        )
    return members


def load_module(model_dir: Path) -> tuple[FinetuneModule, dict[str, Any]]:
    """A FinetuneModule in eval mode from a model dir."""
    model, cfg = load_model(model_dir)
    sc = cfg.get("target_scaling") or {}
    module = FinetuneModule(
        model,
        cfg["task_type"],
        y_mean=np.asarray(sc["mean"], np.float32) if sc else None,
        y_std=np.asarray(sc["std"], np.float32) if sc else None,
    )
    return module.eval(), cfg


def _frame(table: Table) -> pd.DataFrame:
    """Input rows in order with validity flags (all input columns passed through)."""
    if table.raw is not None:
        df = table.raw.copy()
    else:
        df = pd.DataFrame(index=range(table.n_input))
    df.insert(0, "row", np.arange(table.n_input))
    valid = table.kept_mask()
    reasons = (
        table.bad_rows.groupby("row")["reason"].agg("; ".join)
        if len(table.bad_rows)
        else pd.Series(dtype=str)
    )
    df["valid"] = valid
    df["error"] = [reasons.get(i, "") for i in range(table.n_input)]
    return df


def predict_table(model_path: str | Path, table: Table, workers: int = 1) -> pd.DataFrame:
    """Per-task predictions for every input row (NaN where the row is invalid).

    Classification columns hold P(label = 1); regression columns are in the training units.
    With several seed members the mean is reported plus a ``<task>_std`` column.
    """
    members = model_members(model_path)
    preds = []
    cfg: dict[str, Any] = {}
    graphs = None
    for m in members:
        module, cfg = load_module(m)
        if graphs is None:
            graphs = featurize_to_graphset(table.smiles, cfg["featurizer"], workers=workers)
        preds.append(predict_array(module, graphs))
    stack = np.stack(preds)
    df = _frame(table)
    rows = table.rows
    for t, name in enumerate(cfg["target_names"]):
        col = np.full(table.n_input, np.nan)
        col[rows] = stack[:, :, t].mean(0)
        df[f"{name}_pred"] = col
        if len(members) > 1:
            sd = np.full(table.n_input, np.nan)
            sd[rows] = stack[:, :, t].std(0)
            df[f"{name}_std"] = sd
    return df


def embed_table(model_path: str | Path, table: Table, workers: int = 1) -> pd.DataFrame:
    """Pooled encoder embeddings (``emb_0`` ...) for every input row (NaN where invalid)."""
    member = model_members(model_path)[0]
    module, cfg = load_module(member)
    graphs = featurize_to_graphset(table.smiles, cfg["featurizer"], workers=workers)
    emb = embed_array(module, graphs).astype(np.float32)
    full = np.full((table.n_input, emb.shape[1]), np.nan, dtype=np.float32)
    full[table.rows] = emb
    df = _frame(table)[["row", "valid", "error"]]
    df.insert(1, "smiles", table.raw[table.smiles_col].to_numpy() if table.raw is not None else "")
    emb_df = pd.DataFrame(full, columns=[f"emb_{i}" for i in range(full.shape[1])])
    return pd.concat([df.reset_index(drop=True), emb_df], axis=1)
