"""Markdown tables from the stored per-run JSON files (deterministic; no training)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from fewmol.bench.protocols import Protocol
from fewmol.io.checkpoint import write_text


def load_records(results: Path, protocol: str) -> list[dict[str, Any]]:
    """Every seed JSON under ``results/<protocol>/``, sorted for a stable report."""
    recs = [
        json.loads(p.read_text()) for p in sorted((Path(results) / protocol).glob("*/*/seed*.json"))
    ]
    return sorted(recs, key=lambda r: (r["method"], r["dataset"], r["seed"]))


def _scale(metric: str) -> float:
    return 100.0 if metric in ("roc_auc", "prc_auc") else 1.0


def aggregate(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, dataset) -> mean, std, n, epochs, wall time over seeds."""
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        cells[(r["method"], r["dataset"])].append(r)
    out = {}
    for key, rs in cells.items():
        vals = np.array([r["test"] for r in rs if r["test"] is not None], dtype=float)
        out[key] = {
            "mean": float(vals.mean()) if len(vals) else float("nan"),
            "std": float(vals.std()) if len(vals) else float("nan"),
            "n": len(vals),
            "seeds": sorted(r["seed"] for r in rs),
            "epochs": sorted({r["epochs"] for r in rs}),
            "wall_s": float(sum(r["wall_time_s"] for r in rs)),
            "n_molecules": rs[0]["n_molecules"],
            "commits": sorted({(r.get("git_commit") or "?")[:10] for r in rs}),
            "hardware": sorted({r.get("hardware", "?") for r in rs}),
        }
    return out


def _paper_cell(v: tuple[float, float | None] | None, scale: float) -> str:
    """A published value as printed in the paper (std in parentheses when given)."""
    if v is None:
        return "–"
    digits = 1 if scale == 100 else 3
    return f"{v[0]:.{digits}f}" + (f" ({v[1]:.{digits}f})" if v[1] is not None else "")


def markdown_table(protocol: Protocol, records: list[dict[str, Any]]) -> str:
    """Ours (mean ± std over seeds) beside the paper's rows for the same methods."""
    agg = aggregate(records)
    sc = _scale(protocol.metric)
    methods = sorted({m for m, _ in agg}, key=lambda m: (m != "none", m))
    ds = list(protocol.datasets)
    head = "| method | " + " | ".join(ds) + " | Avg |\n|---|" + "---|" * (len(ds) + 1) + "\n"
    lines = []
    for m in methods:
        cells, means = [], []
        for d in ds:
            a = agg.get((m, d))
            if not a or not a["n"]:
                cells.append("–")
                continue
            note = (
                ""
                if a["epochs"] == [protocol.epochs]
                else f" [{','.join(map(str, a['epochs']))} ep]"
            )
            seeds_note = "" if a["n"] == len(protocol.seeds) else f" (n={a['n']})"
            digits = 1 if sc == 100 else 3
            cells.append(
                f"{a['mean'] * sc:.{digits}f} ± {a['std'] * sc:.{digits}f}{note}{seeds_note}"
            )
            means.append(a["mean"] * sc)
        complete = len(means) == len(ds)
        ad = 2 if sc == 100 else 4
        avg = (
            f"{np.mean(means):.{ad}f}"
            if complete
            else (f"({np.mean(means):.{ad}f} over {len(means)})" if means else "–")
        )
        lines.append(f"| **{m}** (ours) | " + " | ".join(cells) + f" | {avg} |")
        if m in protocol.paper:
            p = protocol.paper[m]
            pc = [_paper_cell(p.get(d), sc) for d in ds]
            have = [p[d][0] for d in ds if d in p]
            pavg = f"{np.mean(have):.{2 if sc == 100 else 4}f}" if have else "–"
            if have and len(have) < len(ds):
                pavg += f" (over {len(have)})"
            lines.append(f"| {m} (paper) | " + " | ".join(pc) + f" | {pavg} |")
    return head + "\n".join(lines) + "\n"


def provenance_table(protocol: Protocol, records: list[dict[str, Any]]) -> str:
    """Budget and provenance per (method, dataset): seeds, epochs, molecules, wall time, commit."""
    agg = aggregate(records)
    rows = [
        "| method | dataset | seeds | epochs | molecules | wall time (all seeds) | commit "
        "| hardware |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (m, d), a in sorted(agg.items()):
        rows.append(
            f"| {m} | {d} | {','.join(map(str, a['seeds']))} | {','.join(map(str, a['epochs']))} "
            f"| {a['n_molecules']} | {a['wall_s'] / 60:.1f} min | {', '.join(a['commits'])} "
            f"| {'; '.join(a['hardware'])} |"
        )
    return "\n".join(rows) + "\n"


def write_report(protocol: Protocol, results: Path) -> Path:
    """Write ``results/<protocol>/README.md`` from the stored runs; return its path."""
    records = load_records(results, protocol.name)
    commands = sorted({r.get("command", "") for r in records})
    text = (
        f"# {protocol.name}: test {protocol.metric}"
        f"{' (%)' if _scale(protocol.metric) == 100 else ''}, {protocol.split} split\n\n"
        "Generated by `fewmol bench report` from the per-run JSON files beside this page; "
        "do not edit by hand.\n\n"
        f"Ours: mean ± std over seeds of the test score at the best-validation epoch; "
        f"fine-tuning Adam lr {protocol.lr}, batch {protocol.batch_size}, dropout "
        f"{protocol.dropout}, {protocol.epochs} epochs unless a cell says `[N ep]`; "
        f"`(n=k)` marks cells with fewer than {len(protocol.seeds)} seeds finished. "
        f"Rows marked *(paper)* are the published numbers ({protocol.paper_source}), "
        "not ours. The Avg column is only given when every dataset is present.\n\n"
        + markdown_table(protocol, records)
        + "\n## Budget and provenance\n\n"
        + provenance_table(protocol, records)
        + "\nCommands:\n\n"
        + "\n".join(f"    {c}" for c in commands if c)
        + "\n"
    )
    path = Path(results) / protocol.name / "README.md"
    write_text(path, text)
    return path
