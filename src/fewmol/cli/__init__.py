"""The `fewmol` command line: one module per command group, registered here."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TextIO

import typer

from fewmol import training
from fewmol.cli import bench as bench_cli
from fewmol.cli import data as data_cli
from fewmol.cli.conformers import conformers
from fewmol.cli.dta import dta
from fewmol.cli.embed import embed
from fewmol.cli.evaluate import evaluate
from fewmol.cli.explain import explain
from fewmol.cli.finetune import finetune
from fewmol.cli.import_weights import import_weights
from fewmol.cli.multitask import multitask
from fewmol.cli.predict import predict
from fewmol.cli.pretrain import pretrain

app = typer.Typer(
    name="fewmol",
    help="Molecular property prediction when labelled data is scarce.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(no_args_is_help=True)(finetune)
app.command(no_args_is_help=True)(predict)
app.command(no_args_is_help=True)(embed)
app.command(no_args_is_help=True)(evaluate)
app.command(no_args_is_help=True)(explain)
app.command(no_args_is_help=True)(conformers)
app.command(no_args_is_help=True)(dta)
app.command(no_args_is_help=True)(pretrain)
app.command("import-weights", no_args_is_help=True)(import_weights)
app.command(no_args_is_help=True)(multitask)
app.add_typer(data_cli.app, name="data", help="Named datasets: list and locate them.")
app.add_typer(bench_cli.app, name="bench", help="Reproduce the paper tables (resumable).")


def _quiet_libraries() -> None:
    """Keep Lightning's banners and library deprecation chatter out of users' terminals."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*Total length of .DataLoader. across ranks.*")
    warnings.filterwarnings("ignore", message=".*all_gather is deprecated.*")
    for name in training.LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning resets its loggers to INFO when it is imported, which now happens only when a
    # command trains: make_trainer quiets them again then
    training.QUIET_LIGHTNING = True


# with the separator, so a sibling such as ".../fewmol_extra/" is not taken for the package
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1]) + os.sep
_show_library_warning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """fewmol's own warnings speak to users: ``warning: <message>``, no source line."""
    if str(filename).startswith(_PACKAGE_DIR):
        print(f"warning: {message}", file=file or sys.stderr)
        return
    _show_library_warning(message, category, filename, lineno, file, line)


_quiet_libraries()
warnings.showwarning = _show_warning


def main() -> None:
    """Entry point of the `fewmol` console script."""
    from fewmol.allocator import tune_allocator

    tune_allocator()  # before any tensor exists: large blocks then come from the heap
    app()
