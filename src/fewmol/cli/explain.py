"""`fewmol explain`: per-atom attributions (integrated gradients) of a model's predictions."""

from __future__ import annotations

from pathlib import Path

import typer

from fewmol.cli.common import console, err_console, split_list, user_errors
from fewmol.finetune.defaults import DEFAULT_STEPS


def explain(
    model_dir: Path = typer.Argument(..., help="A model dir from `fewmol finetune`."),
    input: Path = typer.Argument(..., help="CSV with a SMILES column, or an SD file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output CSV: one row per molecule x task."),
    smiles_col: str = typer.Option(None, help="SMILES column (default: auto-detect)."),
    task: str = typer.Option(None, help="Comma-separated tasks to explain (default: all)."),
    steps: int = typer.Option(
        DEFAULT_STEPS, min=1, help="Integration steps (more: attributions sum closer to exact)."
    ),
    images: Path = typer.Option(
        None, help="Also draw each molecule coloured by its attributions into this dir (PNG)."
    ),
) -> None:
    """Which atoms raise or lower each prediction: integrated gradients over atom embeddings."""
    from fewmol.finetune.explain import explain_table
    from fewmol.io.checkpoint import write_text

    with user_errors():
        df, summary = explain_table(model_dir, input, smiles_col, split_list(task), steps, images)
        write_text(out, df.to_csv(index=False))
        invalid = summary["n_rows"] - summary["n_valid"]
        if invalid:
            err_console.print(f"{invalid} rows could not be explained (valid=False, see 'error')")
        console.print(
            f"explained {summary['n_valid']} molecules x {len(summary['tasks'])} task(s) "
            f"({summary['output']}s, {steps} steps); wrote {out}"
            + (f"; images in {images}" if images else ""),
            markup=False,
        )
