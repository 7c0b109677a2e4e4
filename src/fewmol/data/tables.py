"""Reading user CSVs of SMILES and labels, with validation and a per-row report of bad rows.

Everything a user can get wrong in a table ends up either in ``Table.bad_rows`` (one entry per
row and problem, with its row and line number and a reason) or in an ``InvalidInputError`` whose
message says what is wrong and how to fix it; nothing is silently coerced.

Rules (see ``read_table``):

* Files: ``.csv`` (comma), ``.tsv``/``.txt``/``.tab`` (tab), optionally compressed (``.gz``,
  ``.bz2``, ``.xz``, ``.zip``); a comma file with a single tab- or semicolon-separated column is
  re-read with that delimiter; SD files (``.sdf``/``.sd``, :mod:`fewmol.data.sdf`) give one
  row per record, its structure's SMILES in the first column, and ``line`` is where the record
  starts. All cells are read as text. Blank lines inside the data are rows
  (one bad row each: "empty SMILES (blank line)"); blank lines at the end are ignored. ``row``
  is the 0-based data row (header excluded) and ``line`` = ``row + 2`` is the line in the file,
  assuming one line per record (no quoted newlines).
* SMILES column: ``smiles_col``, else a column whose name contains ``smiles`` or is ``smi``
  (case, spaces and punctuation ignored), else the column where most of the first 200 values
  parse as molecules (more than half).
* Target columns: ``target_cols``, else every other column whose non-empty values are (>= 95 %)
  numeric, except ID-like columns (``id``, ``num``, ``no``, ``index``, ``name``, ``cid``,
  ``mol_id``, ``compound id``, anything ending in a separate word ``id``/``name``/``index``...)
  and row counters (unique, strictly increasing integers).
* Missing labels: empty, ``nan``, ``NA``, ``N/A``, ``none``, ``null`` (any case) -> NaN, which is
  fine. ``inf`` is a bad label.
* Task type: ``task_type``, else classification when every column's values are all in {0, 1} or
  all in {-1, 1}, regression otherwise. For classification, a column with -1 and no 0 maps -1 to
  0; in a column with both 0 and -1 the -1 cells are ambiguous (bad rows); any other value is an
  out-of-range label. Regression values are kept raw (scaling happens elsewhere).
* Duplicates (same canonical SMILES) are checked last, among the rows that are otherwise valid,
  as ``duplicates`` says: ``first`` keeps the first, the others are bad rows that name it;
  ``merge`` keeps the first with every replicate's labels combined per task (regression: the
  mean; classification: the majority, a tie leaves the task unlabelled), the others are listed
  as merged replicates (not invalid); ``keep`` keeps every row.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem

from fewmol.chem.mol import NO_HYGIENE, Hygiene, try_canonical_smiles
from fewmol.data.sdf import is_sdf_path, read_sdf_table
from fewmol.errors import InvalidInputError

__all__ = [
    "BAD_ROW_COLUMNS",
    "SmilesStream",
    "Table",
    "detect_smiles_col",
    "detect_target_cols",
    "infer_task_type",
    "task_type_notes",
    "open_smiles_stream",
    "read_smiles",
    "read_table",
    "write_bad_rows",
]

BAD_ROW_COLUMNS = ["row", "line", "smiles", "column", "reason"]
TASK_TYPES = ("classification", "regression")
ON_INVALID = ("skip", "error")

_MISSING_TOKENS = frozenset({"", "nan", "na", "n/a", "none", "null"})
_TAB_SUFFIXES = (".tsv", ".txt", ".tab")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst")
# whole (normalised) names that mean "identifier, not a label"
_ID_NAMES = frozenset(
    {
        "id",
        "ids",
        "num",
        "no",
        "nr",
        "number",
        "index",
        "idx",
        "name",
        "names",
        "cid",
        "molid",
        "compoundid",
        "cmpdid",
        "rowid",
        "row",
        "key",
        "title",
        "inchikey",
        "inchi",
    }
)
# last words of a name that mean the same ("Compound ID", "mol_id", "Drug Name", "row index")
_ID_LAST_WORDS = frozenset({"id", "ids", "idx", "index", "name", "names", "cid", "key"})
_SNIFF_VALUES = 200
_NUMERIC_FRACTION = 0.95
# a qualified (censored) measurement such as '>10', '< 0.5', '>=1e4'
_CENSORED = r"[<>]=?\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: what read_table does with rows of one canonical SMILES
DUPLICATES = ("first", "merge", "keep")
#: reason prefix of a row whose labels were merged into an earlier row (listed, not invalid)
REPLICATE = "replicate of row"

# summary categories, in report order: (reason prefix, singular, plural)
_CATEGORIES = [
    ("invalid SMILES", "invalid SMILES", "invalid SMILES"),
    ("empty SMILES", "empty SMILES", "empty SMILES"),
    ("non-numeric label", "non-numeric label", "non-numeric labels"),
    ("out-of-range label", "out-of-range label", "out-of-range labels"),
    ("ambiguous label", "ambiguous label", "ambiguous labels"),
    ("NaN/inf label", "NaN/inf label", "NaN/inf labels"),
    ("no labels", "row without labels", "rows without labels"),
    ("empty protein sequence", "empty protein sequence", "empty protein sequences"),
    ("protein sequence has", "invalid protein sequence", "invalid protein sequences"),
    ("duplicate", "duplicate", "duplicates"),
    (REPLICATE, "merged replicate", "merged replicates"),
]


@dataclass
class Table:
    """Validated molecules (kept rows only, input order) with their labels and the bad rows."""

    smiles: list[str]
    input_smiles: list[str]
    rows: np.ndarray
    targets: np.ndarray | None
    target_names: list[str]
    task_type: str | None
    smiles_col: str
    bad_rows: pd.DataFrame
    n_input: int
    source: str = "the input table"
    raw: pd.DataFrame | None = field(default=None, repr=False)  # all input cells, as text
    hygiene: Hygiene = NO_HYGIENE  # clean-up applied before canonicalisation
    offset: int = 0  # input row of this table's first row (chunks of a streamed file)
    notes: list[str] = field(default_factory=list)  # what the reader decided for the user

    def __len__(self) -> int:
        return len(self.smiles)

    @property
    def n_kept(self) -> int:
        """Number of kept rows."""
        return len(self.smiles)

    def _merged_mask(self) -> np.ndarray:
        return self.bad_rows["reason"].astype(str).str.startswith(REPLICATE).to_numpy()

    @property
    def invalid_rows(self) -> pd.DataFrame:
        """The bad rows that are problems (``bad_rows`` less the merged replicates)."""
        return self.bad_rows[~self._merged_mask()] if len(self.bad_rows) else self.bad_rows

    @property
    def n_invalid(self) -> int:
        """Number of distinct input rows that were dropped (a row may have several problems);
        replicates merged into a kept row do not count."""
        bad = self.invalid_rows
        return int(bad["row"].nunique()) if len(bad) else 0

    @property
    def n_merged(self) -> int:
        """Number of input rows whose labels were merged into an earlier row (``merge``)."""
        return int(self._merged_mask().sum()) if len(self.bad_rows) else 0

    def kept_mask(self) -> np.ndarray:
        """Boolean array over the input rows: True where the row was kept."""
        mask = np.zeros(self.n_input, dtype=bool)
        mask[self.rows] = True
        return mask

    def problem_counts(self) -> dict[str, int]:
        """Number of problems per category (e.g. {'invalid SMILES': 4, 'duplicate': 1})."""
        if not len(self.bad_rows):
            return {}
        reasons = self.bad_rows["reason"].astype(str)
        counts: dict[str, int] = {}
        for prefix, _, _ in _CATEGORIES:
            n = int(reasons.str.startswith(prefix).sum())
            if n:
                counts[prefix] = n
        other = len(reasons) - sum(counts.values())
        if other:
            counts["other"] = other
        return counts

    def problems_text(self) -> str:
        """The problem counts in words, e.g. '4 invalid SMILES, 1 duplicate' ('' if none);
        merged replicates are not problems and are left out."""
        names = {prefix: (one, many) for prefix, one, many in _CATEGORIES}
        parts = []
        for prefix, n in self.problem_counts().items():
            if prefix == REPLICATE:  # merged, not a problem: summary() says so apart
                continue
            one, many = names.get(prefix, ("other problem", "other problems"))
            parts.append(f"{n} {one if n == 1 else many}")
        return ", ".join(parts)

    def summary(self, bad_rows_path: str | Path | None = "bad_rows.csv") -> str:
        """One line: 'read 100 rows: 93 kept, 7 invalid (4 invalid SMILES, ...); see PATH'."""
        text = f"read {self.n_input} rows: {self.n_kept} kept, {self.n_invalid} invalid"
        if self.n_merged:
            text = text.replace(" kept,", f" kept ({self.n_merged} replicates merged into them),")
        if len(self.bad_rows):
            problems = self.problems_text()
            text += f" ({problems})" if problems else ""
            if bad_rows_path is not None:
                text += f"; see {bad_rows_path}"
        return text


# ----------------------------------------------------------------------------- reading


def _where(source: str | Path | pd.DataFrame) -> str:
    return "the input table" if isinstance(source, pd.DataFrame) else f"'{source}'"


def _frame_to_text(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of a user DataFrame with string column names and every cell as text ('' = empty)."""
    out = df.copy()
    out.columns = [str(c) for c in out.columns]
    if out.columns.duplicated().any():
        dups = sorted(set(out.columns[out.columns.duplicated()]))
        raise InvalidInputError(
            f"the input table has duplicate column names: {', '.join(dups)}; rename them"
        )
    return out.astype(str).fillna("").reset_index(drop=True)


