"""Learning curves: test score against the number of labelled training molecules.

fewmol's promise is more from few labels, and the benchmark tables train on whole training
splits (1,000-1,600 molecules on the small sets). This runs the same protocol (scaffold split,
100 fine-tuning epochs, seeds 0,1,2) with each training split cut to N molecules, drawn at
random with the seed (``fewmol bench --train-size N``; valid and test stay whole, so every point
is scored on the same molecules), for no pre-training and the shipped encoder on the same (OGB)
features and the random-forest baseline. A seed draws the same N molecules for every method, so
the shipped encoder's gain over no pre-training is paired by seed. The whole-split point is
read from the main results tree (``benchmarks/results/<protocol>``), never re-run here;
the random forest's whole-split ESOL cells, missing there, are fitted into it.

Cells go to ``benchmarks/results/learning_curve/n<N>/`` (models under ``benchmarks/work``),
are resumable and lock-shared (two workers split them); the page is
``benchmarks/results/learning_curve.md`` with ``plots/learning_curve.png``.

Usage: OMP_NUM_THREADS=1 python benchmarks/learning_curve.py [--datasets bace,bbbp,esol]
       [--sizes 50,100,200,400] [--seeds 0,1,2] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "speed"))
from _record import provenance  # noqa: E402

from fewmol.bench.protocols import PROTOCOLS, get_protocol, metric_digits, metric_scale  # noqa: E402
from fewmol.bench.run import result_path, run_grid  # noqa: E402
from fewmol.io.modeldir import resolve_init  # noqa: E402

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CURVE = RESULTS / "learning_curve"
WORK = ROOT / "work" / "learning_curve"
PAGE = RESULTS / "learning_curve.md"
PLOT = RESULTS / "plots" / "learning_curve.png"
NONE, SHIPPED, RF = "none+ogb", "graphmvp-c-ogb", "rf"
METHODS = (NONE, SHIPPED, RF)
LABELS = {
    NONE: "no pre-training (OGB features)",
    SHIPPED: "shipped GraphMVP-C (`--init graphmvp`)",
    RF: "random forest (fingerprints + descriptors)",
}
PRECISION = "bf16-mixed"  # as the main tree's none+ogb and graphmvp-c-ogb cells


def protocol_of(dataset: str):
    """The classification or regression protocol that holds ``dataset``."""
    for name in ("classification", "regression"):
        if dataset in get_protocol(name).datasets:
            return get_protocol(name)
    raise SystemExit(f"{dataset} is in no molecule-table protocol ({', '.join(PROTOCOLS)})")


def run(datasets: list[str], sizes: list[int], seeds: list[int]) -> None:
    """Every missing cell, smallest training sets first (they are the cheapest)."""
    for dataset in datasets:
        protocol = protocol_of(dataset)
        # the random forest's whole-split cells, where the main tree lacks them
        run_grid(protocol, [RF], seeds, [dataset], RESULTS, ROOT / "work")
        for n in sizes:
            run_grid(
                protocol,
                list(METHODS),
                seeds,
                [dataset],
                CURVE / f"n{n}",
                WORK / f"n{n}",
                # the shipped dir itself: its pre-training method is graphmvp-c, not the row's name
                pretrained={SHIPPED: str(resolve_init(SHIPPED))},
                precision=PRECISION,
                train_size=n,
            )


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _scores(dataset: str, sizes: list[int], seeds: list[int]) -> dict:
    """(method, size or 'all') -> {seed: record}; 'all' = the main tree's matching cells."""
    protocol = protocol_of(dataset)
    out: dict = defaultdict(dict)
    for m in METHODS:
        for s in seeds:
            for n in sizes:
                rec = _load(result_path(CURVE / f"n{n}", protocol.name, m, dataset, s))
                if rec and rec.get("test") is not None and rec.get("train_size") == n:
                    out[(m, n)][s] = rec
            rec = _load(result_path(RESULTS, protocol.name, m, dataset, s))
            same = rec and (m == RF or rec.get("precision") == PRECISION)
            if (
                same
                and rec.get("test") is not None
                and rec.get("epochs") in (None, protocol.epochs)
            ):
                out[(m, "all")][s] = rec
    return out


def _cell(vals: list[float], dg: int, seeds: int) -> str:
    if not vals:
        return "–"
    v = np.array(vals)
    n = "" if len(vals) == seeds else f" (n={len(vals)})"
    return f"{v.mean():.{dg}f} ± {v.std():.{dg}f}{n}"


