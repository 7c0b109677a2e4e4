"""Affinity predictions for new drug–protein pairs from a `fewmol dta` model dir.

The input is a table with one pair per row: a SMILES column and a protein sequence column
(one-letter amino acids, as the model was trained on; longer sequences are truncated to the
model's ``max_len`` as in training). Every input row comes back in order with all its columns,
``valid``/``error``, and the predicted affinity in the training units (pKd for Davis, KIBA
score). Every distinct molecule and sequence is encoded once; the MLP then scores the pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fewmol.data.dta import MAX_LEN, ProteinSet
from fewmol.data.dta_table import check_sequences, protein_column
from fewmol.data.store import featurize_to_graphset
from fewmol.data.tables import Table, read_smiles
from fewmol.dta.model import load_dta_model
from fewmol.io.modeldir import read_model_config
from fewmol.training import inference_autocast

PAIR_CHUNK = 4096  # pairs per MLP call at prediction


def is_dta_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a `fewmol dta` model (config.json of kind ``dta_model``)."""
    try:
        return read_model_config(Path(path)).get("kind") == "dta_model"
    except Exception:  # not a model dir at all: the other readers give the error
        return False


def predict_pairs(
    model_dir: str | Path,
    source: str | Path | pd.DataFrame,
    smiles_col: str | None = None,
    protein_col: str | None = None,
    batch_size: int = 256,
    workers: int = 1,
    precision: str = "32-true",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Predicted affinity for every input row, and a summary (units, counts, notes)."""
    model, cfg = load_dta_model(model_dir)
    scale = cfg.get("target_scaling") or {}
    y_mean, y_std = float(scale.get("mean", 0.0)), float(scale.get("std", 1.0))
    max_len = int(cfg.get("max_len", MAX_LEN))
    units = str(cfg.get("units", "affinity"))
    table: Table = read_smiles(source, smiles_col)
    raw = table.raw if table.raw is not None else pd.DataFrame(index=range(table.n_input))
    where = "the input table" if isinstance(source, pd.DataFrame) else f"'{source}'"
    pcol = protein_column(raw, protein_col, where)
    seq_ok, seq_why = check_sequences(raw[pcol])
    kept = np.zeros(table.n_input, dtype=bool)
    kept[table.rows] = True
    reasons = (
        table.bad_rows.groupby("row")["reason"].agg("; ".join)
        if len(table.bad_rows)
        else pd.Series(dtype=str)
    )
    errors = [
        "; ".join(r for r in (reasons.get(i, ""), seq_why[i]) if r) for i in range(table.n_input)
    ]
    valid = kept & seq_ok
    # kept molecule k is input row table.rows[k]; the pairs to predict are the valid rows
    mol_of_row = np.full(table.n_input, -1, dtype=np.int64)
    mol_of_row[table.rows] = np.arange(len(table.rows))
    rows = np.flatnonzero(valid)
    pred = np.full(table.n_input, np.nan)
    n_long = 0
    if len(rows):
        # every distinct molecule and sequence is encoded once; the MLP then scores the pairs
        # (a screen of D drugs x P proteins costs D + P encoder passes, not one per pair)
        uniq_smiles, drug_of_mol = np.unique(np.asarray(table.smiles, dtype=object).astype(str),
                                             return_inverse=True)  # fmt: skip
        graphs = featurize_to_graphset(list(uniq_smiles), cfg["featurizer"], workers=workers)
        seqs = raw[pcol].astype(str).str.strip().str.upper().to_numpy()[rows]
        uniq, prot_of_pair = np.unique(seqs, return_inverse=True)
        proteins = ProteinSet.from_sequences([f"p{i}" for i in range(len(uniq))], list(uniq))
        n_long = int((proteins.lengths() > max_len).sum())
        drug_of_pair = drug_of_mol.ravel()[mol_of_row[rows]]
        with torch.no_grad(), inference_autocast(precision):
            n_mols = len(graphs)
            chunks = (
                np.arange(s, min(s + batch_size, n_mols)) for s in range(0, n_mols, batch_size)
            )
            drug_chunks = ((ids, graphs.collate(ids)) for ids in chunks)
            drug, prot = model.embed_tables(
                drug_chunks,
                proteins.length_sorted_batches(np.arange(len(uniq)), batch_size, max_len),
                n_mols,
                len(uniq),
            )
            for s in range(0, len(rows), PAIR_CHUNK):
                d = torch.from_numpy(drug_of_pair[s : s + PAIR_CHUNK].astype(np.int64))
                p = torch.from_numpy(prot_of_pair[s : s + PAIR_CHUNK].astype(np.int64))
                out = model.pair_head(drug, prot, d, p).float()
                pred[rows[s : s + PAIR_CHUNK]] = out.numpy() * y_std + y_mean
    df = raw.copy()
    df.insert(0, "row", np.arange(table.n_input))
    df["valid"] = valid
    df["error"] = errors
    df[f"{units}_pred"] = pred
    notes = []
    if n_long:
        notes.append(
            f"{n_long} protein sequence(s) longer than {max_len} residues were truncated to "
            f"{max_len}, as in training"
        )
    summary = {
        "units": units,
        "dataset": cfg.get("dataset"),
        "protein_col": pcol,
        "n_rows": int(table.n_input),
        "n_valid": int(valid.sum()),
        "notes": notes,
    }
    return df, summary
