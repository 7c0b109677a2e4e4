"""`fewmol embed`: molecule embeddings from a model's encoder, one row per input row."""

from __future__ import annotations

from pathlib import Path

import typer

from fewmol.cli.common import console, err_console, inference_precision_option, user_errors
from fewmol.finetune.defaults import DEFAULT_CHUNK_ROWS


def embed(
    model: str = typer.Argument(
        ...,
        help="A model dir (`fewmol finetune`, `multitask` or `dta`), a pre-trained encoder dir "
        "(`fewmol pretrain` or `import-weights`), or a shipped checkpoint name (graphmvp).",
    ),
    input: Path = typer.Argument(..., help="CSV with a SMILES column, or an SD file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .parquet (or .csv)."),
    smiles_col: str = typer.Option(None, help="SMILES column (default: auto-detect)."),
    workers: int = typer.Option(1, min=1, help="Featurisation processes."),
    chunk_size: int = typer.Option(
        DEFAULT_CHUNK_ROWS, help="Input rows per chunk (memory use grows with it)."
    ),
    resume: bool = typer.Option(False, help="Continue an interrupted run into the same --out."),
    force: bool = typer.Option(False, help="Discard the chunks of an interrupted run."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    precision: str = inference_precision_option(),
    strip_salts: bool = typer.Option(
        False, help="Encoder sources: keep the largest organic fragment."
    ),
    standardize: bool = typer.Option(
        False, help="Encoder sources: RDKit MolStandardize clean-up and neutralisation."
    ),
    canonical_tautomer: bool = typer.Option(
        False, help="Encoder sources: replace by the canonical tautomer."
    ),
) -> None:
    """Write the pooled GIN embedding of every row of INPUT (invalid rows: NaN, flagged).

    MODEL is a trained model (its encoder after fine-tuning; the clean-up flags are then
    the model's own) or a pre-trained encoder: self-supervised features for clustering,
    similarity search or a model of your own.
    """
    from fewmol.chem.mol import Hygiene
    from fewmol.finetune.predict import embed_file  # Lightning: imported to run

    with user_errors():
        stats = embed_file(
            model,
            input,
            out,
            smiles_col=smiles_col,
            chunk_rows=chunk_size,
            workers=workers,
            resume=resume,
            force=force,
            progress=not quiet,
            precision=precision,
            hygiene=Hygiene(strip_salts, standardize, canonical_tautomer),
            on_note=lambda note: err_console.print(f"note: {note}", markup=False),
        )
        invalid = stats.rows - stats.valid
        if invalid:
            err_console.print(f"{invalid} rows have no embedding (valid=False)")
        console.print(f"wrote {stats.resumed_from + stats.rows} embeddings to {out}")