def _strip_compression(name: str) -> str:
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _check_text(path: Path, where: str) -> None:
    """Refuse binary files (NUL bytes in the first 8 KiB) with a clear message."""
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                head = fh.read(8192)
        elif path.name.lower().endswith(_COMPRESSION_SUFFIXES):
            return  # pandas reports problems with other compressions
        else:
            with open(path, "rb") as fh:
                head = fh.read(8192)
    except (OSError, EOFError) as exc:
        raise InvalidInputError(f"cannot read {where}: {exc}") from None
    if b"\x00" in head:
        raise InvalidInputError(
            f"{where} is not a text table (it contains binary data); give a CSV/TSV file "
            "(optionally .gz) with a header line, e.g. 'smiles,label'"
        )


def _read_csv(path: Path, sep: str, encoding: str, nrows: int | None = None) -> pd.DataFrame:
    return pd.read_csv(
        path,
        sep=sep,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
        compression="infer",
        encoding=encoding,
        nrows=nrows,
    )


def _read_path(path: Path) -> pd.DataFrame:
    return _read_path_format(path)[0]


def _read_path_format(path: Path, nrows: int | None = None) -> tuple[pd.DataFrame, str, str]:
    """Read a table file (or its first ``nrows`` rows); also return the delimiter and encoding."""
    where = f"'{path}'"
    if not path.exists():
        raise InvalidInputError(f"input file {where} does not exist; check the path")
    if path.is_dir():
        raise InvalidInputError(f"{where} is a directory; give the path of a CSV file")
    _check_text(path, where)
    base = _strip_compression(path.name.lower())
    sep = "\t" if base.endswith(_TAB_SUFFIXES) else ","
    encoding = "utf-8-sig"

    def attempt(sep: str) -> tuple[pd.DataFrame, str]:
        try:
            return _read_csv(path, sep, "utf-8-sig", nrows), "utf-8-sig"
        except UnicodeDecodeError:
            return _read_csv(path, sep, "latin-1", nrows), "latin-1"

    try:
        df, encoding = attempt(sep)
        if df.shape[1] == 1:  # maybe the wrong delimiter for this file
            header = str(df.columns[0])
            for other in ("\t", ",", ";"):
                if other != sep and other in header:
                    df, encoding = attempt(other)
                    sep = other
                    break
    except pd.errors.EmptyDataError:
        raise InvalidInputError(
            f"{where} has no data rows (the file is empty); expected a header line such as "
            "'smiles,label' followed by one row per molecule"
        ) from None
    except pd.errors.ParserError as exc:
        raise InvalidInputError(
            f"cannot parse {where} as a {'TSV' if sep == chr(9) else 'CSV'} table: {exc}; check "
            "the delimiter and quoting (.tsv/.txt files are read as tab-separated)"
        ) from None
    except (ValueError, OSError, EOFError, UnicodeError) as exc:
        raise InvalidInputError(f"cannot read {where} as a table: {exc}") from None
    df.columns = [str(c) for c in df.columns]
    return df.fillna(""), sep, encoding


