"""Results pages and plots from the stored per-run JSON files (deterministic; no training).

``write_report(protocol)`` writes ``<results>/<protocol>/README.md``; ``write_overview``
writes ``<results>/README.md`` (every protocol present: its table beside the paper's rows, a
caption with the fine-tuning and pre-training budget, secondary metrics, gain over no
pre-training) and PNGs in ``<results>/plots/``. The same JSON files always give the same bytes:
nothing depends on the clock, file order, or matplotlib's version string.
"""

from __future__ import annotations

import io
import json
import math
import os
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fewmol.bench.ablation import ablation_table
from fewmol.bench.protocols import PROTOCOLS, Protocol, metric_digits, metric_scale
from fewmol.io.checkpoint import write_text

Agg = dict[tuple[str, str], dict[str, Any]]

# Fixed colours so a method looks the same in every plot, whatever else is plotted beside it.
METHOD_COLOURS = {
    "none": "#8c8c8c",
    "attrmask": "#1f77b4",
    "contextpred": "#ff7f0e",
    "edgepred": "#bcbd22",
    "infograph": "#17becf",
    "graphcl": "#e377c2",
    "joao": "#8c564b",
    "graphmvp": "#2ca02c",
    "graphmvp-g": "#d62728",
    "graphmvp-c": "#9467bd",
}
_EXTRA_COLOURS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d")
PLOT_DPI = 100
_RC = {
    "svg.hashsalt": "fewmol",  # SVG ids would otherwise be random
    "font.family": "DejaVu Sans",  # bundled with matplotlib: same glyphs on every machine
    "font.size": 8,
    "figure.dpi": PLOT_DPI,
    "savefig.dpi": PLOT_DPI,
}


def load_records(results: Path, protocol: str) -> list[dict[str, Any]]:
    """Every seed JSON under ``results/<protocol>/``, sorted for a stable report."""
    recs = [
        json.loads(p.read_text()) for p in sorted((Path(results) / protocol).glob("*/*/seed*.json"))
    ]
    return sorted(recs, key=lambda r: (r["method"], r["dataset"], r["seed"]))


def _value(r: dict[str, Any], metric: str | None) -> float | None:
    """The primary test score (``metric`` None) or a secondary test metric of a record."""
    if metric is None:
        return r.get("test")
    v = (r.get("test_metrics") or {}).get(metric)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def aggregate(records: list[dict[str, Any]], metric: str | None = None) -> Agg:
    """(method, dataset) -> mean, std (ddof 0), n, epochs, wall time over seeds.

    ``metric`` None aggregates each record's primary ``test`` score, else that entry of its
    ``test_metrics`` (records written before those were stored simply count as missing).
    """
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        cells[(r["method"], r["dataset"])].append(r)
    out = {}
    for key, rs in cells.items():
        vals = np.array([v for r in rs if (v := _value(r, metric)) is not None], dtype=float)
        out[key] = {
            "mean": float(vals.mean()) if len(vals) else float("nan"),
            "std": float(vals.std()) if len(vals) else float("nan"),
            "n": len(vals),
            "seeds": sorted(r["seed"] for r in rs),
            "epochs": sorted({r["epochs"] for r in rs}),
            # GIN runs only: a forest has no training precision
            "precisions": sorted(
                {r.get("precision", "32-true") for r in rs if r.get("epochs") is not None}
            ),
            "max_pairs": sorted({r.get("max_pairs") or 0 for r in rs}),
            "wall_s": float(sum(r["wall_time_s"] for r in rs)),
            "n_molecules": rs[0].get("n_molecules"),
            "n_pairs": rs[0].get("n_pairs"),
            "n_train_pairs": sorted({r["n_train_pairs"] for r in rs if "n_train_pairs" in r}),
            "pairs_per_s": [r["train_pairs_per_s"] for r in rs if r.get("train_pairs_per_s")],
            "commits": sorted({(r.get("git_commit") or "?")[:10] for r in rs}),
            # what the GIN read (records of classical baselines and old runs may lack it)
            "featurizers": sorted({f for r in rs if (f := r.get("featurizer"))}),
            "hardware": sorted({r.get("hardware", "?") for r in rs}),
        }
    return out


def order_methods(methods: Sequence[str] | set[str]) -> list[str]:
    """'none' first, then the others alphabetically (the order of every table and plot)."""
    return sorted(set(methods), key=lambda m: (m != "none", m))


