"""`fewmol embed`: molecule embeddings from a model's encoder, one row per input row."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from fewmol.cli.common import console, err_console, user_errors
from fewmol.data.tables import read_smiles
from fewmol.errors import InvalidInputError
from fewmol.finetune.predict import embed_table


def embed(
    model_dir: Path = typer.Argument(..., help="A model dir written by `fewmol finetune`."),
    input: Path = typer.Argument(..., help="CSV with a SMILES column."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .parquet (or .csv)."),
    smiles_col: str = typer.Option(None, help="SMILES column (default: auto-detect)."),
    workers: int = typer.Option(1, min=1, help="Featurisation processes."),
) -> None:
    """Write the pooled GIN embedding of every row of INPUT (invalid rows: NaN, flagged)."""
    with user_errors():
        if out.suffix not in (".parquet", ".csv"):
            raise InvalidInputError(f"--out must end in .parquet or .csv, got {out.name}")
        table = read_smiles(input, smiles_col)
        df = embed_table(model_dir, table, workers)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        if out.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, out)
        if table.n_invalid:
            err_console.print(f"{table.n_invalid} rows have no embedding (valid=False)")
        console.print(f"wrote {len(df)} embeddings of size {df.shape[1] - 4} to {out}")