def report(datasets: list[str], sizes: list[int], seeds: list[int], command: str) -> str:
    """The markdown page (and the plot): one table per dataset, then the paired gains."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.8), squeeze=False)
    parts, wall, commits = [], 0.0, set()
    for ax, dataset in zip(axes[0], datasets):
        protocol = protocol_of(dataset)
        sc, dg = metric_scale(protocol.metric), metric_digits(protocol.metric)
        sign = 1.0 if protocol.higher_is_better else -1.0
        scores = _scores(dataset, sizes, seeds)
        n_all = next(
            (
                r["split_sizes"]["train"]
                for r in scores[(NONE, "all")].values()
                if r.get("split_sizes")
            ),
            None,
        )
        cols = [*sizes, "all"]
        head = [str(n) for n in sizes] + [f"all ({n_all})" if n_all else "all"]
        unit = "ROC-AUC %" if protocol.metric == "roc_auc" else protocol.metric.upper()
        lines = [
            f"### {dataset} (test {unit}, scaffold split; columns: training molecules)",
            "",
            "| method | " + " | ".join(head) + " |",
            "|---|" + "---|" * len(cols),
        ]
        for m in METHODS:
            cells = []
            xs, ys, es = [], [], []
            for c in cols:
                recs = scores.get((m, c), {})
                vals = [r["test"] * sc for r in recs.values()]
                cells.append(_cell(vals, dg, len(seeds)))
                for r in recs.values():
                    wall += float(r.get("wall_time_s") or 0.0)
                    commits.add(str(r.get("git_commit") or "?")[:10])
                if vals:
                    xs.append(c if c != "all" else n_all or max(sizes) * 2)
                    ys.append(np.mean(vals))
                    es.append(np.std(vals))
            lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + " |")
            if xs:
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=LABELS[m])
        gains = []
        for c in cols:
            a, b = scores.get((SHIPPED, c), {}), scores.get((NONE, c), {})
            common = sorted(set(a) & set(b))
            g = [sign * sc * (a[s]["test"] - b[s]["test"]) for s in common]
            gains.append(f"{np.mean(g):+.{dg}f} ± {np.std(g):.{dg}f}" if g else "–")
        lines.append("| shipped − none, paired by seed | " + " | ".join(gains) + " |")
        parts.append("\n".join(lines))
        ax.set_xscale("log")
        ax.set_xlabel("training molecules")
        ax.set_ylabel(f"test {unit}")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)
    plt.close(fig)
    body = (
        "# Learning curves: score against the number of training labels\n\n"
        "Generated by `benchmarks/learning_curve.py` from the per-run JSON files under "
        "`benchmarks/results/learning_curve/` (do not edit by hand).\n\n"
        "The benchmark protocol (scaffold split, Adam lr 0.001, batch 32, dropout 0.5, 100 "
        "fine-tuning epochs, test score at the best-validation epoch, bf16-mixed) with each "
        "training split cut to N molecules drawn at random with the seed; valid and test stay "
        "whole, so every column is scored on the same molecules, and a seed draws the same N "
        "for every method. A 100-epoch budget means fewer optimiser steps for smaller N (N / 32 "
        "per epoch). `all`: the whole training split, the cells of the main tables. Mean ± "
        "population std over seeds " + ",".join(map(str, seeds)) + "; `(n=k)`: seeds finished. "
        "The last row is the shipped encoder's gain over no pre-training (positive = better), "
        "paired by seed. The shipped encoder: GraphMVP-C pre-trained on 50k MOSES molecules "
        "with one conformer each for 7 epochs (its card: "
        "`src/fewmol/assets/checkpoints/graphmvp-c-ogb/README.md`).\n\n"
        + "\n\n".join(parts)
        + "\n\n![learning curves](plots/learning_curve.png)\n\n"
        f"Training wall time of the cells shown: {wall / 3600:.1f} h (one thread each); "
        f"cells from commit(s) {', '.join(sorted(commits)) or '–'}.\n\n"
        + provenance(command)
        + "\n"
    )
    PAGE.write_text(body)
    return body


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="bace,bbbp,esol")
    ap.add_argument("--sizes", default="50,100,200,400")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    datasets = [d.strip().lower() for d in args.datasets.split(",") if d.strip()]
    sizes = sorted(int(n) for n in args.sizes.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.report_only:
        run(datasets, sizes, seeds)
    defaults = ap.parse_args([])
    command = "python benchmarks/learning_curve.py" + "".join(
        f" --{k} {getattr(args, k)}" for k in ("datasets", "sizes", "seeds")
        if getattr(args, k) != getattr(defaults, k)
    )  # fmt: skip
    print(report(datasets, sizes, seeds, command))


if __name__ == "__main__":
    main()
