"""Shared CLI pieces: user-error handling, dataset loading, output helpers."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from fewmol.data.load import load_dataset  # noqa: F401  (re-exported for commands)
from fewmol.data.tables import DUPLICATES, Table, write_bad_rows
from fewmol.errors import FewmolError, InvalidInputError

err_console = Console(stderr=True, soft_wrap=True, highlight=False)
console = Console(soft_wrap=True, highlight=False)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn FewmolError into 'error: ...' on stderr and exit code 2 (no traceback)."""
    try:
        yield
    except FewmolError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("interrupted; rerun with --resume to continue")
        raise typer.Exit(130) from None


#: the featuriser of a run that starts from no encoder and names none: OGB's 9 atom / 3 bond
#: features beat the pretrain-gnns pair from scratch (every regression set we ran; +9.6 ROC-AUC
#: over BBBP, SIDER, ClinTox and BACE, row none+ogb) and as GraphMVP-C's pre-training input
#: (+4.5 on those four, row graphmvp-c-ogb against graphmvp-c): benchmarks/results/
DEFAULT_FEATURIZER = "ogb"


def default_featurizer(resumed: Path | None, why: str, note: bool = True) -> str:
    """Featuriser of a run without --init or --featurizer: a resumed run's own (its
    config.json, or its seed dirs'), else ogb with a note giving ``why`` (``note`` False: none)."""
    from fewmol.io.modeldir import read_model_config

    if resumed is not None:
        for run_dir in [resumed, *sorted(resumed.glob("seed*"))]:
            if (run_dir / "config.json").is_file():
                return str(read_model_config(run_dir).get("featurizer", "hu2019"))
    if note:
        err_console.print(
            f"note: featuriser {DEFAULT_FEATURIZER} ({why}); --featurizer hu2019 for the "
            "pretrain-gnns one",
            markup=False,
        )
    return DEFAULT_FEATURIZER


def precision_option() -> typer.models.OptionInfo:
    """The --precision option every training command shares."""
    return typer.Option(
        "32-true",
        help="Lightning precision: 32-true | bf16-mixed (~1.6x faster fine-tuning on CPUs "
        "with AVX512-BF16 or AMX, and on recent GPUs) | 16-mixed (float16, for GPUs).",
    )


def duplicates_option() -> typer.models.OptionInfo:
    """The --duplicates option of finetune and multitask."""
    return typer.Option(
        None,
        help="first | merge | keep: rows with one molecule (same canonical SMILES). first keeps "
        "the first (others in bad_rows.csv); merge combines their labels (mean; majority for "
        "0/1); keep trains on all. Default: first for a CSV, keep for a named benchmark.",
    )


def task_col_option(labels: str) -> typer.models.OptionInfo:
    """The --task-col option (long-format tables) of finetune and multitask."""
    return typer.Option(
        None,
        help=f"Long format: the column naming each row's task (one row per measurement: SMILES, "
        f"task, {labels}); rows of one molecule merge into one row (replicates: mean, 0/1: "
        "majority). Needs --label-col.",
    )


def threshold_option() -> typer.models.OptionInfo:
    """The --threshold option (numeric labels -> 0/1 classes) of finetune and multitask."""
    return typer.Option(
        None,
        help="Make classes of numeric labels: 1 where the label is >= this (e.g. pIC50 >= 6: "
        "active), 0 below, after replicates are merged.",
    )


def label_col_option() -> typer.models.OptionInfo:
    """The --label-col option (long-format tables) of finetune and multitask."""
    return typer.Option(None, help="Long format: the label column (see --task-col).")


def check_table_options(
    duplicates: str | None, task_col: str | None, label_col: str | None
) -> tuple[str, str] | None:
    """Check --duplicates and the long-format pair; return (task col, label col) or None."""
    if duplicates is not None and duplicates not in DUPLICATES:
        raise InvalidInputError(
            f"--duplicates must be one of {', '.join(DUPLICATES)}, got {duplicates!r}"
        )
    if (task_col is None) != (label_col is None):
        raise InvalidInputError("--task-col and --label-col go together (long format)")
    return (task_col, label_col) if task_col is not None else None


def inference_precision_option() -> typer.models.OptionInfo:
    """The --precision option of predict and embed."""
    return typer.Option(
        "32-true",
        help="Inference precision: 32-true | bf16-mixed (bfloat16 autocast: ~1.5x faster end "
        "to end on CPUs with AVX512-BF16 or AMX; probabilities within 0.01 of float32) | "
        "16-mixed.",
    )


def is_ddp_child() -> bool:
    """True in the extra processes Lightning's DDP launcher starts (they re-run the command)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def split_list(value: str | None) -> list[str] | None:
    """'a,b , c' -> ['a', 'b', 'c']; None stays None."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def parse_seeds(value: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2] with a clear error for non-integers."""
    try:
        seeds = [int(v) for v in split_list(value) or []]
    except ValueError:
        raise InvalidInputError(
            f"--seeds must be comma-separated integers, got {value!r}"
        ) from None
    if not seeds:
        raise InvalidInputError("--seeds needs at least one integer")
    return seeds


def report_bad_rows(table: Table, out_dir: Path) -> None:
    """Write bad_rows.csv into out_dir and print the one-line summary (and the reader's notes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "bad_rows.csv"
    write_bad_rows(table, path)
    # the full path: the file lands in --out, not where the user ran the command
    err_console.print(table.summary(path), markup=False)
    for note in table.notes:
        err_console.print(f"note: {note}", markup=False)


def no_test_score_note(
    metric: str, sizes: dict[str, int], task_type: str, remedies: str = "--split random or --folds"
) -> None:
    """Say why a run has no test score, instead of leaving a bare nan."""
    why = (
        "the split left no test molecules"
        if not sizes.get("test")
        else f"no task has both classes among the {sizes['test']} test molecules"
        if task_type == "classification"
        else f"{sizes['test']} test molecules are too few to score"
    )
    err_console.print(
        f"note: no test {metric}: {why}; use more molecules, {remedies}",
        markup=False,
    )


def exit_ok() -> None:
    """Flush and exit 0 (Lightning may leave threads behind)."""
    sys.stdout.flush()