@dataclass
class _Source:
    """A table as read: text cells, its name for messages, blank rows, and for SD files the
    line where each record starts and the records RDKit could not read."""

    df: pd.DataFrame
    where: str
    blank: np.ndarray
    lines: np.ndarray | None = None  # None: a text table, line = row + 2
    failures: dict[int, str] = field(default_factory=dict)


def _load(source: str | Path | pd.DataFrame) -> _Source:
    """Read the source as all-text cells without trailing blank rows, with a blank-row mask (and,
    for an SD file, record start lines and unreadable records)."""
    where = _where(source)
    lines, failures = None, {}
    if isinstance(source, pd.DataFrame):
        df = _frame_to_text(source)
    elif isinstance(source, (str, Path)) and is_sdf_path(source) and Path(source).is_file():
        sdf = read_sdf_table(source)
        df, lines, failures = sdf.frame, sdf.lines, sdf.failures
    elif isinstance(source, (str, Path)):
        df = _read_path(Path(source))
    else:
        raise InvalidInputError(
            f"cannot read a table from {type(source).__name__}; give a CSV path or a DataFrame"
        )
    if df.shape[1] == 0:
        raise InvalidInputError(
            f"{where} has no columns; expected a header line such as 'smiles,label'"
        )
    # blank lines at the end of a file are not rows (an SD record is a row, even if empty)
    if lines is not None:
        nonblank = np.ones(len(df), dtype=bool)
    else:
        nonblank = _nonblank_rows(df)
    last = int(np.flatnonzero(nonblank)[-1]) + 1 if nonblank.any() else 0
    df = df.iloc[:last].reset_index(drop=True)
    if len(df) == 0:
        raise InvalidInputError(
            f"{where} has no data rows (only a header: {', '.join(df.columns)}); "
            "add one row per molecule"
        )
    return _Source(df, where, ~nonblank[:last], lines, failures)


def table_columns(source: str | Path | pd.DataFrame) -> list[str]:
    """The column names of a table (read as :func:`read_table` reads it)."""
    return [str(c) for c in _load(source).df.columns]


# ----------------------------------------------------------------------------- columns


def _norm(name: str) -> str:
    """Lower-case, letters and digits only ('Canonical SMILES' -> 'canonicalsmiles')."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _words(name: str) -> list[str]:
    """Words of a column name, split on punctuation, spaces and camelCase ('MolID': mol, id)."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [w for w in re.split(r"[^0-9a-zA-Z]+", name.lower()) if w]


def _is_id_like(name: str) -> bool:
    words = _words(name)
    return _norm(name) in _ID_NAMES or (bool(words) and words[-1] in _ID_LAST_WORDS)


def _columns_hint(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    shown = ", ".join(cols[:30]) + (f", ... ({len(cols)} in all)" if len(cols) > 30 else "")
    return f"columns are: {shown}"


def _resolve_column(df: pd.DataFrame, name: str, flag: str, where: str) -> str:
    """Find a user-named column: exactly, else ignoring case/spaces/punctuation if unique."""
    if name in df.columns:
        return name
    matches = [c for c in df.columns if str(c).strip() == str(name).strip()]
    if len(matches) != 1:
        matches = [c for c in df.columns if _norm(c) == _norm(name) and _norm(name)]
    if len(matches) == 1:
        return matches[0]
    raise InvalidInputError(
        f"column '{name}' not found in {where}; {_columns_hint(df)}; pass {flag} with one of them"
    )


def _text(values: pd.Series) -> pd.Series:
    """A column as text with '' for missing cells (a no-op for columns read by this module)."""
    if not pd.api.types.is_string_dtype(values):
        values = values.astype(str)
    return values.fillna("")


def _parse_fraction(values: pd.Series) -> float:
    """Fraction of the first 200 non-empty values of a text column that RDKit parses."""
    sample = values.str.strip()
    sample = sample[sample != ""].head(_SNIFF_VALUES)
    if sample.empty:
        return 0.0
    # numbers never parse as SMILES; skip mostly-numeric columns without calling RDKit
    if pd.to_numeric(sample, errors="coerce").notna().mean() > 0.5:
        return 0.0
    ok = sum(Chem.MolFromSmiles(s) is not None for s in sample)
    return ok / len(sample)


def detect_smiles_col(df: pd.DataFrame, *, where: str = "the input table") -> str:
    """Name of the SMILES column of ``df``: by name ('smiles' in it, or 'smi'), else by content."""
    df = df if all(isinstance(c, str) for c in df.columns) else _frame_to_text(df)
    named = [c for c in df.columns if "smiles" in _norm(c) or _norm(c) == "smi"]
    if len(named) == 1:
        return named[0]

    if len(named) > 1:
        scores = {c: _parse_fraction(_text(df[c])) for c in named}
        best = max(scores.values())
        if best > 0.5:
            tied = [c for c in named if scores[c] == best]
            exact = [c for c in tied if _norm(c) == "smiles"]
            return (exact or tied)[0]
    scores = {c: _parse_fraction(_text(df[c])) for c in df.columns}
    best_col = max(scores, key=lambda c: scores[c]) if scores else None
    if best_col is not None and scores[best_col] > 0.5:
        header = str(best_col).strip()
        if _norm(header) and Chem.MolFromSmiles(header) is not None and len(header) > 2:
            raise InvalidInputError(
                f"the first line of {where} looks like a molecule ('{header}'), not a header; "
                "add a header line naming the columns, e.g. 'smiles,label'"
            )
        return best_col
    if named:
        why = f"several columns could hold SMILES ({', '.join(named)})"
    else:
        why = "no column is named like 'smiles' and none holds mostly valid SMILES"
    raise InvalidInputError(
        f"cannot tell which column of {where} holds the SMILES: {why}; {_columns_hint(df)}; "
        "pass --smiles-col"
    )


def _missing_mask(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower().isin(_MISSING_TOKENS)


def _is_row_counter(numbers: pd.Series) -> bool:
    if len(numbers) < 3 or numbers.isna().any():
        return False
    arr = numbers.to_numpy(dtype=float)
    return bool(
        np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)) and np.all(np.diff(arr) > 0)
    )


