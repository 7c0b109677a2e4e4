"""`fewmol predict`: predictions for new molecules, input order kept, bad rows flagged."""

from __future__ import annotations

from pathlib import Path

import typer

from fewmol.cli.common import console, err_console, inference_precision_option, user_errors
from fewmol.errors import InvalidInputError
from fewmol.finetune.defaults import DEFAULT_CHUNK_ROWS


def predict(
    model_dir: Path = typer.Argument(
        ..., help="A model dir from `fewmol finetune`, `fewmol multitask` or `fewmol dta`."
    ),
    input: Path = typer.Argument(..., help="CSV with a SMILES column, or an SD file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output CSV."),
    smiles_col: str = typer.Option(None, help="SMILES column (default: auto-detect)."),
    workers: int = typer.Option(1, min=1, help="Featurisation processes."),
    chunk_size: int = typer.Option(
        DEFAULT_CHUNK_ROWS, help="Input rows per chunk (memory use grows with it)."
    ),
    members_out: Path = typer.Option(
        None, help="Also write each ensemble member's predictions to this CSV."
    ),
    resume: bool = typer.Option(False, help="Continue an interrupted run into the same --out."),
    force: bool = typer.Option(False, help="Discard the chunks of an interrupted run."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    precision: str = inference_precision_option(),
    protein_col: str = typer.Option(
        None,
        help="`fewmol dta` model dirs: column of protein sequences (default: one named "
        "sequence, protein_sequence, target_sequence, protein, seq or target).",
    ),
    known_labels: bool = typer.Option(
        False,
        help="Multi-task SGNN-EBM dirs: INPUT columns named like tasks hold labels already "
        "measured (0/1, blank = unknown); the other tasks are sampled conditioned on them.",
    ),
) -> None:
    """Predict every task for every row of INPUT, with uncertainty and applicability domain.

    Streams INPUT in chunks (constant memory, resumable); columns per task: _pred, _std
    (ensembles / MC-dropout), _lower/_upper (regression) or _prob_cal (classification); then
    ad_max_tanimoto, ad_nearest_distance, ad_in_domain.
    """
    # imported to run, not at start-up (Lightning takes seconds)
    from fewmol.cli.multitask import predict_multitask
    from fewmol.dta.predict import is_dta_dir
    from fewmol.finetune.predict import predict_file
    from fewmol.multitask.predict import is_multitask_dir

    if is_dta_dir(model_dir):  # `fewmol dta` dirs: one affinity per (SMILES, sequence) row
        with user_errors():
            if known_labels:
                raise InvalidInputError("--known-labels is for multi-task model dirs")
            return predict_dta(model_dir, input, out, smiles_col, protein_col, workers, precision)
    if is_multitask_dir(model_dir):  # `fewmol multitask` dirs: Gibbs marginals / sigmoids
        return predict_multitask(
            model_dir, input, out, smiles_col, workers, precision, known_labels
        )
    with user_errors():
        if known_labels:
            raise InvalidInputError(
                "--known-labels is for multi-task model dirs (`fewmol multitask`); "
                f"{model_dir} predicts its tasks independently"
            )
        stats = predict_file(
            model_dir,
            input,
            out,
            smiles_col=smiles_col,
            chunk_rows=chunk_size,
            workers=workers,
            members_out=members_out,
            resume=resume,
            force=force,
            progress=not quiet,
            precision=precision,
            on_note=lambda note: err_console.print(f"note: {note}", markup=False),
        )
        n_rows = stats.resumed_from + stats.rows
        invalid = stats.rows - stats.valid
        if invalid:
            err_console.print(
                f"{invalid} rows could not be predicted (valid=False, reason in the 'error' column)"
            )
        rate = stats.rows / stats.seconds if stats.seconds else 0.0
        console.print(f"wrote {n_rows} rows to {out} ({rate:,.0f} rows/s)")
        if members_out is not None:
            console.print(f"members' predictions in {members_out}")


def predict_dta(
    model_dir: Path,
    input: Path,
    out: Path,
    smiles_col: str | None,
    protein_col: str | None,
    workers: int,
    precision: str,
) -> None:
    """`fewmol predict` on a DTA model dir: the affinity of each (SMILES, sequence) row."""
    from fewmol.dta.predict import predict_pairs
    from fewmol.io.checkpoint import write_text

    df, summary = predict_pairs(
        model_dir, input, smiles_col, protein_col, workers=workers, precision=precision
    )
    for note in summary["notes"]:
        err_console.print(f"note: {note}", markup=False)
    write_text(out, df.to_csv(index=False))
    invalid = summary["n_rows"] - summary["n_valid"]
    if invalid:
        err_console.print(
            f"{invalid} rows could not be predicted (valid=False, reason in the 'error' column)"
        )
    console.print(
        f"wrote {summary['n_rows']} rows to {out} ({summary['units']} of each "
        f"(SMILES, {summary['protein_col']}) pair)",
        markup=False,
    )
