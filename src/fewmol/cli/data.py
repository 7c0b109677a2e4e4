"""`fewmol data ...`: inspect the dataset registry."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from fewmol.cli.multitask_data import multitask_stats
from fewmol.data import registry

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def _data() -> None:
    """Named datasets: list them and see where each one resolves."""


def _where(spec: registry.DatasetSpec, data_dir: Path | None) -> tuple[str, str | None]:
    """(status, path): status is bundled / data_dir / $FEWMOL_DATA / cache / download / missing."""
    hit = registry.find_local(spec, data_dir)
    if hit is not None:
        return hit[1], str(hit[0])
    return ("download" if spec.url else "missing"), None


_ORIGIN_LABEL = {"data_dir": "--data-dir", "$FEWMOL_DATA": "$FEWMOL_DATA", "cache": "cache"}


def _location_text(status: str, path: str | None, data_dir: Path | None, wide: bool) -> str:
    """'bundled', '--data-dir[: relpath]', '$FEWMOL_DATA[: relpath]', 'cache', 'download'..."""
    if status == "bundled":
        return "bundled"
    if path is not None:
        label = _ORIGIN_LABEL.get(status, status)
        if not wide:
            return label
        for origin, root in registry.data_roots(data_dir):
            if origin == status and Path(path).is_relative_to(root):
                return f"{label}: {Path(path).relative_to(root)}"
        return f"{label}: {path}"
    if status == "download":
        return "needs download" if wide else "download"
    return "missing (no URL)" if wide else "missing"


def _roots_caption(data_dir: Path | None) -> str:
    home = str(Path.home())
    parts = []
    for origin, root in registry.data_roots(data_dir):
        text = str(root)
        text = "~" + text[len(home) :] if text.startswith(home + "/") else text
        parts.append(f"{_ORIGIN_LABEL[origin]} = {text}")
    if not any(o == "$FEWMOL_DATA" for o, _ in registry.data_roots(data_dir)):
        parts.insert(-1, "$FEWMOL_DATA not set")
    return "searched after bundled: " + "; ".join(parts)


def _row(spec: registry.DatasetSpec, data_dir: Path | None) -> dict[str, Any]:
    status, path = _where(spec, data_dir)
    out = asdict(spec)
    out["location"] = status
    out["path"] = path
    return out


@app.command("list")
def list_(
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Directory laid out like shared/data (searched before $FEWMOL_DATA).",
        exists=True,
        file_okay=False,
        dir_okay=True,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List registered datasets and where each one resolves (bundled, a path, or download)."""
    specs = registry.list_specs()
    if as_json:
        typer.echo(json.dumps([_row(s, data_dir) for s in specs], indent=2))
        return

    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    wide = console.width >= 110
    table = Table(
        title="fewmol datasets",
        title_justify="left",
        caption=_roots_caption(data_dir),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("task", no_wrap=True)
    table.add_column("tasks", justify="right", no_wrap=True)
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    table.add_column("split", no_wrap=True)
    table.add_column("location", overflow="fold", min_width=12)
    for spec in specs:
        status, path = _where(spec, data_dir)
        table.add_row(
            spec.name,
            spec.task_type,
            str(spec.n_tasks),
            f"{spec.n_rows:,}",
            spec.metric or "-",
            spec.split,
            _location_text(status, path, data_dir, wide),
        )
    console.print(table)


app.command("multitask-stats")(multitask_stats)