def detect_target_cols(
    df: pd.DataFrame,
    smiles_col: str,
    *,
    where: str = "the input table",
    skipped: list[str] | None = None,
) -> list[str]:
    """Label columns of ``df``: numeric (>= 95 %) columns that are not SMILES, IDs or counters.

    ``skipped`` (if given) receives the mostly (>= 50 %) numeric columns left out, as "'name'
    (k of n numeric)": label columns with typos, perhaps, which the reader tells the user of.
    """
    targets, partly = [], []
    for col in df.columns:
        if col == smiles_col or _is_id_like(col):
            continue
        s = _text(df[col])
        present = s[~_missing_mask(s)].str.strip()
        if present.empty:
            continue
        numbers = pd.to_numeric(present, errors="coerce")
        if numbers.notna().mean() < _NUMERIC_FRACTION:
            if numbers.notna().any():
                partly.append(f"'{col}' ({numbers.notna().sum()} of {len(present)} numeric)")
                if skipped is not None and numbers.notna().mean() >= 0.5:
                    skipped.append(partly[-1])  # mostly numeric: a label column with typos?
            continue
        if len(present) == len(s) and _is_row_counter(numbers):
            continue
        targets.append(col)
    if not targets:
        hint = f"; partly numeric: {', '.join(partly[:10])}" if partly else ""
        raise InvalidInputError(
            f"no label columns found in {where}: labels are numeric (>= 95 %) columns other than "
            f"the SMILES column '{smiles_col}' and ID-like columns; {_columns_hint(df)}{hint}; "
            "pass --target-cols"
        )
    return targets


