"""`fewmol evaluate`: score a model dir on labelled molecules (an external or later test set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from fewmol.cli.common import (
    check_table_options,
    console,
    err_console,
    inference_precision_option,
    label_col_option,
    split_list,
    user_errors,
)
from fewmol.io.checkpoint import write_json, write_text

MAX_TASK_ROWS = 25  # per-task lines printed; the JSON report has all


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _print_report(r: dict[str, Any]) -> None:
    """The headline, per-task table, applicability and calibration lines."""
    main = {"classification": "roc_auc", "dta": "mse"}.get(r["task_type"], "rmse")
    m = r["metrics"]
    line = f"{main} {_fmt(m.get(main))}"
    extra = {"roc_auc": ("prc_auc",), "mse": ("ci", "pearson")}.get(main, ("mae", "r2"))
    line += " (" + ", ".join(f"{k} {_fmt(m.get(k))}" for k in extra) + ")"
    if r["task_type"] == "dta":
        console.print(f"evaluated {r['n_evaluated']} pairs ({r['units']}): {line}")
    else:
        console.print(
            f"evaluated {r['n_evaluated']} molecules ({r['n_labels']} labels, "
            f"{m.get('n_tasks_scored', 0)} of {len(r['per_task'])} task(s) scored): {line}"
        )
    if r.get("tasks_without_labels"):
        missing = r["tasks_without_labels"]
        console.print(
            f"not scored (no labels in DATA): {', '.join(missing[:8])}"
            + (f" and {len(missing) - 8} more" if len(missing) > 8 else ""),
            markup=False,
        )
    own = r.get("model_test_at_best_valid")
    if own and own.get(main) is not None:
        console.print(f"the model's own test split scored {main} {_fmt(own[main])}")
    if 1 < len(r["per_task"]):
        cols = ["roc_auc", "prc_auc"] if main == "roc_auc" else ["rmse", "mae", "r2"]
        tab = RichTable("task", "n", *cols)
        for name, v in list(r["per_task"].items())[:MAX_TASK_ROWS]:
            tab.add_row(escape(name), str(v["n"]), *(_fmt(v.get(c)) for c in cols))
        console.print(tab)
        if len(r["per_task"]) > MAX_TASK_ROWS:
            console.print(f"(first {MAX_TASK_ROWS} of {len(r['per_task'])} tasks; all in --out)")
    same = r.get("same_fingerprint_as_training")
    if same:
        console.print(
            f"{same} molecule(s) have the ECFP4 fingerprint of a training molecule "
            "(probably seen in training; they flatter the score)"
        )
    ad = r.get("applicability")
    if ad:
        inside = (ad.get("in_domain") or {}).get(main)
        outside = (ad.get("out_of_domain") or {}).get(main)
        console.print(
            f"applicability domain: {ad['in_domain_fraction']:.0%} in domain; "
            f"{main} {_fmt(inside)} inside, {_fmt(outside)} outside"
        )
    cal = (r.get("calibration") or {}).get("mean") or {}
    if "ece_raw" in cal:
        console.print(
            f"calibration: ECE {cal['ece_raw']:.3f} raw -> {cal['ece_calibrated']:.3f} "
            f"calibrated (NLL {cal['nll_raw']:.3f} -> {cal['nll_calibrated']:.3f})"
        )
    elif "coverage" in cal:
        target = r["calibration"].get("target_coverage")
        console.print(
            f"intervals: {cal['coverage']:.0%} of labels inside (target {_fmt(target)}), "
            f"mean width {cal['mean_width']:.3g}"
        )


def evaluate(
    model_dir: Path = typer.Argument(
        ..., help="A model dir from `fewmol finetune` (or an ensemble), `multitask` or `dta`."
    ),
    data: Path = typer.Argument(
        ...,
        help="CSV or SD file with SMILES and measured labels (DTA: CSV with sequences).",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write the full report here (JSON)."),
    predictions: Path = typer.Option(
        None, help="Write every row's predictions beside its labels here (CSV)."
    ),
    smiles_col: str = typer.Option(None, help="SMILES column (default: auto-detect)."),
    target_cols: str = typer.Option(
        None,
        help="Label columns: one per model task in the model's order, or TASK=COLUMN pairs "
        "(default: the columns named like the tasks; tasks without one are not scored).",
    ),
    task_col: str = typer.Option(
        None,
        help="Long format: the column naming each row's task (one measurement per row: SMILES, "
        "task, label; each row is scored on its own task). Needs --label-col.",
    ),
    label_col: str = label_col_option(),
    on_invalid: str = typer.Option("skip", help="skip | error: what to do with bad rows."),
    precision: str = inference_precision_option(),
) -> None:
    """Score MODEL_DIR on the labelled molecules of DATA (an external or later test set)."""
    from fewmol.finetune.evaluate import evaluate_model

    with user_errors():
        result = evaluate_model(
            model_dir,
            data,
            smiles_col=smiles_col,
            target_cols=split_list(target_cols),
            on_invalid=on_invalid,
            precision=precision,
            long_format=check_table_options(None, task_col, label_col),
        )
        r = result.report
        err_console.print(r["read"], markup=False)
        for note in r["notes"]:
            err_console.print(f"note: {note}", markup=False)
        if r["bad_rows"]:
            shown = "; ".join(f"row {b['row']}: {b['reason']}" for b in r["bad_rows"][:5])
            more = len(r["bad_rows"]) - 5
            err_console.print(
                f"not evaluated: {shown}{f'; and {more} more' if more > 0 else ''}", markup=False
            )
        _print_report(r)
        if out is not None:
            write_json(out, r)
            console.print(f"report: {out}", markup=False)
        if predictions is not None:
            write_text(predictions, result.predictions.to_csv(index=False))
            console.print(f"predictions: {predictions}", markup=False)