def _paper_cell(v: tuple[float, float | None] | None, scale: float) -> str:
    """A published value as printed in the paper (std in parentheses when given)."""
    if v is None:
        return "–"
    digits = 1 if scale == 100 else 3
    return f"{v[0]:.{digits}f}" + (f" ({v[1]:.{digits}f})" if v[1] is not None else "")


def _cell_notes(protocol: Protocol, a: dict[str, Any]) -> str:
    """'[N ep]' when a cell ran another budget than the paper's, '(n=k)' for missing seeds."""
    # a classical baseline (epochs None) has no epochs to differ in
    same = a["epochs"] in ([protocol.epochs], [None])
    note = "" if same else f" [{','.join(map(str, a['epochs']))} ep]"
    if a["precisions"] not in ([], ["32-true"]):
        note += f" [{','.join(a['precisions'])}]"
    if a["max_pairs"] != [0]:
        note += f" [{','.join(str(p or 'all') for p in a['max_pairs'])} train pairs]"
    return note + ("" if a["n"] == len(protocol.seeds) else f" (n={a['n']})")


def markdown_table(protocol: Protocol, records: list[dict[str, Any]]) -> str:
    """Ours (mean ± std over seeds) beside the paper's rows for the same methods."""
    agg = aggregate(records)
    sc = metric_scale(protocol.metric)
    methods = order_methods({m for m, _ in agg})
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
            digits = metric_digits(protocol.metric)
            notes = _cell_notes(protocol, a)
            cells.append(f"{a['mean'] * sc:.{digits}f} ± {a['std'] * sc:.{digits}f}{notes}")
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


def secondary_tables(protocol: Protocol, records: list[dict[str, Any]]) -> str:
    """One table per secondary test metric (ours only: the paper reports none of them)."""
    out = []
    for metric in protocol.secondary:
        agg = aggregate(records, metric)
        if not any(a["n"] for a in agg.values()):
            continue
        sc, dg = metric_scale(metric), metric_digits(metric)
        ds = list(protocol.datasets)
        rows = [
            f"Test {_metric_name(metric)} (ours, mean ± std over seeds, same runs and epoch as "
            "the main table):",
            "",
            "| method | " + " | ".join(ds) + " |",
            "|---|" + "---|" * len(ds),
        ]
        for m in order_methods({m for m, _ in agg}):
            cells = []
            for d in ds:
                a = agg.get((m, d))
                if a is None or not a["n"]:
                    cells.append("–")
                    continue
                seeds_note = "" if a["n"] == len(protocol.seeds) else f" (n={a['n']})"
                cells.append(f"{a['mean'] * sc:.{dg}f} ± {a['std'] * sc:.{dg}f}{seeds_note}")
            rows.append(f"| **{m}** (ours) | " + " | ".join(cells) + " |")
        out.append("\n".join(rows) + "\n")
    return "\n".join(out)


def _metric_name(metric: str) -> str:
    return {
        "roc_auc": "ROC-AUC (%)",
        "prc_auc": "PRC-AUC (%)",
        "rmse": "RMSE",
        "mae": "MAE",
        "r2": "R²",
        "mse": "MSE",
        "ci": "concordance index",
    }.get(metric, metric)


def baseline_row(agg: Agg, method: str, dataset: str) -> str | None:
    """The no-pre-training row to compare ``method`` with on ``dataset``: ``none`` on the same
    featuriser, else ``none+<featuriser>`` (a pre-trained OGB encoder against a from-scratch
    OGB model: a featuriser change is not a pre-training gain); None when neither has run."""
    feats = agg[(method, dataset)]["featurizers"]
    for base in ("none", *(f"none+{f}" for f in feats)):
        b = agg.get((base, dataset))
        # a row that recorded no featuriser (records older than the field) meets plain none
        if b and b["n"] and (b["featurizers"] == feats or (not feats and base == "none")):
            return base
    return None


def gain_over_none(protocol: Protocol, agg: Agg) -> dict[tuple[str, str], tuple[float, float]]:
    """(method, dataset) -> (gain, its std) over no pre-training, positive = better than none.

    Against :func:`baseline_row` (``none`` on the same featuriser). Sign-aware: method − none
    for higher-is-better metrics (ROC-AUC), none − method for lower-is-better ones (RMSE, MSE);
    in the table's units (ROC-AUC in points of %). The std combines both rows' seed stds as
    independent. Rows without pre-training (``none+<featuriser>``, a classical baseline) get
    no gain, and neither do cells fine-tuned for other epochs than the baseline's cell (the
    ablation's Tox21 / ToxCast cells at 30 epochs against the ``none`` row's 100).
    """
    sign = 1.0 if protocol.higher_is_better else -1.0
    sc = metric_scale(protocol.metric)
    out = {}
    for (m, d), a in agg.items():
        if m == "none" or m.startswith("none+") or not a["n"]:
            continue
        if a["epochs"] == [None]:  # the classical baseline is no pre-training: no gain row
            continue
        base_row = baseline_row(agg, m, d)
        if base_row is None:
            continue
        base = agg[(base_row, d)]
        if a["epochs"] != base["epochs"]:
            continue  # fine-tuned for other epochs than the baseline: not a like-for-like gain
        gain = sign * (a["mean"] - base["mean"]) * sc
        out[(m, d)] = (gain, math.hypot(a["std"], base["std"]) * sc)
    return out