def infer_task_type(values: np.ndarray) -> str:
    """'classification' if each column's values lie in {0, 1} or {-1, 1}, else 'regression'."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    finite = np.isfinite(arr)
    if not finite.any():
        raise InvalidInputError("no labels to infer the task type from; pass --task")
    for j in range(arr.shape[1]):
        col = np.unique(arr[finite[:, j], j])
        if col.size and not (np.isin(col, (0.0, 1.0)).all() or np.isin(col, (-1.0, 1.0)).all()):
            return "regression"
    return "classification"


# ----------------------------------------------------------------------------- validation


def task_type_notes(values: np.ndarray, target_cols: list[str], task_type: str) -> list[str]:
    """The inferred task type in words, and any nearly binary column that made it regression.

    A 0/1 column with a stray value (a typo such as 3) is read as regression; saying so, with
    the rows to blame, lets the user pass --task classification instead.
    """
    notes = [f"task type: {task_type}, inferred from the labels (pass --task to override)"]
    if task_type != "regression":
        return notes
    for j, col in enumerate(target_cols):
        v = values[:, j]
        labelled = np.isfinite(v)
        n = int(labelled.sum())
        for scheme, name in (((0.0, 1.0), "0/1"), ((-1.0, 1.0), "-1/1")):
            inside = labelled & np.isin(v, scheme)
            k = int(inside.sum())
            if n and k < n and k >= 0.95 * n:
                stray = np.flatnonzero(labelled & ~inside)
                shown = ", ".join(f"row {r} ({v[r]:g})" for r in stray[:3])
                more = f" and {stray.size - 3} more" if stray.size > 3 else ""
                notes.append(
                    f"column '{col}' is {name} in {k} of {n} labelled rows; {shown}{more} made "
                    "it regression. If it is a classification task, pass --task classification "
                    "(those rows are then reported as out-of-range labels)"
                )
                break
    return notes


def scale_notes(values: np.ndarray, target_cols: list[str]) -> list[str]:
    """A note per regression column whose positive labels span three or more orders of
    magnitude (a raw concentration such as IC50 in nM): a log scale trains far better."""
    notes = []
    for j, col in enumerate(target_cols):
        v = values[:, j]
        v = v[np.isfinite(v)]
        if len(v) < 10 or v.min() <= 0:
            continue
        decades = float(np.log10(v.max() / v.min()))
        if decades >= 3:
            notes.append(
                f"column '{col}' is positive and spans {decades:.1f} orders of magnitude "
                f"({v.min():g} to {v.max():g}): if it is a concentration (IC50, Ki, Kd), "
                "models learn it far better on a log scale, e.g. pIC50 = 9 - log10(IC50 in nM); "
                "convert the column before training"
            )
    return notes


def _problems(rows: np.ndarray, column: str, reasons: pd.Series | str) -> pd.DataFrame:
    reason = reasons.to_numpy(dtype=object) if isinstance(reasons, pd.Series) else reasons
    return pd.DataFrame({"row": rows.astype(np.int64), "column": column, "reason": reason})


def _parse_labels(
    df: pd.DataFrame, target_cols: list[str], task_type: str | None
) -> tuple[np.ndarray, np.ndarray, list[pd.DataFrame], str | None]:
    """Parse label columns (vectorised). Returns values, missing mask, problems and task type."""
    n = len(df)
    values = np.full((n, len(target_cols)), np.nan, dtype=np.float64)
    missing = np.zeros((n, len(target_cols)), dtype=bool)
    problems: list[pd.DataFrame] = []
    text: dict[str, pd.Series] = {}
    for j, col in enumerate(target_cols):
        s = df[col].str.strip()
        text[col] = s
        miss = s.str.lower().isin(_MISSING_TOKENS).to_numpy()
        numbers = pd.to_numeric(s.where(~miss, ""), errors="coerce").to_numpy(dtype=np.float64)
        bad_text = ~miss & np.isnan(numbers)
        if bad_text.any():
            idx = np.flatnonzero(bad_text)
            censored = s.iloc[idx].str.fullmatch(_CENSORED).to_numpy(dtype=bool)
            why = np.where(
                censored,
                " (a censored value: the model needs a measured number; drop the qualifier "
                "or the row)",
                "",
            )
            problems.append(
                _problems(
                    idx, col, "non-numeric label '" + s.iloc[idx] + f"' in column '{col}'" + why
                )
            )
        nonfinite = np.isinf(numbers)
        if nonfinite.any():
            idx = np.flatnonzero(nonfinite)
            problems.append(
                _problems(idx, col, "NaN/inf label '" + s.iloc[idx] + f"' in column '{col}'")
            )
        huge = np.isfinite(numbers) & (np.abs(numbers) > _FLOAT32_MAX)
        if huge.any():
            idx = np.flatnonzero(huge)
            problems.append(
                _problems(
                    idx,
                    col,
                    "out-of-range label "
                    + s.iloc[idx]
                    + f" in column '{col}' (too large for 32-bit floats)",
                )
            )
        ok = np.isfinite(numbers) & ~huge
        values[ok, j] = numbers[ok]
        missing[:, j] = miss

    if task_type is None:
        good = values[np.isfinite(values)]
        task_type = infer_task_type(values) if good.size else None

    if task_type == "classification":
        for j, col in enumerate(target_cols):
            v = values[:, j]
            present = np.isfinite(v)
            has_zero = bool((v[present] == 0).any())
            has_neg = bool((v[present] == -1).any())
            if has_neg and not has_zero:
                v[v == -1] = 0.0  # the -1/1 scheme
            elif has_neg:
                idx = np.flatnonzero(v == -1)
                problems.append(
                    _problems(
                        idx,
                        col,
                        "ambiguous label "
                        + text[col].iloc[idx]
                        + f" in column '{col}' (the column has both 0 and -1; classification "
                        "labels must be 0/1 or -1/1)",
                    )
                )
                v[idx] = np.nan
            out = present & ~np.isnan(v) & ~np.isin(v, (0.0, 1.0))
            if out.any():
                idx = np.flatnonzero(out)
                problems.append(
                    _problems(
                        idx,
                        col,
                        "out-of-range label "
                        + text[col].iloc[idx]
                        + f" in column '{col}' (classification labels must be 0/1 or -1/1)",
                    )
                )
                v[idx] = np.nan
    return values, missing, problems, task_type


def _finish(
    df: pd.DataFrame,
    where: str,
    smiles_col: str,
    canon: np.ndarray,
    problems: list[pd.DataFrame],
    values: np.ndarray | None,
    target_cols: list[str],
    task_type: str | None,
    duplicates: str,
    notes: list[str],
    lines: np.ndarray | None = None,
) -> Table:
    n = len(df)
    line_of = lines if lines is not None else np.arange(n, dtype=np.int64) + 2
    bad = np.zeros(n, dtype=bool)
    for p in problems:
        bad[p["row"].to_numpy()] = True
    if duplicates != "keep":
        ok = np.flatnonzero(~bad)
        keys = pd.Series(canon[ok])
        dup = keys.duplicated(keep="first").to_numpy()
        if dup.any():
            first = pd.Series(ok).groupby(keys.to_numpy()).transform("first").to_numpy()
            rows, firsts = ok[dup], first[dup]
            at = pd.Series(firsts).astype(str) + " (line " + pd.Series(line_of[firsts]).astype(str)
            labelled = values is not None and values.shape[1] > 0
            if duplicates == "merge" and not labelled:  # SMILES only: a repeat, not a problem
                reason = REPLICATE + " " + at + "): the same molecule"
            elif duplicates == "merge":
                values = _merge_replicates(values, ok, first, task_type, notes)
                reason = REPLICATE + " " + at + "): its labels were merged into that row"
                unlabeled = np.flatnonzero(np.isnan(values[np.unique(firsts)]).all(axis=1))
                if unlabeled.size:  # every task tied: nothing left to learn from
                    tied = np.unique(firsts)[unlabeled]
                    problems.append(_problems(tied, "", "no labels (its replicates tie)"))
                    bad[tied] = True
            else:
                reason = "duplicate of row " + at + ", same canonical SMILES"
                if labelled:
                    a, b = values[rows], values[firsts]
                    same = ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)
                    reason = reason + np.where(same, ")", "; labels differ)")
                else:
                    reason = reason + ")"
            problems.append(_problems(rows, smiles_col, reason))
            bad[rows] = True
    keep = np.flatnonzero(~bad)
    input_smiles = df[smiles_col]
    if problems:
        bad_rows = pd.concat(problems, ignore_index=True)
        bad_rows = bad_rows.sort_values("row", kind="stable").reset_index(drop=True)
        bad_rows.insert(1, "line", line_of[bad_rows["row"].to_numpy()])
        bad_rows.insert(2, "smiles", input_smiles.to_numpy(dtype=object)[bad_rows["row"]])
        bad_rows = bad_rows[BAD_ROW_COLUMNS]
    else:
        bad_rows = _empty_bad_rows()
    targets = None
    if values is not None:
        targets = values[keep].astype(np.float32)
    return Table(
        smiles=canon[keep].tolist(),
        input_smiles=input_smiles.to_numpy(dtype=object)[keep].tolist(),
        rows=keep.astype(np.int64),
        targets=targets,
        target_names=list(target_cols),
        task_type=task_type,
        smiles_col=smiles_col,
        bad_rows=bad_rows,
        n_input=n,
        source=where,
        raw=df,
    )


def _merge_replicates(
    values: np.ndarray, ok: np.ndarray, first: np.ndarray, task_type: str | None, notes: list[str]
) -> np.ndarray:
    """Labels with each group of replicates (rows ``ok`` sharing ``first``) combined into its
    first row, per task over the replicates that have the label: the mean (regression) or the
    majority (classification; a tie -> missing, counted in ``notes``)."""
    groups, gid = np.unique(first, return_inverse=True)
    v = values[ok].astype(np.float64)
    has = ~np.isnan(v)
    count = np.zeros((len(groups), v.shape[1]))
    total = np.zeros_like(count)
    np.add.at(count, gid, has)
    np.add.at(total, gid, np.where(has, v, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count  # NaN where no replicate has the label
    if task_type == "classification":
        ties = int(((count > 0) & (mean == 0.5)).sum())
        mean = np.where(mean > 0.5, 1.0, np.where(mean < 0.5, 0.0, np.nan))
        mean[count == 0] = np.nan
        if ties:
            notes.append(
                f"{ties} molecule/task label(s) left unlabelled: as many replicates said 0 as 1"
            )
    out = values.copy()
    out[groups] = mean.astype(values.dtype)
    return out


def _empty_bad_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": pd.Series([], dtype=np.int64),
            "line": pd.Series([], dtype=np.int64),
            "smiles": pd.Series([], dtype=object),
            "column": pd.Series([], dtype=object),
            "reason": pd.Series([], dtype=object),
        }
    )


def _smiles_problems(
    df: pd.DataFrame, smiles_col: str, blank: np.ndarray, hygiene: Hygiene = NO_HYGIENE
) -> tuple[np.ndarray, pd.DataFrame | None]:
    """Canonicalise each distinct SMILES once; return canonical (None if bad) and the problems."""
    raw = df[smiles_col]
    uniques = pd.unique(raw.to_numpy(dtype=object))
    results = {s: try_canonical_smiles(s, hygiene) for s in uniques}
    canon = np.array([results[s][0] for s in raw.to_numpy(dtype=object)], dtype=object)
    failed = np.flatnonzero(pd.isna(canon))
    if not failed.size:
        return canon, None
    why = [results[s][1] for s in raw.to_numpy(dtype=object)[failed]]
    reason = [
        "empty SMILES (blank line)"
        if is_blank
        else "empty SMILES"
        if w == "empty SMILES"
        else "invalid SMILES (no atoms)"
        if w and "no atoms" in w
        else f"invalid SMILES ({w})"
        if w and w.startswith("standardisation")
        else "invalid SMILES (RDKit could not parse it)"
        for w, is_blank in zip(why, blank[failed], strict=True)
    ]
    return canon, _problems(failed, smiles_col, pd.Series(reason, dtype=object))


def _with_sdf_failures(
    smiles_bad: pd.DataFrame | None, failures: dict[int, str], smiles_col: str
) -> pd.DataFrame | None:
    """SMILES problems with each unreadable SD record's own reason instead of "empty SMILES"."""
    if not failures or smiles_bad is None:
        return smiles_bad
    unread = np.fromiter(failures, np.int64, len(failures))
    reasons = pd.Series([failures[int(r)] for r in unread], dtype=object)
    kept = smiles_bad[~smiles_bad["row"].isin(unread)]
    return pd.concat([kept, _problems(unread, smiles_col, reasons)], ignore_index=True)


