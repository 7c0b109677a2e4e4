"""`fewmol dta`: drug–target affinity on Davis or KIBA (GIN drug encoder + DeepDTA protein CNN)."""

from __future__ import annotations

from pathlib import Path

import typer

from fewmol.cli.common import (
    console,
    err_console,
    is_ddp_child,
    precision_option,
    report_bad_rows,
    split_list,
    user_errors,
)
from fewmol.data.dta import DTA_DATASETS, MAX_LEN, load_dta
from fewmol.errors import InvalidInputError
from fewmol.io.modeldir import resolve_init
from fewmol.training import check_precision


def _int_list(value: str, flag: str) -> tuple[int, ...]:
    """'1024,1024,512' -> (1024, 1024, 512) with a clear error for anything else."""
    try:
        items = tuple(int(v) for v in split_list(value) or [])
    except ValueError:
        raise InvalidInputError(f"{flag} takes comma-separated integers, got {value!r}") from None
    if not items or min(items) < 1:
        raise InvalidInputError(f"{flag} needs positive integers, got {value!r}")
    return items


def dta(
    dataset: str = typer.Argument(
        ...,
        help="davis | kiba (DeepDTA data, setting-1 folds), or a CSV of measured pairs "
        "(SMILES, protein sequence, affinity: one pair per row).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output run directory."),
    init: str = typer.Option(None, help="Pre-trained GIN encoder dir or shipped checkpoint name."),
    epochs: int = typer.Option(100, min=1),
    batch_size: int = typer.Option(256, min=1),
    lr: float = typer.Option(1e-3),
    encoder_lr: float = typer.Option(None, help="GIN learning rate (default: --lr)."),
    weight_decay: float = typer.Option(0.0),
    seed: int = typer.Option(0),
    max_pairs: int = typer.Option(
        None, min=1, help="Train on a seeded subsample of N training pairs (quick runs)."
    ),
    max_eval_pairs: int = typer.Option(
        None, min=1, help="Evaluate on seeded subsamples of N valid and N test pairs."
    ),
    valid_fold: int = typer.Option(
        None, min=0, max=4, help="davis / kiba: training fold held out for validation (0)."
    ),
    ligands: str = typer.Option(
        None, help="davis / kiba: iso (stereo kept, default) | can (DeepDTA's SMILES)."
    ),
    smiles_col: str = typer.Option(None, help="CSV: SMILES column (default: auto-detect)."),
    protein_col: str = typer.Option(
        None, help="CSV: protein sequence column (default: one named sequence, protein, ...)."
    ),
    target_col: str = typer.Option(
        None,
        "--target-col",
        "--target-cols",  # the table reader's messages name the other commands' flag
        help="CSV: affinity column (default: the one numeric column).",
    ),
    split: str = typer.Option(
        "random",
        help="CSV: random | cold-drug | cold-protein (8-1-1 over pairs; cold: valid/test "
        "drugs or proteins unseen in training).",
    ),
    on_invalid: str = typer.Option("skip", help="CSV: skip | error: what to do with bad rows."),
    num_layers: int = typer.Option(5, min=1, help="GIN layers."),
    hidden: int = typer.Option(300, min=1, help="GIN hidden size."),
    dropout: float = typer.Option(0.0, help="GIN dropout."),
    featurizer: str = typer.Option(None, help="hu2019 | ogb (default: --init's, else hu2019)."),
    protein_emb_dim: int = typer.Option(128, min=1, help="Protein embedding size."),
    protein_filters: str = typer.Option("32,64,96", help="Conv1d filters per layer."),
    protein_kernel: int = typer.Option(8, min=1, help="Conv1d kernel size (every layer)."),
    max_len: int = typer.Option(MAX_LEN, min=1, help="Protein residues kept (DeepDTA: 1000)."),
    mlp_hidden: str = typer.Option("1024,1024,512", help="Pair MLP hidden sizes."),
    mlp_dropout: float = typer.Option(0.1),
    eval_batch_size: int = typer.Option(256, min=1),
    data_dir: Path = typer.Option(None, help="Root of the data files (else $FEWMOL_DATA)."),
    workers: int = typer.Option(1, min=1, help="Featurisation processes."),
    resume: bool = typer.Option(False, help="Continue a stopped run in --out."),
    force: bool = typer.Option(False, help="Overwrite an existing run in --out."),
    accelerator: str = typer.Option("auto", help="Lightning accelerator: auto | cpu | gpu."),
    devices: str = typer.Option("auto", help="Lightning devices, e.g. 1, 4 or auto."),
    strategy: str = typer.Option("auto", help="Lightning strategy, e.g. ddp."),
    num_nodes: int = typer.Option(1, min=1),
    precision: str = precision_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a drug–target affinity model; report test MSE and concordance index."""
    with user_errors():
        name = dataset.strip().lower()
        table_path = Path(dataset)
        from_table = name not in DTA_DATASETS
        if from_table:
            if not table_path.is_file():
                raise InvalidInputError(
                    f"{dataset!r} is neither a DTA dataset ({', '.join(DTA_DATASETS)}) nor a "
                    "file; give a CSV of measured pairs (SMILES, protein sequence, affinity)"
                )
            if valid_fold is not None or ligands is not None:
                raise InvalidInputError("--valid-fold and --ligands are for davis and kiba")
            if on_invalid not in ("skip", "error"):
                raise InvalidInputError(f"--on-invalid must be skip or error, got {on_invalid!r}")
        else:
            given = [f for f, v in (("--smiles-col", smiles_col), ("--protein-col", protein_col),
                                    ("--target-col", target_col)) if v is not None]  # fmt: skip
            if given or split != "random":
                raise InvalidInputError(
                    f"{', '.join(given) or '--split'} read a CSV of pairs; {name} has its own "
                    "columns and DeepDTA's folds"
                )
        ligands = ligands or "iso"
        if ligands not in ("iso", "can"):
            raise InvalidInputError(f"--ligands must be iso or can, got {ligands!r}")
        if init:
            resolve_init(init)  # fail before loading KIBA's 118k pairs
        child = is_ddp_child()  # rank > 0 re-runs this command: rank 0 owns --out
        if out.exists() and any(out.iterdir()) and not (resume or force or child):
            raise InvalidInputError(
                f"{out} is not empty; pass --resume to continue that run or --force to overwrite"
            )
        # Lightning takes seconds to import: loaded once the flags have passed
        from fewmol.dta.run import DTAConfig, train_dta

        cfg = DTAConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            encoder_lr=encoder_lr,
            weight_decay=weight_decay,
            dropout=dropout,
            num_layers=num_layers,
            dim=hidden,
            featurizer=featurizer,
            protein_emb_dim=protein_emb_dim,
            protein_filters=_int_list(protein_filters, "--protein-filters"),
            protein_kernel=protein_kernel,
            max_len=max_len,
            mlp_hidden=_int_list(mlp_hidden, "--mlp-hidden"),
            mlp_dropout=mlp_dropout,
            seed=seed,
            init=init,
            max_pairs=max_pairs,
            max_eval_pairs=max_eval_pairs,
            eval_batch_size=eval_batch_size,
            workers=workers,
            accelerator=accelerator,
            devices=devices,
            strategy=strategy,
            num_nodes=num_nodes,
            precision=check_precision(precision),
            progress=not quiet,
        )
        if from_table:
            from fewmol.data.dta_table import load_dta_table

            data, table = load_dta_table(
                table_path, smiles_col, protein_col, target_col, split, seed, on_invalid
            )
            name = data.name
            if not child:
                report_bad_rows(table, out)
        else:
            data = load_dta(name, data_dir, valid_fold=valid_fold or 0, ligands=ligands)
        if data.invalid_drugs and not child:
            shown = ", ".join(f"{d['id']} ({d['reason']})" for d in data.invalid_drugs[:5])
            err_console.print(
                f"{len(data.invalid_drugs)} drug(s) could not be parsed and their "
                f"{data.dropped_pairs} pairs were left out: {shown}",
                markup=False,
            )
        metrics = train_dta(data, cfg, out, resume)
        if not metrics:  # a non-zero DDP rank
            return
        best, last = metrics["test_at_best_valid"], metrics["test_at_last_epoch"]
        speed = metrics["throughput"]["train_pairs_per_s"]
        console.print(
            f"{name}: test MSE {_fmt(best.get('mse'))}, CI {_fmt(best.get('ci'))} at best-valid "
            f"epoch {metrics['best_epoch']} (MSE {_fmt(last.get('mse'))}, CI "
            f"{_fmt(last.get('ci'))} at last epoch {metrics['epochs_done']}; "
            f"{metrics['split_sizes']['train']} training pairs, "
            f"{_fmt(speed, 1)} pairs/s); run dir: {out}"
        )


def _fmt(v: float | None, digits: int = 4) -> str:
    return "nan" if v is None or v != v else f"{v:.{digits}f}"