def paper_gain(protocol: Protocol, method: str, dataset: str) -> float | None:
    """The paper's gain of ``method`` over its 'none' row on ``dataset`` (same sign rule)."""
    p, base = (
        protocol.paper.get(method, {}).get(dataset),
        protocol.paper.get("none", {}).get(dataset),
    )
    if p is None or base is None:
        return None
    return (1.0 if protocol.higher_is_better else -1.0) * (p[0] - base[0])


def gain_table(protocol: Protocol, records: list[dict[str, Any]]) -> str:
    """Gain over 'none' per dataset for each pre-trained method, ours then the paper's."""
    agg = aggregate(records)
    gains = gain_over_none(protocol, agg)
    methods = order_methods({m for m, _ in gains})
    if not methods:
        return ""
    dg = metric_digits(protocol.metric)
    ds = list(protocol.datasets)
    direction = "method − none" if protocol.higher_is_better else "none − method"
    rows = [
        f"Gain over no pre-training ({direction} in {_metric_name(protocol.metric)}, against "
        "the `none` row on the same featuriser, e.g. `none+ogb` for a row pre-trained on OGB "
        "features; positive = pre-training helped; ± combines both rows' seed stds):",
        "",
        "| method | " + " | ".join(ds) + " |",
        "|---|" + "---|" * len(ds),
    ]
    for m in methods:
        cells = [
            f"{gains[(m, d)][0]:+.{dg}f} ± {gains[(m, d)][1]:.{dg}f}" if (m, d) in gains else "–"
            for d in ds
        ]
        rows.append(f"| **{m}** (ours) | " + " | ".join(cells) + " |")
        if m in protocol.paper and "none" in protocol.paper:
            pg = [paper_gain(protocol, m, d) for d in ds]
            pd_ = metric_digits(protocol.metric)
            rows.append(
                f"| {m} (paper) | "
                + " | ".join("–" if g is None else f"{g:+.{pd_}f}" for g in pg)
                + " |"
            )
    return "\n".join(rows) + "\n"


