"""`fewmol conformers`: a 3D conformer store from SMILES (RDKit), an SDF file or QM9 geometries."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pandas as pd
import typer

from fewmol.chem.conformers import ConformerSettings
from fewmol.cli.common import console, err_console, report_bad_rows, user_errors
from fewmol.data import registry
from fewmol.data.conformer_store import ConformerStore, build_conformer_store
from fewmol.data.geometry import load_qm9, sdf_to_store
from fewmol.data.tables import Table, read_smiles
from fewmol.errors import InvalidInputError

_SDF_SUFFIXES = (".sdf", ".sdf.gz", ".sd")


def _read_table(input: str, smiles_col: str | None, limit: int | None, data_dir: Path | None):
    """SMILES of a CSV path or a registry name, validated; only the first ``limit`` kept."""
    path = Path(input)
    if path.exists() or not registry.is_registered(input):
        if not path.exists():
            raise InvalidInputError(
                f"{input!r} is neither a file nor a known dataset "
                f"(known: {', '.join(registry.names())})"
            )
        table = read_smiles(path, smiles_col)
    else:
        spec = registry.get_spec(input)
        file = registry.table_path(spec, registry.resolve(spec, data_dir))
        # read only what is needed: MOSES has 1.6M rows and --limit is usually far smaller
        frame = pd.read_csv(
            file,
            usecols=[spec.smiles_col],
            dtype=str,
            keep_default_na=False,
            nrows=limit,
        )
        table = read_smiles(frame, smiles_col or spec.smiles_col)
    if limit is not None:
        table.smiles = table.smiles[:limit]
    return table


def _reasons(store: ConformerStore, top: int = 3) -> str:
    """'12 timed out after 10 s, 3 too many heavy atoms' (details dropped)."""
    if not len(store.failures):
        return ""
    short = store.failures["reason"].astype(str).map(lambda r: re.sub(r"\s*\(.*$", "", r))
    counts = short.value_counts()
    text = ", ".join(f"{n} {reason}" for reason, n in counts.head(top).items())
    if len(counts) > top:
        text += f", {int(counts.iloc[top:].sum())} other"
    return f" ({text})"


def _summary(store: ConformerStore, seconds: float, out: Path) -> str:
    ok, n = int(store.ok_mask.sum()), len(store)
    text = (
        f"conformers: {ok} of {n} molecules done, {n - ok} failed{_reasons(store)}, "
        f"{len(store.warnings)} warnings; {int(store.n_confs.sum())} conformers; "
        f"{seconds:.1f} s -> {out}"
    )
    if n - ok:
        text += f"; failures listed in {out / 'failures.csv'}"
    return text


def conformers(
    input: str = typer.Argument(
        ...,
        help="CSV/TSV of SMILES, a dataset name (e.g. moses), an .sdf file (its own 3D "
        "coordinates), or 'qm9' (the QM9 DFT geometries).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output store directory."),
    num_confs: int = typer.Option(5, min=1, help="Conformers per molecule (at most)."),
    workers: int = typer.Option(
        os.cpu_count() or 1, min=0, help="Processes (0: in this process, no hard time limit)."
    ),
    smiles_col: str = typer.Option(None, help="SMILES column (default: auto-detect)."),
    max_atoms: int = typer.Option(100, min=1, help="Skip molecules with more heavy atoms."),
    timeout: float = typer.Option(10.0, min=0.001, help="Seconds per molecule, then it fails."),
    seed: int = typer.Option(42, min=0, help="Random seed (also picks the QM9 --limit subset)."),
    limit: int = typer.Option(None, min=1, help="Only the first N molecules (qm9: N at random)."),
    keep_hs: bool = typer.Option(False, help="Keep hydrogens in the stored coordinates."),
    chunk_size: int = typer.Option(256, min=1, help="Molecules per on-disk chunk (at most)."),
    resume: bool = typer.Option(
        True, help="Skip chunks already in --out (--no-resume rebuilds the store)."
    ),
    data_dir: Path = typer.Option(None, help="Root of the data files (else $FEWMOL_DATA)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate (ETKDGv3 + MMFF) or read 3D conformers into a resumable store directory.

    Every molecule without conformers is listed with its reason in OUT/failures.csv; invalid
    input rows in OUT/bad_rows.csv. --num-confs, --max-atoms and --timeout apply to generated
    conformers only.
    """
    with user_errors():
        t0 = time.perf_counter()
        if out.exists() and not out.is_dir():
            raise InvalidInputError(f"--out {out} is a file; give a directory for the store")
        path = Path(input)
        if path.is_file() and path.name.lower().endswith(_SDF_SUFFIXES):
            store, bad = sdf_to_store(path, out, keep_hs=keep_hs, resume=resume)
            bad.to_csv(out / "bad_records.csv", index=False)
            if len(bad):
                err_console.print(
                    f"{len(bad)} SDF records could not be used; see {out / 'bad_records.csv'}",
                    markup=False,
                )
        elif not path.exists() and input.strip().lower() == "qm9":
            qm9_dir = registry.resolve("qm9", data_dir, download=False)
            store = load_qm9(
                qm9_dir,
                out,
                limit=limit,
                seed=seed,
                keep_hs=keep_hs,
                workers=workers,
                resume=resume,
            )
        else:
            table: Table = _read_table(input, smiles_col, limit, data_dir)
            report_bad_rows(table, out)
            settings = ConformerSettings(
                num_confs=num_confs, seed=seed, max_atoms=max_atoms, timeout_s=timeout,
                keep_hs=keep_hs,
            )  # fmt: skip
            store = build_conformer_store(
                table.smiles,
                out,
                settings,
                workers=workers,
                chunk_size=chunk_size,
                progress=not quiet,
                resume=resume,
            )
        console.print(_summary(store, time.perf_counter() - t0, out), markup=False)
