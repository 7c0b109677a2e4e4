"""`fewmol predict`: predictions for new molecules, input order kept, bad rows flagged."""

from __future__ import annotations

from pathlib import Path

import typer

from fewmol.cli.common import console, err_console, user_errors
from fewmol.data.tables import read_smiles
from fewmol.finetune.predict import predict_table
from fewmol.io.checkpoint import write_text


def predict(
    model_dir: Path = typer.Argument(..., help="A model dir written by `fewmol finetune`."),
    input: Path = typer.Argument(..., help="CSV with a SMILES column."),
    out: Path = typer.Option(..., "--out", "-o", help="Output CSV."),
    smiles_col: str = typer.Option(None, help="SMILES column (default: auto-detect)."),
    workers: int = typer.Option(1, min=1, help="Featurisation processes."),
) -> None:
    """Predict every task for every row of INPUT (probabilities or original units)."""
    with user_errors():
        table = read_smiles(input, smiles_col)
        df = predict_table(model_dir, table, workers)
        write_text(out, df.to_csv(index=False))
        if table.n_invalid:
            err_console.print(
                f"{table.n_invalid} rows could not be predicted "
                "(valid=False, reason in the 'error' column)"
            )
        console.print(f"wrote {len(df)} rows to {out}")
