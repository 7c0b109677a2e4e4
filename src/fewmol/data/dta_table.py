"""Drug–target pairs from a user's table: one measured pair per row (SMILES, protein sequence,
affinity), read into the same :class:`~fewmol.data.dta.DTAData` as Davis and KIBA.

Rows are checked like ``fewmol finetune``'s (unparsable SMILES, non-numeric or missing
affinities) plus the sequence (one-letter amino-acid codes only); bad rows are listed with their
row, file line and reason, and skipped or, with ``on_invalid="error"``, refused. Drugs are the
distinct canonical SMILES, proteins the distinct sequences (upper-cased), each stored once.
Repeated measurements of one (drug, protein) pair are averaged into one pair (listed as merged
replicates), so no pair can sit in training and in the test set at once.

Splits over pairs (8-1-1, seeded): ``random``; ``cold-drug``, where valid and test drugs are
never seen in training (DeepDTA's setting 2); ``cold-protein``, the same for proteins
(setting 3). The cold splits put whole drugs (proteins) in a part, so part sizes are near,
not exactly, 8-1-1 of the pairs.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd

from fewmol.data.dta import DTAData, ProteinSet
from fewmol.data.splits import Split, random_split
from fewmol.data.tables import (
    BAD_ROW_COLUMNS,
    REPLICATE,
    Table,
    invalid_rows_error,
    read_table,
)
from fewmol.errors import InvalidInputError

PAIR_SPLITS = ("random", "cold-drug", "cold-protein")
PROTEIN_COL_NAMES = ("sequence", "protein_sequence", "target_sequence", "protein", "seq", "target")
_SEQUENCE = re.compile(r"^[A-Za-z]+$")


def protein_column(raw: pd.DataFrame, protein_col: str | None, where: str) -> str:
    """The column of protein sequences: the one named, else one named like a sequence column."""
    if protein_col is not None:
        if protein_col not in raw.columns:
            raise InvalidInputError(
                f"--protein-col {protein_col!r} is not a column of {where}; columns are: "
                f"{', '.join(map(str, raw.columns))}"
            )
        return protein_col
    by_norm = {re.sub(r"[^a-z]", "", str(c).lower()): c for c in raw.columns}
    for name in PROTEIN_COL_NAMES:
        if name.replace("_", "") in by_norm:
            return by_norm[name.replace("_", "")]
    raise InvalidInputError(
        f"cannot tell which column of {where} holds the protein sequences (none is named "
        f"{', '.join(PROTEIN_COL_NAMES)}); pass --protein-col"
    )


def check_sequences(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(ok mask, reason per row): a sequence is one-letter amino-acid codes only."""
    reasons = []
    for v in values:
        s = str(v).strip()
        if not s:
            reasons.append("empty protein sequence")
        elif not _SEQUENCE.match(s):
            bad = sorted({c for c in s if not c.isalpha()})[:5]
            reasons.append(
                "protein sequence has characters other than amino-acid letters: "
                + " ".join(repr(c) for c in bad)
            )
        else:
            reasons.append("")
    return np.array([r == "" for r in reasons], dtype=bool), reasons


def pair_split(
    drug_idx: np.ndarray, prot_idx: np.ndarray, how: str = "random", seed: int = 0
) -> Split:
    """8-1-1 split of the pairs: random, or by whole drugs / proteins (cold splits)."""
    if how not in PAIR_SPLITS:
        raise InvalidInputError(f"--split must be one of {', '.join(PAIR_SPLITS)}, got {how!r}")
    n = len(drug_idx)
    if how == "random":
        split = random_split(n, seed=seed)
        if min(split.sizes().values()) == 0:
            raise InvalidInputError(
                f"{n} pairs leave a part of the 8-1-1 split empty; it needs about 10 or more"
            )
        return split
    groups = np.asarray(drug_idx if how == "cold-drug" else prot_idx)
    n_groups = int(groups.max()) + 1 if n else 0
    by_group = random_split(n_groups, seed=seed)
    if min(by_group.sizes().values()) == 0:
        what = "drugs" if how == "cold-drug" else "proteins"
        raise InvalidInputError(
            f"--split {how} puts whole {what} in train, valid and test (8-1-1): {n_groups} "
            f"distinct {what} leave a part empty; it needs about 10 or more"
        )
    part = np.empty(n_groups, dtype=np.int64)
    for k, ids in enumerate((by_group.train, by_group.valid, by_group.test)):
        part[ids] = k
    of_pair = part[groups]
    return Split(*(np.flatnonzero(of_pair == k) for k in range(3)), kind=f"{how}(seed={seed})")


def _problems(table: Table, rows: np.ndarray, column: str, reasons: list[str]) -> pd.DataFrame:
    raw_smiles = table.raw[table.smiles_col] if table.raw is not None else None
    return pd.DataFrame(
        {
            "row": rows.astype(np.int64),
            "line": rows.astype(np.int64) + 2,
            "smiles": raw_smiles.to_numpy(dtype=object)[rows] if raw_smiles is not None else "",
            "column": column,
            "reason": reasons,
        }
    )[BAD_ROW_COLUMNS]


