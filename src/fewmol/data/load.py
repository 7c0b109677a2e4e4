"""Load DATA given as a CSV path or a registry name into a validated Table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from fewmol.chem.mol import NO_HYGIENE, Hygiene
from fewmol.data import registry
from fewmol.data.tables import Table, long_to_wide, read_table
from fewmol.errors import InvalidInputError


def load_dataset(
    data: str,
    smiles_col: str | None,
    target_cols: list[str] | None,
    task: str | None,
    on_invalid: str = "skip",
    data_dir: Path | None = None,
    duplicates: str | None = None,
    hygiene: Hygiene = NO_HYGIENE,
    long_format: tuple[str, str] | None = None,
    threshold: float | None = None,
) -> tuple[Table, dict]:
    """Read DATA (a CSV path or a registry name) into a validated Table plus provenance info.

    ``duplicates`` (first | merge | keep, see :func:`read_table`) defaults to ``first`` for
    user CSVs and ``keep`` for named benchmarks, which keep every parsable row as the papers
    do (BBBP: 2,039 molecules). ``hygiene`` (salt stripping, standardisation) is applied to
    every SMILES before canonicalisation.
    ``long_format`` = (task column, label column) reads a CSV with one row per measurement
    (SMILES, task, label): one column per task, the rows of one molecule merged (replicates:
    mean, or majority for 0/1 labels), bad rows reported with their own line numbers.
    ``threshold`` turns numeric labels into classes after reading (and merging replicates):
    1 where the label is >= threshold (e.g. pIC50 >= 6: active), 0 below, missing stays missing.
    """
    if threshold is not None:
        if task == "regression":
            raise InvalidInputError(
                "--threshold makes classes of the labels; not with --task regression"
            )
        table, info = load_dataset(
            data, smiles_col, target_cols, "regression", on_invalid, data_dir, duplicates,
            hygiene, long_format,
        )  # fmt: skip
        return binarize(table, threshold), dict(info, threshold=threshold)
    path = Path(data)
    if long_format is not None:
        return _load_long(
            path, smiles_col, target_cols, task, on_invalid, duplicates, hygiene, *long_format
        )
    if path.exists() or not registry.is_registered(data):
        if not path.exists():
            raise InvalidInputError(
                f"{data!r} is neither a file nor a known dataset "
                f"(known: {', '.join(registry.names())})"
            )
        table = read_table(
            path,
            smiles_col,
            target_cols,
            task,
            on_invalid,
            duplicates=duplicates or "first",
            hygiene=hygiene,
        )
        info = {"source": str(path.resolve()), "name": path.stem}
        if table.n_merged:
            info["duplicates"] = {"mode": "merge", "merged_rows": table.n_merged}
        return table, info
    spec = registry.get_spec(data)
    if spec.task_type not in ("classification", "regression"):
        raise InvalidInputError(
            f"dataset {spec.name!r} is a {spec.task_type} dataset; `fewmol finetune` takes "
            "classification or regression sets"
        )
    frame = registry.load_frame(spec.name, data_dir, target_cols=target_cols)
    cols = target_cols or list(registry.resolve_target_cols(spec, frame.columns))
    table = read_table(
        frame,
        spec.smiles_col,
        cols,
        task or spec.task_type,
        on_invalid,
        duplicates=duplicates or "keep",
        hygiene=hygiene,
    )
    return table, {
        "source": spec.name,
        "name": spec.name,
        "url": spec.url,
        "metric": spec.metric,
        "default_split": spec.split,
    }


def _load_long(
    path: Path,
    smiles_col: str | None,
    target_cols: list[str] | None,
    task: str | None,
    on_invalid: str,
    duplicates: str | None,
    hygiene: Hygiene,
    task_col: str,
    label_col: str,
) -> tuple[Table, dict]:
    """A long CSV (SMILES, task, label per row) read as one row per molecule."""
    if not path.is_file():
        raise InvalidInputError(f"--task-col/--label-col read a CSV file; {str(path)!r} is not one")
    if target_cols:
        raise InvalidInputError(
            "--target-cols names wide columns; with --task-col the tasks are the values of "
            "that column"
        )
    if duplicates not in (None, "merge"):
        raise InvalidInputError(
            "--task-col reads one row per measurement: rows of one molecule are always merged "
            f"(--duplicates merge), not '{duplicates}'"
        )
    wide, smiles_col, tasks, where = long_to_wide(path, task_col, label_col, smiles_col)
    table = read_table(
        wide, smiles_col, tasks, task, on_invalid, duplicates="merge", hygiene=hygiene, where=where
    )
    info = {
        "source": str(path.resolve()),
        "name": path.stem,
        "long_format": {"task_col": task_col, "label_col": label_col, "tasks": len(tasks)},
        "duplicates": {"mode": "merge", "merged_rows": table.n_merged},
    }
    return table, info


def binarize(table: Table, threshold: float) -> Table:
    """The table with 0/1 labels: 1 where a label is >= ``threshold``, missing stays missing.

    A note counts the actives per task and names tasks left with one class only.
    """
    y = table.targets
    if y is None or not y.size:
        raise InvalidInputError("--threshold needs label columns")
    values = y[np.isfinite(y)]
    if values.size and np.isin(values, (0.0, 1.0)).all():
        raise InvalidInputError(
            "--threshold makes 0/1 classes of numeric labels; these labels are 0/1 already"
        )
    out = np.where(np.isnan(y), np.nan, (y >= threshold).astype(np.float32)).astype(np.float32)
    n = np.isfinite(out).sum(0)
    pos = np.nansum(out, 0)
    one_class = [t for t, k, a in zip(table.target_names, n, pos) if k and (a == 0 or a == k)]
    notes = [
        f"--threshold {threshold:g}: {int(pos.sum())} of {int(n.sum())} labels are >= "
        f"{threshold:g} (class 1)"
        + (f"; one class only in {', '.join(one_class[:5])}" if one_class else "")
    ]
    # the reader's notes on numeric labels (task type, log scale) no longer apply to classes
    notes += [x for x in table.notes if not x.startswith("task type:") and "orders of" not in x]
    return dataclasses.replace(table, targets=out, task_type="classification", notes=notes)
