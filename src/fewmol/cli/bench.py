"""`fewmol bench`: reproduce the paper tables, resumable per (dataset, method, seed)."""

from __future__ import annotations

from pathlib import Path

import typer

from fewmol.bench.protocols import get_protocol
from fewmol.bench.report import write_report
from fewmol.bench.run import run_grid
from fewmol.cli.common import console, parse_seeds, split_list, user_errors
from fewmol.errors import InvalidInputError

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("run", no_args_is_help=True)
def run(
    protocol: str = typer.Argument(..., help="classification"),
    methods: str = typer.Option("none", help="Comma-separated: none or pre-training methods."),
    seeds: str = typer.Option("0,1,2"),
    datasets: str = typer.Option(None, help="Comma-separated subset (default: all)."),
    epochs: int = typer.Option(None, help="Fine-tuning epochs (default: the paper's)."),
    out: Path = typer.Option(Path("benchmarks/results"), help="Results root."),
    work: Path = typer.Option(Path("benchmarks/work"), help="Model dirs and checkpoints."),
    pretrained: str = typer.Option(None, help="METHOD=DIR,... encoders for the methods."),
    data_dir: Path = typer.Option(None),
    accelerator: str = typer.Option("auto"),
    progress: bool = typer.Option(False),
) -> None:
    """Run the missing cells of a protocol grid, then rewrite its results page."""
    with user_errors():
        proto = get_protocol(protocol)
        mapping = {}
        for item in split_list(pretrained) or []:
            if "=" not in item:
                raise InvalidInputError(f"--pretrained takes METHOD=DIR pairs, got {item!r}")
            k, v = item.split("=", 1)
            mapping[k] = v
        run_grid(
            proto,
            split_list(methods) or ["none"],
            parse_seeds(seeds),
            split_list(datasets) or list(proto.datasets),
            out,
            work,
            epochs,
            data_dir,
            mapping,
            progress=progress,
            accelerator=accelerator,
            log=lambda s: console.print(s, highlight=False),
        )
        console.print(f"results page: {write_report(proto, out)}")


@app.command("report")
def report(
    protocol: str = typer.Argument("classification"),
    out: Path = typer.Option(Path("benchmarks/results"), help="Results root."),
) -> None:
    """Rebuild the results page of a protocol from the stored per-run JSON files."""
    with user_errors():
        console.print(f"wrote {write_report(get_protocol(protocol), out)}")
