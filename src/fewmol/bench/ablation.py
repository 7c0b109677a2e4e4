"""The GraphMVP loss ablation (EBM-NCE vs InfoNCE, VRR on / off) as a table of paired gaps.

The variants are ordinary rows of the benchmark tables (pre-trained and fine-tuned by
``benchmarks/run_pretrain_ablation.sh``); this module only compares them with the reference
row, seed by seed: every variant shares the reference's split and seeds, so the paired
difference is a sharper estimate than the gap between two means.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from fewmol.bench.protocols import Protocol, metric_digits, metric_scale


@dataclass(frozen=True)
class AblationRow:
    """One variant: its table row and the GraphMVP loss settings it was pre-trained with."""

    method: str
    contrastive: str
    generative: str


REFERENCE = "graphmvp"
ABLATION_ROWS: tuple[AblationRow, ...] = (
    AblationRow(REFERENCE, "ebm_nce", "vrr"),
    AblationRow("graphmvp-infonce", "infonce", "vrr"),
    AblationRow("graphmvp-no-vrr", "ebm_nce", "none"),
    AblationRow("graphmvp-rr", "ebm_nce", "rr"),
)
_LOSS_NAMES = {"ebm_nce": "EBM-NCE", "infonce": "InfoNCE", "vrr": "VRR", "rr": "RR", "none": "–"}


def settings_mismatches(records: list[dict[str, Any]]) -> list[str]:
    """'method/dataset/seed: contrastive infonce, not ebm_nce' for records whose encoder's
    recorded loss settings disagree with their ablation row (records without them: skipped)."""
    rows = {r.method: r for r in ABLATION_ROWS}
    out = []
    for rec in records:
        row = rows.get(rec["method"])
        losses = ((rec.get("pretraining") or {}).get("losses")) or {}
        if row is None:
            continue
        for key in ("contrastive", "generative"):
            got, want = losses.get(key), getattr(row, key)
            if got is not None and got != want:
                out.append(
                    f"{rec['method']}/{rec['dataset']}/seed{rec['seed']}: {key} {got}, not {want}"
                )
    return out


def _scores(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, float]]:
    out: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for r in records:
        if r.get("test") is not None:
            out[(r["method"], r["dataset"])][r["seed"]] = float(r["test"])
    return out


def _seed_epochs(records: list[dict[str, Any]]) -> dict[tuple[str, str, int], Any]:
    return {(r["method"], r["dataset"], r["seed"]): r.get("epochs") for r in records}


def ablation_table(protocol: Protocol, records: list[dict[str, Any]]) -> str:
    """Markdown: each variant's score and its paired gap to the reference, per dataset.

    Empty until the reference row and at least one other variant have a score somewhere.
    A gap is (variant − reference) for higher-is-better metrics, (reference − variant)
    otherwise, so positive always means the variant did better; it is the mean over the seeds
    both cells finished with the same fine-tuning epochs, ± the std of those per-seed gaps.
    """
    scores = _scores(records)
    present = [r for r in ABLATION_ROWS if any(m == r.method for m, _ in scores)]
    if REFERENCE not in {r.method for r in present} or len(present) < 2:
        return ""
    sc, dg = metric_scale(protocol.metric), metric_digits(protocol.metric)
    sign = 1.0 if protocol.higher_is_better else -1.0
    ds = [d for d in protocol.datasets if any((r.method, d) in scores for r in present)]
    seed_ep = _seed_epochs(records)
    epochs: dict[tuple[str, str], set] = defaultdict(set)
    for rec in records:
        epochs[(rec["method"], rec["dataset"])].add(rec.get("epochs"))
    lines = [
        f"GraphMVP loss ablation (pre-trained alike but for the losses named; paired gap to "
        f"**{REFERENCE}** over the seeds both cells finished, positive = the variant did "
        "better; `[N ep]`: fine-tuned for N epochs):",
        "",
        "| row | contrastive | generative | " + " | ".join(ds) + " | mean gap |",
        "|---|---|---|" + "---|" * (len(ds) + 1),
    ]
    ref = {d: scores.get((REFERENCE, d), {}) for d in ds}
    for row in present:
        cells, gaps = [], []
        for d in ds:
            vals = scores.get((row.method, d), {})
            if not vals:
                cells.append("–")
                continue
            v = np.array(list(vals.values())) * sc
            ep = sorted(e for e in epochs[(row.method, d)] if e is not None)
            note = "" if ep in ([], [protocol.epochs]) else f" [{','.join(map(str, ep))} ep]"
            note += "" if len(vals) == len(protocol.seeds) else f" (n={len(vals)})"
            cell = f"{v.mean():.{dg}f} ± {v.std():.{dg}f}{note}"
            # pairs fine-tuned alike only: a 30-epoch cell is no partner for a 100-epoch one
            common = sorted(
                k
                for k in set(vals) & set(ref[d])
                if seed_ep[(row.method, d, k)] == seed_ep[(REFERENCE, d, k)]
            )
            if row.method != REFERENCE and set(vals) & set(ref[d]) and not common:
                cell += "; no gap (fine-tuned for other epochs than the reference)"
            if row.method != REFERENCE and common:
                g = sign * sc * np.array([vals[s] - ref[d][s] for s in common])
                cell += f"; gap {g.mean():+.{dg}f} ± {g.std():.{dg}f}"
                gaps.append(g.mean())
            cells.append(cell)
        mean_gap = (
            "ref."
            if row.method == REFERENCE
            else (f"{np.mean(gaps):+.{dg}f} over {len(gaps)}" if gaps else "–")
        )
        lines.append(
            f"| **{row.method}** | {_LOSS_NAMES.get(row.contrastive, row.contrastive)} "
            f"| {_LOSS_NAMES.get(row.generative, row.generative)} | "
            + " | ".join(cells)
            + f" | {mean_gap} |"
        )
    bad = settings_mismatches(records)
    if bad:
        lines += ["", "**Settings differ from the row names:** " + "; ".join(bad)]
    return "\n".join(lines) + "\n"