def _merge_replicate_pairs(
    table: Table, drug: np.ndarray, prot: np.ndarray
) -> tuple[Table, np.ndarray, np.ndarray]:
    """One pair per (drug, protein): replicate measurements averaged into the first row.

    Left apart, a replicate could land in training and its twin in the test set. The later rows
    are listed in bad_rows as merged replicates (not invalid).
    """
    key = pd.Series(drug.astype(np.int64) * (int(prot.max()) + 1) + prot)
    if not key.duplicated().any():
        return table, drug, prot
    group = pd.factorize(key)[0]
    first = pd.Series(np.arange(len(key))).groupby(group).transform("first").to_numpy()
    later = np.flatnonzero(np.arange(len(key)) != first)
    y = table.targets[:, 0].astype(np.float64)
    mean = pd.Series(y).groupby(group).transform("mean").to_numpy()
    keep = np.flatnonzero(np.arange(len(key)) == first)
    rows = table.rows
    reasons = [
        f"{REPLICATE} {rows[first[k]]} (line {rows[first[k]] + 2}): its affinity was averaged "
        "into that row"
        for k in later
    ]
    bad = pd.concat([table.bad_rows, _problems(table, rows[later], "", reasons)])
    bad = bad.sort_values("row", kind="stable").reset_index(drop=True)
    merged = dataclasses.replace(
        table,
        smiles=[table.smiles[k] for k in keep],
        input_smiles=[table.input_smiles[k] for k in keep],
        rows=rows[keep],
        targets=mean[keep, None].astype(table.targets.dtype),
        bad_rows=bad,
    )
    return merged, drug[keep], prot[keep]


def load_dta_table(
    source: str | Path | pd.DataFrame,
    smiles_col: str | None = None,
    protein_col: str | None = None,
    target_col: str | None = None,
    split: str = "random",
    seed: int = 0,
    on_invalid: str = "skip",
) -> tuple[DTAData, Table]:
    """Read a table of measured pairs into DTAData, and the Table of its rows (bad rows in it).

    ``target_col`` defaults to the table's one numeric label column (an error if several).
    """
    if split not in PAIR_SPLITS:
        raise InvalidInputError(f"--split must be one of {', '.join(PAIR_SPLITS)}, got {split!r}")
    where = "the input table" if isinstance(source, pd.DataFrame) else f"'{source}'"
    table = read_table(
        source, smiles_col, [target_col] if target_col else None, "regression", "skip",
        duplicates="keep",
    )  # fmt: skip
    if len(table.target_names) != 1:
        raise InvalidInputError(
            f"{where} has several numeric columns ({', '.join(table.target_names)}); name the "
            "affinity with --target-col"
        )
    raw = table.raw if table.raw is not None else pd.DataFrame(index=range(table.n_input))
    pcol = protein_column(raw, protein_col, where)
    if pcol == table.smiles_col or pcol == table.target_names[0]:
        raise InvalidInputError(
            f"the protein column '{pcol}' is also the SMILES or the affinity column"
        )
    ok, why = check_sequences(raw[pcol])
    bad_seq = table.rows[~ok[table.rows]]  # kept so far, but their sequence is unusable
    keep = ok[table.rows]
    bad_rows = table.bad_rows
    if bad_seq.size:
        extra = _problems(table, bad_seq, pcol, [why[r] for r in bad_seq])
        bad_rows = pd.concat([bad_rows, extra], ignore_index=True)
        bad_rows = bad_rows.sort_values("row", kind="stable").reset_index(drop=True)
    table = dataclasses.replace(
        table,
        smiles=[s for s, k in zip(table.smiles, keep) if k],
        input_smiles=[s for s, k in zip(table.input_smiles, keep) if k],
        rows=table.rows[keep],
        targets=table.targets[keep],
        bad_rows=bad_rows,
    )
    if table.n_kept == 0:
        raise InvalidInputError(
            f"no valid pairs in {where} ({table.problems_text()}); check --smiles-col, "
            "--protein-col and --target-col"
        )
    if on_invalid == "error" and table.n_invalid:
        raise invalid_rows_error(table, where)
    drug_codes, drugs = pd.factorize(pd.Series(table.smiles, dtype=object))
    seqs = raw[pcol].astype(str).str.strip().str.upper().to_numpy(dtype=object)[table.rows]
    prot_codes, uniq_seqs = pd.factorize(pd.Series(seqs, dtype=object))
    table, drug_codes, prot_codes = _merge_replicate_pairs(table, drug_codes, prot_codes)
    proteins = ProteinSet.from_sequences(
        [f"seq{k}" for k in range(len(uniq_seqs))], [str(s) for s in uniq_seqs]
    )
    drug_idx, prot_idx = drug_codes.astype(np.int64), prot_codes.astype(np.int64)
    data = DTAData(
        name=Path(str(source)).stem if not isinstance(source, pd.DataFrame) else "pairs",
        drug_ids=[str(s) for s in drugs],
        smiles=[str(s) for s in drugs],
        proteins=proteins,
        drug_idx=drug_idx,
        prot_idx=prot_idx,
        affinity=table.targets[:, 0].astype(np.float64),
        split=pair_split(drug_idx, prot_idx, split, seed),
        units=table.target_names[0],
        setting=0,
        valid_fold=0,
        ligands="as given",
        source=str(Path(source).resolve()) if not isinstance(source, pd.DataFrame) else where,
        pair_rows=table.rows.astype(np.int64),
    )
    return data, table