def _describe(bad_rows: pd.DataFrame, limit: int = 5) -> str:
    items = [
        f"line {r.line} (row {r.row}): {r.reason}" + (f" [{r.smiles!r}]" if r.smiles else "")
        for r in bad_rows.head(limit).itertuples()
    ]
    more = len(bad_rows) - limit
    return "; ".join(items) + (f"; and {more} more" if more > 0 else "")


def _check_option(value: str | None, allowed: tuple[str, ...], flag: str) -> str | None:
    if value is None:
        return None
    v = str(value).strip().lower()
    if v not in allowed:
        raise InvalidInputError(f"{flag} must be one of {', '.join(allowed)}, not '{value}'")
    return v


def read_table(
    source: str | Path | pd.DataFrame,
    smiles_col: str | None = None,
    target_cols: list[str] | None = None,
    task_type: str | None = None,
    on_invalid: str = "skip",
    require_targets: bool = True,
    duplicates: str = "first",
    hygiene: Hygiene = NO_HYGIENE,
    where: str | None = None,
) -> Table:
    """Read and validate a table of SMILES and labels; bad rows go to ``Table.bad_rows``.

    Parameters
    ----------
    source : CSV/TSV path (optionally compressed) or a DataFrame.
    smiles_col : SMILES column; auto-detected when None.
    target_cols : label columns (a list, or one comma-separated string); auto-detected when None
        and ``require_targets``.
    task_type : 'classification' or 'regression'; inferred when None.
    on_invalid : 'skip' drops bad rows; 'error' raises InvalidInputError if there is any.
    require_targets : when False and ``target_cols`` is None, read SMILES only; when True, rows
        without any label are bad ("no labels").
    duplicates : rows with the canonical SMILES of an earlier valid row: 'first' drops them
        (bad rows), 'merge' combines their labels into the first (mean / majority; listed as
        merged replicates), 'keep' keeps them.
    hygiene : salt stripping / standardisation applied before canonicalisation (so duplicates
        are judged on the cleaned molecule).
    where : how messages name the source (default: its path, or "the input table").

    Raises InvalidInputError for user errors (missing file or column, no data, no valid rows,
    bad rows with ``on_invalid='error'``); the exception has ``bad_rows`` when rows are to blame.
    """
    on_invalid = _check_option(on_invalid, ON_INVALID, "--on-invalid") or "skip"
    duplicates = _check_option(duplicates, DUPLICATES, "--duplicates") or "first"
    task_type = _check_option(task_type, TASK_TYPES, "--task")
    src = _load(source)
    df, blank = src.df, src.blank
    where = where or src.where

    if smiles_col is None and src.lines is not None:
        smiles_col = str(df.columns[0])  # an SD file: the records' own structures
    elif smiles_col is None:
        smiles_col = detect_smiles_col(df, where=where)
    else:
        smiles_col = _resolve_column(df, smiles_col, "--smiles-col", where)

    if isinstance(target_cols, str):
        target_cols = [target_cols] if target_cols in df.columns else target_cols.split(",")
    if target_cols is not None:
        target_cols = [c for c in target_cols if str(c).strip()]
        if not target_cols:
            target_cols = None
    skipped: list[str] = []
    if target_cols is None:
        target_cols = (
            detect_target_cols(df, smiles_col, where=where, skipped=skipped)
            if require_targets
            else []
        )
    else:
        resolved = [_resolve_column(df, c, "--target-cols", where) for c in target_cols]
        if smiles_col in resolved:
            raise InvalidInputError(
                f"column '{smiles_col}' is the SMILES column and cannot also be a target; "
                "check --smiles-col and --target-cols"
            )
        target_cols = list(dict.fromkeys(resolved))

    canon, smiles_bad = _smiles_problems(df, smiles_col, blank, hygiene)
    smiles_bad = _with_sdf_failures(smiles_bad, src.failures, smiles_col)
    problems = [smiles_bad] if smiles_bad is not None else []
    values = None
    inferred = task_type is None
    if target_cols:
        values, missing, label_problems, task_type = _parse_labels(df, target_cols, task_type)
        problems += label_problems
        if task_type is None and require_targets:
            raise InvalidInputError(
                f"the label columns of {where} ({', '.join(target_cols)}) hold no numeric "
                "labels; check --target-cols"
            )
        if require_targets:
            unlabeled = np.flatnonzero(missing.all(axis=1) & ~blank)
            if unlabeled.size:
                problems.append(_problems(unlabeled, "", "no labels"))
    merge_notes: list[str] = []
    table = _finish(
        df,
        where,
        smiles_col,
        canon,
        problems,
        values,
        target_cols,
        task_type if target_cols else None,
        duplicates,
        merge_notes,
        src.lines,
    )
    table.hygiene = hygiene
    if inferred and target_cols and task_type is not None:
        table.notes = task_type_notes(values, target_cols, task_type)
    table.notes += merge_notes
    if skipped:
        table.notes.append(
            f"not used as labels (labels are >= 95 % numeric): {', '.join(skipped[:10])}"
            f"{' and more' if len(skipped) > 10 else ''}; name them in --target-cols to use "
            "them (their non-numeric entries then become bad rows)"
        )
    if table.task_type == "regression" and table.targets is not None:
        table.notes += scale_notes(table.targets, table.target_names)

    if table.n_kept == 0:
        exc = InvalidInputError(
            f"no valid rows in {where}: all {table.n_input} rows are invalid "
            f"({table.problems_text()}); first problems: "
            f"{_describe(table.bad_rows)}; check --smiles-col/--target-cols"
        )
        exc.bad_rows = table.bad_rows  # type: ignore[attr-defined]
        exc.table = table  # type: ignore[attr-defined]
        raise exc
    if on_invalid == "error" and table.n_invalid:
        raise invalid_rows_error(table, where)
    return table


