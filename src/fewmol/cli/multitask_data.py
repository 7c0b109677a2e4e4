"""`fewmol data multitask-stats`: size and density of the multi-task sets (REFERENCE B style)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import typer

from fewmol.cli.common import user_errors
from fewmol.errors import DatasetNotFoundError, InvalidInputError

_KNOWN = ("chembl", "kiba-mt", "toxcast")


def _parse_thresholds(value: str) -> list[tuple[int, int | None]]:
    """'10,50:10' -> [(10, None), (50, 10)]: task threshold and optional molecule threshold."""
    out: list[tuple[int, int | None]] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?::(\d+))?", part)
        if m is None:
            raise InvalidInputError(
                f"--thresholds takes comma-separated K or K:M (tasks >= K labels, molecules "
                f">= M), got {part!r}"
            )
        out.append((int(m.group(1)), None if m.group(2) is None else int(m.group(2))))
    if not out:
        raise InvalidInputError("--thresholds needs at least one number")
    return out


def _parse_datasets(value: str) -> list[str]:
    names = [v.strip().lower() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in _KNOWN]
    if unknown or not names:
        raise InvalidInputError(f"--datasets takes a subset of {', '.join(_KNOWN)}; got {value!r}")
    return names


def _row_cells(s: dict[str, Any]) -> list[str]:
    learned = s["edges"] is None
    return [
        s["dataset"],
        f"{s['molecules']:,}",
        f"{s['tasks']:,}",
        f"{s['label_density']:.2f}%",
        f"{s['positives']:.1f}%",
        "learned" if learned else f"{s['edges']:,}",
        "-" if learned else str(s["isolated_tasks"]),
    ]


def multitask_stats(
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Directory laid out like shared/data (searched before $FEWMOL_DATA).",
        exists=True,
        file_okay=False,
        dir_okay=True,
    ),
    thresholds: str = typer.Option(
        "10,50,100",
        "--thresholds",
        help="ChEMBL label thresholds: K = >= K labels per molecule and per task (the "
        "paper's rule); K:M = tasks >= K, molecules >= M.",
    ),
    pchembl: float = typer.Option(
        6.0, "--pchembl", help="ChEMBL actives: pChEMBL >= this (6 = 1 uM)."
    ),
    kiba_threshold: float = typer.Option(
        12.1, "--kiba-threshold", help="KIBA actives: transformed KIBA score >= this."
    ),
    datasets: str = typer.Option(
        ",".join(_KNOWN), "--datasets", help="Which sets to load: chembl, kiba-mt, toxcast."
    ),
    markdown: bool = typer.Option(False, "--markdown", help="Print a markdown table instead."),
) -> None:
    """Molecules, tasks, label density, positives and task-graph edges of each multi-task set."""
    from fewmol.multitask import datasets as mt

    with user_errors():
        levels = _parse_thresholds(thresholds)
        names = _parse_datasets(datasets)
        rows: list[list[str]] = []
        notes: list[str] = []
        jobs: list[tuple[str, Callable[[], Any]]] = []
        for name in names:
            if name == "chembl":
                for k, m in levels:
                    jobs.append(
                        (
                            mt.chembl_name(k, m),
                            partial(
                                mt.load_chembl,
                                data_dir,
                                pchembl,
                                k,
                                min_molecule_labels=m,
                                download=False,
                            ),
                        )
                    )
            elif name == "kiba-mt":
                jobs.append((name, partial(mt.load_kiba_mt, data_dir, kiba_threshold)))
            else:
                jobs.append((name, partial(mt.load_toxcast_mt, data_dir)))
        with warnings.catch_warnings(record=True) as caught:
            # Our loaders report dropped rows as UserWarnings; library deprecations stay out.
            warnings.simplefilter("ignore")
            warnings.simplefilter("always", UserWarning)
            for label, load in jobs:
                try:
                    rows.append(_row_cells(mt.statistics(load())))
                except DatasetNotFoundError:
                    # A missing file or an empty filter level should not hide the other rows.
                    rows.append([label, "missing", "-", "-", "-", "-", "-"])
                    notes.append(
                        f"{label}: data files not found; pass --data-dir DIR laid out like "
                        "shared/data, or set $FEWMOL_DATA"
                    )
                except InvalidInputError as e:
                    rows.append([label, "0", "0", "-", "-", "-", "-"])
                    notes.append(str(e))
        notes.extend(str(w.message) for w in caught)
        _print(rows, notes, markdown, pchembl, kiba_threshold)


def _print(
    rows: list[list[str]], notes: list[str], markdown: bool, pchembl: float, kiba: float
) -> None:
    header = ["dataset", "molecules", "tasks", "density", "positives", "edges", "isolated"]
    caption = f"actives: ChEMBL pChEMBL >= {pchembl:g}; KIBA score >= {kiba:g}"
    if markdown:
        typer.echo("| " + " | ".join(header) + " |")
        typer.echo("|" + "---|" * len(header))
        for r in rows:
            typer.echo("| " + " | ".join(r) + " |")
        typer.echo(f"\n{caption}")
    else:
        from rich import box
        from rich.console import Console
        from rich.table import Table

        table = Table(
            title="multi-task datasets",
            title_justify="left",
            caption=caption,
            caption_justify="left",
            box=box.SIMPLE_HEAD,
        )
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
        for r in rows:
            table.add_row(*r)
        Console().print(table)
    for note in notes:
        typer.echo(f"note: {note}", err=True)


__all__ = ["multitask_stats"]
