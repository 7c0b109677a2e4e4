"""`fewmol finetune`: train a property model on a CSV or a named benchmark."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from fewmol.cli.common import (
    console,
    is_ddp_child,
    load_dataset,
    parse_seeds,
    report_bad_rows,
    split_list,
    user_errors,
)
from fewmol.data.splits import Split, make_split, split_from_labels
from fewmol.data.tables import Table
from fewmol.errors import InvalidInputError
from fewmol.finetune.run import FinetuneConfig, featurize_table, summarize_seeds
from fewmol.finetune.run import finetune as run_finetune
from fewmol.io.checkpoint import write_json


def resolve_split(spec: str, table: Table, data: str, seed: int) -> Split:
    """scaffold | random | column:NAME | PATH (CSV with a 'split' column, or split.json)."""
    if spec in ("scaffold", "random"):
        return make_split(spec, table.smiles, seed)
    if spec.startswith("column:"):
        col = spec.split(":", 1)[1]
        if table.raw is None or col not in table.raw.columns:
            raise InvalidInputError(f"--split column {col!r} not in {data}")
        return split_from_labels(table.raw[col].to_numpy()[table.rows])
    path = Path(spec)
    if not path.exists():
        raise InvalidInputError(
            f"--split must be scaffold, random, column:NAME or an existing file; got {spec!r}"
        )
    if path.suffix == ".json":
        return Split.from_json(path)
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "split" not in labels.columns:
        raise InvalidInputError(f"{path} needs a 'split' column (train/valid/test per input row)")
    if "row" in labels.columns:
        by_row = dict(zip(labels["row"].astype(int), labels["split"]))
        missing = [int(r) for r in table.rows if int(r) not in by_row]
        if missing:
            raise InvalidInputError(f"{path} has no split for input rows {missing[:5]}")
        return split_from_labels([by_row[int(r)] for r in table.rows])
    if len(labels) != table.n_input:
        raise InvalidInputError(
            f"{path} has {len(labels)} split labels but the input has {table.n_input} rows; "
            "give one per input row or add a 'row' column"
        )
    return split_from_labels(labels["split"].to_numpy()[table.rows])


def finetune(
    data: str = typer.Argument(..., help="CSV file, or a dataset name (see `fewmol data list`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output model directory."),
    smiles_col: str = typer.Option(None, help="SMILES column (default: auto-detect)."),
    target_cols: str = typer.Option(None, help="Comma-separated target columns (default: auto)."),
    task: str = typer.Option(None, help="classification | regression (default: inferred)."),
    split: str = typer.Option("scaffold", help="scaffold | random | column:NAME | PATH."),
    init: str = typer.Option(None, help="Pre-trained encoder dir or shipped checkpoint name."),
    epochs: int = typer.Option(100, min=1),
    batch_size: int = typer.Option(32, min=1),
    lr: float = typer.Option(1e-3),
    encoder_lr: float = typer.Option(None, help="Encoder learning rate (default: --lr)."),
    weight_decay: float = typer.Option(0.0),
    dropout: float = typer.Option(0.5),
    num_layers: int = typer.Option(5, min=1),
    hidden: int = typer.Option(300, min=1, help="GIN hidden size."),
    featurizer: str = typer.Option("hu2019", help="hu2019 | ogb."),
    seeds: str = typer.Option("0", help="Comma-separated seeds; several give out/seed<k>/ dirs."),
    on_invalid: str = typer.Option("skip", help="skip | error: what to do with bad rows."),
    data_dir: Path = typer.Option(None, help="Root of the data files (else $FEWMOL_DATA)."),
    workers: int = typer.Option(1, min=1, help="Featurisation processes."),
    resume: bool = typer.Option(False, help="Continue a killed run in --out."),
    force: bool = typer.Option(False, help="Overwrite an existing run in --out."),
    accelerator: str = typer.Option("auto", help="Lightning accelerator: auto | cpu | gpu."),
    devices: str = typer.Option("auto", help="Lightning devices, e.g. 1, 4 or auto."),
    strategy: str = typer.Option("auto", help="Lightning strategy, e.g. ddp."),
    num_nodes: int = typer.Option(1, min=1),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fine-tune a GIN on DATA and write a model dir with metrics and predictions."""
    with user_errors():
        seed_list = parse_seeds(seeds)
        if task not in (None, "classification", "regression"):
            raise InvalidInputError(f"--task must be classification or regression, got {task!r}")
        if on_invalid not in ("skip", "error"):
            raise InvalidInputError(f"--on-invalid must be skip or error, got {on_invalid!r}")
        child = is_ddp_child()  # rank > 0 re-runs this command: rank 0 owns --out
        if out.exists() and any(out.iterdir()) and not (resume or force or child):
            raise InvalidInputError(
                f"{out} is not empty; pass --resume to continue that run or --force to overwrite"
            )
        table, info = load_dataset(
            data, smiles_col, split_list(target_cols), task, on_invalid, data_dir
        )
        if not child:
            report_bad_rows(table, out)
        graphs = featurize_table(table, featurizer, workers)
        all_metrics = []
        for seed in seed_list:
            cfg = FinetuneConfig(
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                encoder_lr=encoder_lr,
                weight_decay=weight_decay,
                dropout=dropout,
                num_layers=num_layers,
                dim=hidden,
                featurizer=featurizer,
                seed=seed,
                init=init,
                workers=workers,
                accelerator=accelerator,
                devices=devices,
                strategy=strategy,
                num_nodes=num_nodes,
                progress=not quiet,
                extra={"split": split, "on_invalid": on_invalid},
            )
            the_split = resolve_split(split, table, data, seed)
            run_dir = out if len(seed_list) == 1 else out / f"seed{seed}"
            metrics = run_finetune(table, the_split, cfg, run_dir, resume, info, graphs)
            if not metrics:  # a non-zero DDP rank
                return
            all_metrics.append(metrics)
            _print_metrics(metrics, seed, run_dir)
        if len(seed_list) > 1:
            summary = summarize_seeds(all_metrics)
            write_json(out / "summary.json", summary)
            m = all_metrics[0]["select_metric"]
            s = summary["test_at_best_valid"].get(m)
            if s:
                console.print(f"test {m} over seeds {seed_list}: {s['mean']:.4f} ± {s['std']:.4f}")


def _print_metrics(metrics: dict, seed: int, run_dir: Path) -> None:
    m = metrics["select_metric"]
    best = metrics["test_at_best_valid"].get(m, float("nan"))
    last = metrics["test_at_last_epoch"].get(m, float("nan"))
    console.print(
        f"seed {seed}: test {m} = {_fmt(best)} at best-valid epoch {metrics['best_epoch']} "
        f"({_fmt(last)} at last epoch {metrics['epochs_done']}); model dir: {run_dir}"
    )


def _fmt(v: float | None) -> str:
    return "nan" if v is None or v != v else f"{v:.4f}"