def provenance_table(protocol: Protocol, records: list[dict[str, Any]]) -> str:
    """Budget and provenance per (method, dataset): seeds, epochs, data size, wall time, commit."""
    agg = aggregate(records)
    if protocol.runner == "dta":
        rows = [
            "| method | dataset | seeds | epochs | pairs (trained on) | pairs/s | wall time "
            "(all seeds) | commit | hardware |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
    else:
        rows = [
            "| method | dataset | seeds | epochs | molecules | wall time (all seeds) | commit "
            "| hardware |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for (m, d), a in sorted(agg.items()):
        size = f"{a['n_molecules']}"
        if protocol.runner == "dta":
            speed = f"{np.median(a['pairs_per_s']):.0f}" if a["pairs_per_s"] else "?"
            size = f"{a['n_pairs']} ({','.join(map(str, a['n_train_pairs']))}) | {speed}"
        rows.append(
            f"| {m} | {d} | {','.join(map(str, a['seeds']))} "
            f"| {','.join('–' if e is None else str(e) for e in a['epochs'])} "
            f"| {size} | {a['wall_s'] / 60:.1f} min | {', '.join(a['commits'])} "
            f"| {'; '.join(a['hardware'])} |"
        )
    return "\n".join(rows) + "\n"


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "? h"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _budget_data(budget: dict[str, Any]) -> str:
    """'graphmvp on 50,000 molecules × 1 conformers, 7 epochs' (what was trained, how long)."""
    mols = budget.get("molecules")
    per = budget.get("conformers_per_molecule")
    data = f"{mols:,} molecules" if isinstance(mols, int) else "? molecules"
    if per:
        data += f" × {per:g} conformers"
    done, planned = budget.get("epochs_done"), budget.get("epochs")
    epochs = f"{done if done is not None else '?'}" + (
        f" of {planned} epochs" if planned not in (None, done) else " epochs"
    )
    method = budget.get("method") or budget.get("kind") or "?"
    return f"{method} on {data}, {epochs}"


def budgets_text(budgets: list[dict[str, Any]]) -> str:
    """Several records' budgets as phrases, one per encoder dir and recipe.

    Records written at different times may hold different wall times for one dir (an encoder
    re-made bit for bit on a new machine, or a config rewritten by a resume before that was
    fixed); the phrase then gives each value instead of repeating itself per record.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for b in budgets:
        groups[(_budget_data(b), str(b.get("source")))].append(b)
    out = []
    for (data, source), bs in sorted(groups.items()):
        walls = sorted({b.get("wall_time_s") for b in bs}, key=lambda w: (w is None, w or 0))
        texts = list(dict.fromkeys(_hours(w) for w in walls))
        shas = sorted({b["weights_sha256"][:12] for b in bs if b.get("weights_sha256")})
        weights = f", weights sha256 {', '.join(shas)}" if shas else ""
        if shas and not all(b.get("weights_sha256") for b in bs):
            weights += " where recorded"
        wall = texts[0] if len(texts) == 1 else f"{' or '.join(texts)} (as records give it)"
        out.append(f"{data}, {wall} (`{source}`{weights})")
    return "; ".join(out)


def pretraining_summary(records: list[dict[str, Any]]) -> dict[str, str]:
    """method -> what its encoder was pre-trained on, with what budget (older records: unknown)."""
    by_method: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_method[r["method"]].append(r)
    out = {}
    for m, rs in by_method.items():
        if all(not r.get("init") for r in rs):
            out[m] = "no pre-training"
            continue
        text = budgets_text([r["pretraining"] for r in rs if r.get("pretraining")])
        texts = [text] if text else []
        missing = sorted(
            {str(r.get("init")) for r in rs if r.get("init") and not r.get("pretraining")}
        )
        if missing:
            texts.append(
                "budget not recorded (runs written before records kept it; "
                f"init {', '.join(missing)})"
            )
        out[m] = "; ".join(texts)
    return out


def _epochs_text(protocol: Protocol, rs: list[dict[str, Any]]) -> str:
    """'100 epochs' or '100 epochs (bbbp, sider), 30 epochs (cep)' for one method's runs."""
    by_ep: dict[int, set[str]] = defaultdict(set)
    for r in rs:
        by_ep[r["epochs"]].add(r["dataset"])

    def n(e: int) -> str:
        return f"{e} epoch{'' if e == 1 else 's'}"

    if len(by_ep) == 1:
        return n(next(iter(by_ep)))
    return ", ".join(
        f"{n(e)} ({', '.join(d for d in protocol.datasets if d in by_ep[e])})"
        for e in sorted(by_ep, reverse=True)
    )


def _precision_text(rs: list[dict[str, Any]]) -> str:
    """', precision 32-true (bbbp); bf16-mixed (hiv)' when some runs trained below float32."""
    by_p: dict[str, set[str]] = defaultdict(set)
    for r in rs:
        by_p[r.get("precision", "32-true")].add(r["dataset"])
    if set(by_p) <= {"32-true"}:
        return ""
    return ", precision " + "; ".join(f"{p} ({', '.join(sorted(by_p[p]))})" for p in sorted(by_p))


def _pairs_text(rs: list[dict[str, Any]]) -> str:
    """DTA: how many training pairs each dataset's runs used."""
    per: dict[str, set[str]] = defaultdict(set)
    for r in rs:
        n = r.get("n_train_pairs")
        per[r["dataset"]].add(
            f"{n:,}" + (" (subsample)" if r.get("max_pairs") else "") if n is not None else "?"
        )
    return ", ".join(f"{d} {'/'.join(sorted(v))}" for d, v in sorted(per.items()))


def _is_baseline(rs: list[dict[str, Any]]) -> bool:
    """Whether a method's runs are the classical baseline (no GIN, so no epochs)."""
    return all(r.get("epochs") is None for r in rs)


def baseline_text(method: str, rs: list[dict[str, Any]]) -> str:
    """What the classical-baseline row is, with its budget (one line)."""
    trees = ", ".join(sorted({str(r.get("n_estimators", "?")) for r in rs}))
    wall = sum(r["wall_time_s"] for r in rs)
    return (
        f"**{method}**: classical baseline, no GNN: a random forest ({trees} trees per task) on "
        f"{rs[0].get('features') or rs[0].get('featurizer')}, fitted on the same training "
        f"split; {_hours(wall)} wall time over {len(rs)} runs (fitting and scoring)."
    )


def caption(protocol: Protocol, records: list[dict[str, Any]]) -> str:
    """The table's caption: fine-tuning and pre-training budget per method, hardware, commits."""
    by_method: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_method[r["method"]].append(r)
    pre = pretraining_summary(records)
    seeds = sorted({r["seed"] for r in records})
    if protocol.runner == "dta":
        setup = (
            f"GIN drug encoder (dropout {protocol.dropout}) + DeepDTA protein CNN + MLP, Adam lr "
            f"{protocol.lr}, batch {protocol.batch_size}; validation fold 0 of the 5 training folds"
        )
    else:
        setup = (
            f"GIN fine-tuning, Adam lr {protocol.lr}, batch {protocol.batch_size}, dropout "
            f"{protocol.dropout}"
        )
    lines = [
        f"*Caption.* {setup}; seeds {','.join(map(str, seeds))}; the paper's budget is "
        f"{protocol.epochs} epochs. Test score at the best-validation epoch. Per method:",
        "",
    ]
    for m in order_methods(by_method):
        rs = by_method[m]
        wall = sum(r["wall_time_s"] for r in rs)
        feats = ", ".join(sorted({r.get("featurizer") or "?" for r in rs}))
        extra = f", training pairs: {_pairs_text(rs)}" if protocol.runner == "dta" else ""
        if _is_baseline(rs):
            lines.append(f"- {baseline_text(m, rs)}")
            continue
        lines.append(
            f"- **{m}**: pre-training: {pre[m]}; fine-tuning: {_epochs_text(protocol, rs)}"
            f"{extra}, featuriser {feats}{_precision_text(rs)}, {_hours(wall)} wall time over "
            f"{len(rs)} runs."
        )
    hw = "; ".join(sorted({r.get("hardware", "?") for r in records}))
    commits = ", ".join(sorted({(r.get("git_commit") or "?")[:10] for r in records}))
    dirty = sum(1 for r in records if r.get("git_dirty"))
    note = (
        f" ({dirty} of {len(records)} runs from a tree with uncommitted changes)" if dirty else ""
    )
    lines += ["", f"Hardware: {hw}. Commits: {commits}{note}."]
    return "\n".join(lines) + "\n"


def write_report(protocol: Protocol, results: Path) -> Path:
    """Write ``results/<protocol>/README.md`` from the stored runs; return its path."""
    records = load_records(results, protocol.name)
    commands = sorted({r.get("command", "") for r in records})
    secondary = secondary_tables(protocol, records)
    ablation = ablation_table(protocol, records)
    pre = pretraining_summary(records)
    pre_lines = [f"- **{m}**: {pre[m]}" for m in order_methods(pre) if pre[m] != "no pre-training"]
    by_method: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_method[r["method"]].append(r)
    base = [baseline_text(m, rs) for m, rs in sorted(by_method.items()) if _is_baseline(rs)]
    text = (
        f"# {protocol.name}: test {protocol.metric}"
        f"{' (%)' if metric_scale(protocol.metric) == 100 else ''}, {protocol.split} split\n\n"
        "Generated by `fewmol bench report` from the per-run JSON files beside this page; "
        "do not edit by hand.\n\n"
        f"Ours: mean ± std over seeds of the test score at the best-validation epoch; "
        f"fine-tuning Adam lr {protocol.lr}, batch {protocol.batch_size}, dropout "
        f"{protocol.dropout}, {protocol.epochs} epochs unless a cell says `[N ep]`; "
        f"`(n=k)` marks cells with fewer than {len(protocol.seeds)} seeds finished. "
        f"Rows marked *(paper)* are the published numbers ({protocol.paper_source}), "
        "not ours. The Avg column is only given when every dataset is present.\n\n"
        + "".join(f"{b}\n\n" for b in base)
        + markdown_table(protocol, records)
        + (f"\n{secondary}" if secondary else "")
        + (f"\n## GraphMVP loss ablation\n\n{ablation}" if ablation else "")
        + ("\n## Pre-training budget\n\n" + "\n".join(pre_lines) + "\n" if pre_lines else "")
        + "\n## Budget and provenance\n\n"
        + provenance_table(protocol, records)
        + "\nCommands:\n\n"
        + "\n".join(f"    {c}" for c in commands if c)
        + "\n"
    )
    path = Path(results) / protocol.name / "README.md"
    write_text(path, text)
    return path


# ------------------------------------------------------------------------------------ plots
def method_colour(method: str) -> str:
    """Fixed colour of a method (a stable hash picks one for methods outside the known list)."""
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return _EXTRA_COLOURS[zlib.crc32(method.encode()) % len(_EXTRA_COLOURS)]


def _write_bytes(path: Path, data: bytes) -> None:
    """Write a file atomically (temporary name in the same dir, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # open() keeps the umask's mode
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _save_png(fig: Any, path: Path) -> None:
    """PNG bytes that depend only on the figure: no 'Software' (version) text chunk."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PLOT_DPI, metadata={"Software": None})
    _write_bytes(path, buf.getvalue())


def _with_rc(fn: Callable[[], None]) -> None:
    import matplotlib

    with matplotlib.rc_context(_RC):
        fn()


def plot_bars(protocol: Protocol, records: list[dict[str, Any]], path: Path) -> Path | None:
    """Per-dataset bars (ours, mean ± std over seeds) with the paper's value marked."""
    from matplotlib.figure import Figure

    agg = aggregate(records)
    sc = metric_scale(protocol.metric)
    methods = order_methods({m for m, _ in agg})
    ds = [d for d in protocol.datasets if any(agg.get((m, d), {}).get("n") for m in methods)]
    if not ds:
        return None

    def draw() -> None:
        ncols = min(len(ds), 4)
        nrows = math.ceil(len(ds) / ncols)
        width = max(6.4, 0.4 + ncols * max(2.4, 0.45 * len(methods) + 1))
        fig = Figure(figsize=(width, 1.0 + 2.8 * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, d in zip(axes.flat, ds):
            lo, hi = [], []
            for i, m in enumerate(methods):
                a = agg.get((m, d))
                if a and a["n"]:
                    mean, std = a["mean"] * sc, a["std"] * sc
                    ax.bar(i, mean, 0.7, color=method_colour(m), edgecolor="black", lw=0.5)
                    ax.errorbar(i, mean, yerr=std, color="black", capsize=3, lw=0.8)
                    lo.append(mean - std)
                    hi.append(mean + std)
                p = protocol.paper.get(m, {}).get(d)
                if p is not None:
                    ax.plot(i, p[0], marker="_", color="black", markersize=14, mew=2)
                    lo.append(p[0])
                    hi.append(p[0])
            pad = 0.15 * (max(hi) - min(lo)) + 0.02 * max(abs(max(hi)), 1e-9)
            ax.set_ylim(max(0.0, min(lo) - pad), max(hi) + pad)
            ax.set_xlim(-0.6, len(methods) - 0.4)
            ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right")
            ax.set_title(d)
            ax.grid(axis="y", lw=0.3, alpha=0.6)
        for ax in list(axes.flat)[len(ds) :]:
            ax.set_visible(False)
        axes[0][0].set_ylabel(_metric_name(protocol.metric))
        better = "higher" if protocol.higher_is_better else "lower"
        fig.suptitle(
            f"{protocol.title or protocol.name} ({better} is better)\nbars: ours, mean ± std "
            "over seeds; black dash: the published value (paper)"
        )
        fig.set_layout_engine("constrained")
        _save_png(fig, path)

    _with_rc(draw)
    return path


def plot_gain(protocol: Protocol, records: list[dict[str, Any]], path: Path) -> Path | None:
    """Gain over no pre-training per dataset for each pre-trained method (positive = better)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    agg = aggregate(records)
    gains = gain_over_none(protocol, agg)
    methods = order_methods({m for m, _ in gains})
    ds = [d for d in protocol.datasets if any((m, d) in gains for m in methods)]
    if not ds:
        return None

    def draw() -> None:
        fig = Figure(figsize=(max(6.4, 2.5 + len(ds) * (0.5 + 0.3 * len(methods))), 3.6))
        ax = fig.subplots()
        width = 0.8 / len(methods)
        for j, m in enumerate(methods):
            for k, d in enumerate(ds):
                x = k + (j - (len(methods) - 1) / 2) * width
                if (m, d) in gains:
                    g, e = gains[(m, d)]
                    ax.bar(x, g, width, color=method_colour(m), edgecolor="black", lw=0.5)
                    ax.errorbar(x, g, yerr=e, color="black", capsize=2, lw=0.8)
                pg = paper_gain(protocol, m, d)
                if pg is not None:
                    ax.plot(x, pg, marker="x", color="black", markersize=5, mew=1.2)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xticks(range(len(ds)), ds)
        direction = "method − none" if protocol.higher_is_better else "none − method"
        ax.set_ylabel(f"gain in {_metric_name(protocol.metric)} ({direction})")
        ax.grid(axis="y", lw=0.3, alpha=0.6)
        handles = [Patch(color=method_colour(m), label=m) for m in methods]
        handles.append(
            Line2D([], [], color="black", marker="x", ls="none", label="paper (published)")
        )
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.suptitle(
            f"{protocol.title or protocol.name}\ngain over no pre-training on the same "
            "featuriser (positive = better); error bars: both rows' seed stds combined"
        )
        fig.set_layout_engine("constrained")
        _save_png(fig, path)

    _with_rc(draw)
    return path


def score_vs_pretrain_time(
    protocol: Protocol, records: list[dict[str, Any]]
) -> tuple[list[tuple[str, float, float]], list[str]]:
    """(method, pre-training hours, average score) per GIN method, over their common datasets.

    Only datasets every plotted method has a score on are averaged, so points compare; the
    classical baseline has no encoder and is left out; no pre-training counts as 0 h.
    """
    agg = aggregate(records)
    by_method: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_method[r["method"]].append(r)
    methods = [m for m in order_methods(by_method) if not _is_baseline(by_method[m])]
    common = [d for d in protocol.datasets if all(agg.get((m, d), {}).get("n") for m in methods)]
    if not methods or not common:
        return [], []
    points = []
    for m in methods:
        walls = [
            r["pretraining"]["wall_time_s"]
            for r in by_method[m]
            if r.get("init") and (r.get("pretraining") or {}).get("wall_time_s") is not None
        ]
        if any(r.get("init") for r in by_method[m]) and not walls:
            continue  # pre-trained, but its budget was not recorded: no x to place it at
        hours = float(np.median(walls)) / 3600 if walls else 0.0
        score = float(np.mean([agg[(m, d)]["mean"] for d in common])) * metric_scale(
            protocol.metric
        )
        points.append((m, hours, score))
    return points, common


# label offsets tried in turn (points from the marker's centre): beside, above/below, further out
# fmt: off
_LABEL_OFFSETS = (
    (5, 2), (5, -2), (-5, 2), (-5, -2), (0, 5), (0, -5),
    (5, 10), (5, -10), (-5, 10), (-5, -10), (0, 16), (0, -16),
    (14, 18), (14, -18), (-14, 18), (-14, -18), (0, 28), (0, -28),
)
# fmt: on


def place_point_labels(
    ax: Any,
    labelled: Sequence[tuple[str, float, float]],
    fontsize: float = 8,
    colour: Callable[[str], Any] | None = None,
) -> list[Any]:
    """Name each (label, x, y) point at the nearest offset clear of other labels and markers.

    Greedy, left to right: each label takes the first offset of ``_LABEL_OFFSETS`` whose text
    box overlaps no label placed before it and no marker, and stays inside the axes; failing
    that, the offset with the fewest clashes. ``colour(label)`` colours the text like its
    marker, so a label between two close points is read right. Needs a figure with a renderer
    (an Agg canvas) and its layout settled, since boxes are measured in display space.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    centres = ax.transData.transform([(x, y) for _, x, y in labelled]) if labelled else []
    r = 4.0 * fig.dpi / 72.0  # a little over the radius of a size-40 marker, in pixels
    markers = [Bbox.from_extents(px - r, py - r, px + r, py + r) for px, py in centres]
    frame = ax.get_window_extent(renderer)
    placed: list[Any] = []
    annotations: list[Any] = []
    for i in sorted(range(len(labelled)), key=lambda k: (centres[k][0], -centres[k][1])):
        name, x, y = labelled[i]
        best: tuple[int, Any, Any] | None = None
        for dx, dy in _LABEL_OFFSETS:
            ann = ax.annotate(
                name,
                (x, y),
                textcoords="offset points",
                xytext=(dx, dy),
                fontsize=fontsize,
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top",
                color=colour(name) if colour else None,
            )
            box = ann.get_window_extent(renderer)
            outside = not (
                frame.x0 <= box.x0
                and box.x1 <= frame.x1
                and frame.y0 <= box.y0
                and box.y1 <= frame.y1
            )
            clashes = sum(box.overlaps(b) for b in placed + markers) + int(outside)
            if best is None or clashes < best[0]:
                if best is not None:
                    best[1].remove()
                best = (clashes, ann, box)
            else:
                ann.remove()
            if clashes == 0:
                break
        assert best is not None
        placed.append(best[2])
        annotations.append(best[1])
    return annotations


def plot_score_vs_pretrain_time(
    protocol: Protocol, records: list[dict[str, Any]], path: Path
) -> Path | None:
    """Average test score against pre-training wall time, one point per method."""
    from matplotlib.figure import Figure

    points, common = score_vs_pretrain_time(protocol, records)
    if not any(h > 0 for _, h, _ in points):
        return None

    def draw() -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = Figure(figsize=(6.4, 4.0))
        FigureCanvasAgg(fig)  # a renderer to measure the labels with
        ax = fig.subplots()
        for m, h, y in points:
            ax.scatter(h, y, s=40, color=method_colour(m), edgecolor="black", lw=0.5, zorder=3)
        ax.margins(x=0.15, y=0.1)  # room for the labels of the outermost points
        ax.set_xlabel("pre-training wall time (h, as recorded by the run; 0 = none)")
        ax.set_ylabel(f"average {_metric_name(protocol.metric)}")
        ax.grid(lw=0.3, alpha=0.6)
        fig.suptitle(
            f"{protocol.title or protocol.name}\naverage over {len(common)} datasets: "
            + ", ".join(common)
        )
        # settle the layout first, then keep it: labels placed in display space stay put
        fig.set_layout_engine("constrained")
        fig.draw_without_rendering()
        fig.set_layout_engine("none")
        place_point_labels(ax, points, colour=method_colour)
        _save_png(fig, path)

    _with_rc(draw)
    return path


# ------------------------------------------------------------------------------------ overview
def protocols_present(results: Path) -> list[Protocol]:
    """Protocols with at least one stored run under ``results``, in PROTOCOLS order."""
    return [p for p in PROTOCOLS.values() if any((Path(results) / p.name).glob("*/*/seed*.json"))]


def overview_section(protocol: Protocol, records: list[dict[str, Any]], results: Path) -> str:
    """One protocol's section of the overview page (tables, caption, plots); writes the PNGs."""
    plots = Path(results) / "plots"
    bars = plot_bars(protocol, records, plots / f"{protocol.name}_bars.png")
    gain = plot_gain(protocol, records, plots / f"{protocol.name}_gain.png")
    cost = plot_score_vs_pretrain_time(
        protocol, records, plots / f"{protocol.name}_vs_pretrain_time.png"
    )
    parts = [
        f"## {protocol.title or protocol.name}",
        "",
        markdown_table(protocol, records),
        caption(protocol, records),
    ]
    secondary = secondary_tables(protocol, records)
    if secondary:
        parts.append(secondary)
    gains = gain_table(protocol, records)
    parts.append(gains if gains else "No pre-trained runs yet: no gain over no pre-training.\n")
    ablation = ablation_table(protocol, records)
    if ablation:
        parts.append(ablation)
    if bars:
        parts.append(f"![{protocol.name}: per-dataset scores](plots/{bars.name})\n")
    if gain:
        parts.append(f"![{protocol.name}: gain over no pre-training](plots/{gain.name})\n")
    if cost:
        parts.append(f"![{protocol.name}: score against pre-training time](plots/{cost.name})\n")
    parts.append(
        f"Per-run budget and provenance, and the commands: "
        f"[`{protocol.name}/README.md`]({protocol.name}/README.md).\n"
    )
    return "\n".join(parts)


def write_overview(results: Path) -> Path:
    """Write ``results/README.md`` (+ ``results/plots/*.png``) and every per-protocol page."""
    results = Path(results)
    present = protocols_present(results)
    sections = []
    for proto in present:
        write_report(proto, results)
        sections.append(overview_section(proto, load_records(results, proto.name), results))
    from fewmol.bench.multitask import overview_section as multitask_section  # imports report

    if (multitask := multitask_section(results)) is not None:
        sections.append(multitask)
    text = (
        "# Benchmark results\n\n"
        "Generated by `fewmol bench report` from the per-run JSON files under this directory "
        "(`<protocol>/<method>/<dataset>/seed<k>.json`); do not edit by hand. Regenerating "
        "needs no training and gives the same bytes.\n\n"
        "Ours: mean ± std (population, over seeds) of the test score at the best-validation "
        "epoch. Rows marked *(paper)* are published numbers, not ours; each section's page names "
        "its paper and table (GraphMVP, Liu et al., ICLR 2022 for the single-task tables; "
        "SGNN-EBM, Liu et al., AISTATS 2022 for the multi-task one). A cell ran the paper's "
        "epochs unless it says `[N ep]`; `(n=k)` marks "
        "cells with fewer seeds finished. Each caption states the budget: fine-tuning epochs, "
        "and for pre-trained encoders the molecules, epochs and wall time of pre-training.\n\n"
        + ("\n".join(sections) if sections else "No stored runs yet.\n")
    )
    path = results / "README.md"
    write_text(path, text)
    return path
