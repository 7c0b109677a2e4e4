"""`fewmol bench`: reproduce the paper tables, resumable per (dataset, method, seed).

``fewmol bench run PROTOCOL`` runs a grid; ``fewmol bench classification|regression|dta``
are the same command with the protocol named first, as the issue words them.
``fewmol bench multitask`` runs the SGNN-EBM table (its own methods and datasets).
``fewmol bench report`` rebuilds the results pages and plots from the stored runs.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path

import typer

from fewmol.bench.multitask import (
    EXTRA_METHODS,
    MULTITASK,
    run_multitask_grid,
    write_multitask_report,
)
from fewmol.bench.protocols import PROTOCOLS, get_protocol
from fewmol.bench.report import write_overview, write_report
from fewmol.bench.run import run_grid
from fewmol.cli.common import console, parse_seeds, precision_option, split_list, user_errors
from fewmol.errors import InvalidInputError

app = typer.Typer(no_args_is_help=True, add_completion=False)


def _pretrained_map(value: str | None) -> dict[str, str]:
    """'graphmvp-c=pre/c,attrmask=pre/a' -> {method: encoder dir}."""
    mapping = {}
    for item in split_list(value) or []:
        if "=" not in item:
            raise InvalidInputError(f"--pretrained takes METHOD=DIR pairs, got {item!r}")
        k, v = item.split("=", 1)
        mapping[k.strip()] = v.strip()
    return mapping


@app.command("run", no_args_is_help=True)
def run(
    protocol: str = typer.Argument(..., help=" | ".join(PROTOCOLS)),
    methods: str = typer.Option(
        "none", help="Comma-separated: none, rf (random-forest baseline) or pre-training methods."
    ),
    seeds: str = typer.Option("0,1,2"),
    datasets: str = typer.Option(None, help="Comma-separated subset (default: all)."),
    epochs: int = typer.Option(None, help="Fine-tuning epochs (default: the paper's)."),
    out: Path = typer.Option(Path("benchmarks/results"), help="Results root."),
    work: Path = typer.Option(Path("benchmarks/work"), help="Model dirs and checkpoints."),
    pretrained: str = typer.Option(
        None, help="METHOD=DIR,... encoder dirs (default: a shipped checkpoint of that name)."
    ),
    featurizer: str = typer.Option(
        None, help="hu2019 | ogb (default: the --init encoder's, else hu2019)."
    ),
    max_pairs: int = typer.Option(
        None, help="dta: train on a seeded subsample of N training pairs (recorded)."
    ),
    max_eval_pairs: int = typer.Option(
        None, help="dta: evaluate on seeded subsamples of N valid and N test pairs (recorded)."
    ),
    data_dir: Path = typer.Option(None),
    accelerator: str = typer.Option("auto"),
    precision: str = precision_option(),
    progress: bool = typer.Option(False),
    train_size: int = typer.Option(
        None,
        help="Train each cell on a seeded random subset of N training molecules (valid and "
        "test unchanged): one point of a learning curve. Use its own --out and --work.",
    ),
) -> None:
    """Run the missing cells of a protocol grid, then rewrite its results pages.

    A results tree holds one budget per cell: another --epochs or --precision re-runs a
    finished cell and replaces its record (use another --out to keep both). A precision other
    than 32-true is recorded per cell and marked in the tables.
    """
    with user_errors():
        if protocol.strip().lower() == MULTITASK.name:
            raise InvalidInputError(
                "the multitask table has its own command: fewmol bench multitask"
            )
        proto = get_protocol(protocol)
        run_grid(
            proto,
            split_list(methods) or ["none"],
            parse_seeds(seeds),
            [d.lower() for d in split_list(datasets) or proto.datasets],
            out,
            work,
            epochs,
            data_dir,
            _pretrained_map(pretrained),
            featurizer=featurizer,
            progress=progress,
            accelerator=accelerator,
            log=lambda s: console.print(s, highlight=False),
            max_pairs=max_pairs,
            max_eval_pairs=max_eval_pairs,
            precision=precision,
            train_size=train_size,
        )
        console.print(f"results page: {write_report(proto, out)}")
        console.print(f"overview: {write_overview(out)}")


def _alias(name: str) -> Callable[..., None]:
    """`fewmol bench NAME ...` = `fewmol bench run NAME ...` (same options, same code)."""

    def command(**kwargs: typing.Any) -> None:
        run(protocol=name, **kwargs)

    # typer reads the options from the signature: run's, without the protocol argument
    sig = inspect.signature(run)
    hints = typing.get_type_hints(run)
    params = [
        p.replace(annotation=hints[p.name]) for p in sig.parameters.values() if p.name != "protocol"
    ]
    command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    command.__doc__ = f"Same as `fewmol bench run {name}`: run the {name} grid (resumable)."
    command.__name__ = name
    return command


for _name in PROTOCOLS:
    app.command(_name)(_alias(_name))


@app.command("multitask")
def multitask(
    methods: str = typer.Option(
        None,
        help=f"Comma-separated (default: the paper's rows): {', '.join(MULTITASK.methods)}; "
        f"also {', '.join(EXTRA_METHODS)} (our variants, not in the paper).",
    ),
    datasets: str = typer.Option(
        None, help=f"Comma-separated (default: all): {', '.join(MULTITASK.datasets)}."
    ),
    seeds: str = typer.Option(",".join(map(str, MULTITASK.seeds))),
    epochs: int = typer.Option(None, help=f"Training epochs (default: {MULTITASK.epochs})."),
    init: str = typer.Option(
        None,
        help="Pre-trained encoder dir or shipped checkpoint name for every method; results go "
        "to METHOD@NAME.",
    ),
    featurizer: str = typer.Option(
        None,
        help="Train from scratch on this featuriser (hu2019 | ogb) instead of the table's "
        "hu2019; results go to METHOD+FEATURISER. With --init: the encoder's own only.",
    ),
    out: Path = typer.Option(Path("benchmarks/results"), help="Results root."),
    work: Path = typer.Option(Path("benchmarks/work"), help="Model dirs and checkpoints."),
    data_dir: Path = typer.Option(None, help="Root of the data files (else $FEWMOL_DATA)."),
    workers: int = typer.Option(1, min=1, help="Featurisation processes."),
    stl_parts: int = typer.Option(
        1,
        min=1,
        help="Split each STL cell into K parts (tasks t % K) that K workers sharing the grid "
        "train side by side; the last to finish merges them (the same models as one run).",
    ),
    accelerator: str = typer.Option("auto"),
    precision: str = precision_option(),
    progress: bool = typer.Option(False),
) -> None:
    """Run the missing cells of the SGNN-EBM multi-task table, then rewrite its results page."""
    with user_errors():
        run_multitask_grid(
            split_list(methods),
            parse_seeds(seeds),
            split_list(datasets),
            out,
            work,
            epochs,
            init,
            data_dir,
            workers=workers,
            progress=progress,
            accelerator=accelerator,
            log=lambda s: console.print(s, highlight=False),
            precision=precision,
            featurizer=featurizer,
            stl_parts=stl_parts,
        )
        console.print(f"results page: {write_multitask_report(out)}")
        console.print(f"overview: {write_overview(out)}")


@app.command("report")
def report(
    protocol: str = typer.Argument(
        "all",
        help=f"all (every table and plot) or one of: {', '.join(PROTOCOLS)}, {MULTITASK.name}",
    ),
    out: Path = typer.Option(Path("benchmarks/results"), help="Results root."),
) -> None:
    """Rebuild the results pages (and plots) from the stored per-run JSON files."""
    with user_errors():
        if protocol.strip().lower() == "all":
            if not out.is_dir():
                raise InvalidInputError(f"results root {out} does not exist; pass --out DIR")
            path = write_overview(out)
            console.print(f"wrote {path} and {out / 'plots'}/ (and each protocol's README.md)")
        elif protocol.strip().lower() == MULTITASK.name:
            console.print(f"wrote {write_multitask_report(out)}")
        else:
            console.print(f"wrote {write_report(get_protocol(protocol), out)}")