def invalid_rows_error(table: Table, where: str) -> InvalidInputError:
    """The --on-invalid error exception for a table with invalid rows (it carries them)."""
    exc = InvalidInputError(
        f"{table.n_invalid} invalid row(s) in {where}: {_describe(table.invalid_rows)}; "
        "fix them, or pass --on-invalid skip to drop them (then listed in bad_rows.csv)"
    )
    exc.bad_rows = table.bad_rows  # type: ignore[attr-defined]
    exc.table = table  # type: ignore[attr-defined]
    return exc


#: cells (rows x tasks) of the sparse wide table a long table becomes; above it, pivot first
MAX_LONG_CELLS = 50_000_000


def long_to_wide(
    source: str | Path | pd.DataFrame,
    task_col: str,
    label_col: str,
    smiles_col: str | None = None,
) -> tuple[pd.DataFrame, str, list[str], str]:
    """A long table (one row per molecule-task measurement) as a sparse wide one.

    Row i of the result is row i of the input (so bad rows keep their row and line numbers)
    with its other columns (SMILES, IDs, a split column, ...) as they are, its label in its
    task's column and the other task columns empty; read it with ``read_table(...,
    duplicates="merge")`` to get one row per molecule (which keeps the first row's other
    columns). Returns (wide table, its SMILES column, task names in order of first
    appearance, the source's name).
    """
    if isinstance(source, (str, Path)) and is_sdf_path(source):
        raise InvalidInputError(
            f"long format (--task-col) reads CSV/TSV tables, not SD files like '{source}': an "
            "SD file holds one record per molecule, so give its label fields as --target-cols"
        )
    src = _load(source)
    df, where = src.df, src.where
    smiles_col = (
        detect_smiles_col(df, where=where)
        if smiles_col is None
        else _resolve_column(df, smiles_col, "--smiles-col", where)
    )
    task_col = _resolve_column(df, task_col, "--task-col", where)
    label_col = _resolve_column(df, label_col, "--label-col", where)
    if len({smiles_col, task_col, label_col}) < 3:
        raise InvalidInputError(
            f"--smiles-col, --task-col and --label-col must be three different columns, got "
            f"'{smiles_col}', '{task_col}', '{label_col}'"
        )
    task = df[task_col].str.strip().to_numpy(dtype=object)
    named = task != ""
    names = [str(t) for t in pd.unique(task[named])]
    if not names:
        raise InvalidInputError(f"the task column '{task_col}' of {where} is empty")
    kept = [c for c in df.columns if c not in (task_col, label_col)]
    clash = sorted(set(names) & set(kept))
    if clash:
        raise InvalidInputError(
            f"task(s) in '{task_col}' named like another column of {where}: "
            f"{', '.join(clash[:5])}; rename them"
        )
    if len(df) * len(names) > MAX_LONG_CELLS:
        raise InvalidInputError(
            f"{where}: {len(df):,} rows x {len(names):,} tasks is too large to read in long "
            "format here; pivot it to one row per molecule and one column per task first"
        )
    code = pd.Index(names).get_indexer(task[named])
    cells = np.full((len(df), len(names)), "", dtype=object)
    cells[np.flatnonzero(named), code] = df[label_col].to_numpy(dtype=object)[named]
    wide = pd.concat([df[kept].reset_index(drop=True), pd.DataFrame(cells, columns=names)], axis=1)
    return wide, smiles_col, names, where


def read_smiles(
    source: str | Path | pd.DataFrame,
    smiles_col: str | None = None,
    hygiene: Hygiene = NO_HYGIENE,
) -> Table:
    """Read SMILES for predict/embed: no labels, no dedup, invalid rows only reported in bad_rows.

    ``Table.rows`` maps kept molecules back to input rows (``Table.kept_mask()``), so the caller
    can write one output row per input row and flag the others. Raises only when the input is
    unusable (no file, no column, no data) or when not one row holds a valid SMILES.
    """
    return read_table(
        source,
        smiles_col=smiles_col,
        target_cols=None,
        task_type=None,
        on_invalid="skip",
        require_targets=False,
        duplicates="keep",
        hygiene=hygiene,
    )


