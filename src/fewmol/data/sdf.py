"""SD files (``.sdf`` / ``.sd``, optionally ``.gz`` / ``.bz2`` / ``.xz``) read as tables.

One row per record. Columns: ``smiles`` (the record's molecule as RDKit reads it: explicit
hydrogens removed, stereo from wedge bonds or 3D coordinates), ``name`` (the title line), then
every data field (``>  <pIC50>``) in order of first appearance, as text; a record without a
field gets an empty cell. A record RDKit cannot read keeps its row, with an empty SMILES and
the reason in :attr:`SdfTable.failures`, so it is reported like a bad CSV row. ``lines[i]`` is
the 1-based line of the file where record i starts: bad_rows.csv and messages point there.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from rdkit import Chem, rdBase

from fewmol.errors import InvalidInputError

SDF_SUFFIXES = (".sdf", ".sd")
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _compression(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in _OPENERS if name.endswith(s)), "")


def is_sdf_path(path: str | Path) -> bool:
    """True for a path named like an SD file (``x.sdf``, ``x.sd.gz``, ...)."""
    p = Path(path)
    base = p.name.lower().removesuffix(_compression(p))
    return base.endswith(SDF_SUFFIXES)


@dataclass
class SdfTable:
    """The records of an SD file as text cells, with where each starts and why any failed."""

    frame: pd.DataFrame
    lines: np.ndarray  # int64 (n,): 1-based line where each record starts
    failures: dict[int, str] = field(default_factory=dict)  # row -> reason


def _open(path: Path, encoding: str) -> IO[str]:
    opener = _OPENERS.get(_compression(path), open)
    return opener(path, "rt", encoding=encoding, newline="")  # type: ignore[operator]


def _records(fh: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """(start line, lines) per record; records end with a ``$$$$`` line (the last may not)."""
    start, buf = 1, []
    for i, line in enumerate(fh, 1):
        if line.startswith("$$$$"):
            yield start, buf
            start, buf = i + 1, []
        else:
            buf.append(line)
    if any(line.strip() for line in buf):
        yield start, buf


def _split_record(lines: list[str]) -> tuple[str, dict[str, str]]:
    """(molecule block up to ``M  END``, data fields) of one record."""
    end = next((i for i, line in enumerate(lines) if line.startswith("M  END")), None)
    if end is None:  # no molecule block end: all of it is the block (RDKit says why it fails)
        return "".join(lines), {}
    fields: dict[str, str] = {}
    name, values = None, []
    for line in lines[end + 1 :]:
        text = line.rstrip("\r\n")
        if text.startswith(">"):
            if name is not None:
                fields[name] = "\n".join(values)
            a, b = text.find("<"), text.find(">", text.find("<") + 1)
            name, values = (text[a + 1 : b] if 0 <= a < b else None), []
        elif text.strip() == "":
            if name is not None:
                fields[name] = "\n".join(values)
            name, values = None, []
        elif name is not None:
            values.append(text)
    if name is not None:
        fields[name] = "\n".join(values)
    return "".join(lines[: end + 1]), fields


def _smiles(block: str) -> tuple[str, str]:
    """(SMILES, "") of a molecule block, or ("", why RDKit cannot read it)."""
    with rdBase.BlockLogs():
        mol = Chem.MolFromMolBlock(block)
        if mol is not None:
            if mol.GetNumAtoms() == 0:
                return "", "the record's molecule has no atoms"
            return Chem.MolToSmiles(mol), ""
        raw = Chem.MolFromMolBlock(block, sanitize=False)
        if raw is None:
            return "", "RDKit could not read the record's molecule block"
        try:
            Chem.SanitizeMol(raw)
        except Exception as exc:  # RDKit raises several sanitisation error types
            return "", f"RDKit rejected the record's molecule ({str(exc).strip()})"
    return "", "RDKit could not read the record's molecule"


def read_sdf_table(path: str | Path) -> SdfTable:
    """Read an SD file into a table of text cells (see the module docstring)."""
    path = Path(path)
    try:
        return _read(path, "utf-8-sig")
    except UnicodeDecodeError:
        return _read(path, "latin-1")
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise InvalidInputError(f"cannot read '{path}' as an SD file: {exc}") from None


def _read(path: Path, encoding: str) -> SdfTable:
    smiles, names, starts, rows, failures = [], [], [], [], {}
    with _open(path, encoding) as fh:
        for i, (start, lines) in enumerate(_records(fh)):
            block, fields = _split_record(lines)
            smi, why = _smiles(block)
            if why:
                failures[i] = why
            smiles.append(smi)
            names.append(lines[0].rstrip("\r\n").strip() if lines else "")
            starts.append(start)
            rows.append(fields)
    if not rows:
        raise InvalidInputError(
            f"'{path}' holds no SD records; expected molecule blocks separated by '$$$$' lines"
        )
    props = pd.DataFrame.from_records(rows).fillna("").astype(str)
    lower = {c.lower() for c in props.columns}
    smiles_col = "smiles" if "smiles" not in lower else "structure_smiles"
    name_col = "name" if "name" not in lower else "title"
    frame = pd.concat(
        [pd.DataFrame({smiles_col: smiles, name_col: names}), props.reset_index(drop=True)],
        axis=1,
    )
    return SdfTable(frame, np.asarray(starts, np.int64), failures)