def write_bad_rows(table: Table, path: str | Path) -> None:
    """Write ``table.bad_rows`` as CSV (header always, even when empty), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bad = table.bad_rows if len(table.bad_rows) else _empty_bad_rows()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", newline="", encoding="utf-8") as fh:
            bad[BAD_ROW_COLUMNS].to_csv(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- streaming

_HEAD_ROWS = 1000  # rows read up front to check the file and find the SMILES column
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _nonblank_rows(df: pd.DataFrame) -> np.ndarray:
    """True for rows with at least one non-empty cell."""
    if df.empty:
        return np.zeros(len(df), dtype=bool)
    return (df.apply(lambda s: s.str.strip()) != "").any(axis=1).to_numpy()


@dataclass
class SmilesStream:
    """A SMILES table read lazily, chunk by chunk, with the same rules as :func:`read_smiles`.

    Every chunk is a :class:`Table` whose ``rows`` / ``bad_rows`` are local to the chunk and
    whose ``offset`` is the input row of its first row; blank lines at the end of the file are
    dropped as ``read_smiles`` drops them, so the chunks together describe the same rows.
    """

    path: Path
    smiles_col: str
    columns: list[str]
    sep: str
    encoding: str
    where: str
    sdf: _Source | None = None  # an SD file, read whole (records are parsed, not split lines)

    def count_rows(self) -> int | None:
        """Number of data rows by counting lines (for progress bars; None if not cheap)."""
        if self.sdf is not None:
            return len(self.sdf.df)
        name = self.path.name.lower()
        suffix = next((s for s in _COMPRESSION_SUFFIXES if name.endswith(s)), "")
        opener = _OPENERS.get(suffix, open if not suffix else None)
        if opener is None:
            return None
        lines, last = 0, b"\n"
        with opener(self.path, "rb") as fh:
            while block := fh.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
        if last != b"\n":
            lines += 1
        return max(0, lines - 1)

    def chunks(
        self, chunk_rows: int, hygiene: Hygiene = NO_HYGIENE, start_row: int = 0
    ) -> Iterator[Table]:
        """Validated tables of about ``chunk_rows`` rows each, from input row ``start_row`` on."""
        for df, blank, start in self.raw_chunks(chunk_rows, start_row):
            yield self.make_table(df, blank, start, hygiene)

    def raw_chunks(
        self, chunk_rows: int, start_row: int = 0
    ) -> Iterator[tuple[pd.DataFrame, np.ndarray, int]]:
        """(cells as text, blank-row mask, first input row) per chunk, before validation.

        Blank rows at the end of a chunk are held back until a non-blank row follows, so blank
        lines ending the file are dropped (as :func:`read_smiles` does) and never emitted.
        """
        if chunk_rows < 1:
            raise InvalidInputError(f"the chunk size must be at least 1, got {chunk_rows}")
        if self.sdf is not None:
            for start in range(start_row, len(self.sdf.df), chunk_rows):
                stop = min(start + chunk_rows, len(self.sdf.df))
                part = self.sdf.df.iloc[start:stop].reset_index(drop=True)
                yield part, self.sdf.blank[start:stop], start
            return
        reader = pd.read_csv(
            self.path,
            sep=self.sep,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            compression="infer",
            encoding=self.encoding,
            chunksize=chunk_rows,
        )
        pending: pd.DataFrame | None = None  # blank rows that may turn out to end the file
        pending_start = 0
        next_row = 0
        try:
            with reader:
                for df in reader:
                    df.columns = [str(c) for c in df.columns]
                    df = df.fillna("").reset_index(drop=True)
                    start = next_row
                    next_row += len(df)
                    if pending is not None:
                        df = pd.concat([pending, df], ignore_index=True)
                        start = pending_start
                    nonblank = _nonblank_rows(df)
                    if not nonblank.any():
                        pending, pending_start = df, start
                        continue
                    last = int(np.flatnonzero(nonblank)[-1]) + 1
                    pending = df.iloc[last:].reset_index(drop=True) if last < len(df) else None
                    pending_start = start + last
                    emit, blank = df.iloc[:last], ~nonblank[:last]
                    if start + last <= start_row:
                        continue
                    if start < start_row:  # resuming inside this chunk
                        cut = start_row - start
                        emit, blank, start = emit.iloc[cut:], blank[cut:], start_row
                    yield emit.reset_index(drop=True), blank, start
        except pd.errors.ParserError as exc:
            raise InvalidInputError(
                f"cannot parse {self.where} after row {next_row}: {exc}; check the delimiter "
                "and quoting"
            ) from None
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"{self.where} is not valid {self.encoding} text after row {next_row} ({exc}); "
                "save it as UTF-8"
            ) from None

    def make_table(
        self, df: pd.DataFrame, blank: np.ndarray, start: int, hygiene: Hygiene = NO_HYGIENE
    ) -> Table:
        """Validate one raw chunk (see :meth:`raw_chunks`) into a Table with ``offset=start``."""
        canon, smiles_bad = _smiles_problems(df, self.smiles_col, blank, hygiene)
        lines = None
        if self.sdf is not None:
            lines = self.sdf.lines[start : start + len(df)]
            local = {r - start: w for r, w in self.sdf.failures.items() if 0 <= r - start < len(df)}
            smiles_bad = _with_sdf_failures(smiles_bad, local, self.smiles_col)
        problems = [smiles_bad] if smiles_bad is not None else []
        table = _finish(
            df, self.where, self.smiles_col, canon, problems, None, [], None, "keep", [], lines
        )
        table.hygiene, table.offset = hygiene, start
        return table


def open_smiles_stream(path: str | Path, smiles_col: str | None = None) -> SmilesStream:
    """Check a SMILES file and find its SMILES column from its first rows, without reading it all.

    Raises InvalidInputError for the same unusable inputs as :func:`read_smiles` (missing,
    binary or empty file, header only, unknown column); rows are validated chunk by chunk.
    """
    if isinstance(path, pd.DataFrame):
        raise InvalidInputError("streaming needs a file path, not a DataFrame")
    path = Path(path)
    if is_sdf_path(path) and path.is_file():
        src = _load(path)
        if smiles_col is not None:
            smiles_col = _resolve_column(src.df, smiles_col, "--smiles-col", src.where)
        col = smiles_col or str(src.df.columns[0])  # the structure's SMILES column comes first
        return SmilesStream(path, col, list(src.df.columns), "", "", src.where, src)
    head, sep, encoding = _read_path_format(path, nrows=_HEAD_ROWS)
    where = f"'{path}'"
    if head.shape[1] == 0:
        raise InvalidInputError(
            f"{where} has no columns; expected a header line such as 'smiles,label'"
        )
    if len(head) == 0:
        raise InvalidInputError(
            f"{where} has no data rows (only a header: {', '.join(head.columns)}); "
            "add one row per molecule"
        )
    if smiles_col is None:
        smiles_col = detect_smiles_col(head, where=where)
    else:
        smiles_col = _resolve_column(head, smiles_col, "--smiles-col", where)
    return SmilesStream(path, smiles_col, list(head.columns), sep, encoding, where)
