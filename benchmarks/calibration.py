"""Do the calibrated uncertainties and the applicability domain hold on held-out molecules?

Fine-tunes default-size GINs (5 x 300, dropout 0.5) and reads what each run stored about its
own test split:

* regression (ESOL, FreeSolv; random and scaffold 80/10/10 splits): empirical coverage and mean
  width of the 90 % conformal intervals fitted on the validation split, for the normalised
  intervals `fewmol` stores (MC-dropout, 10 passes: mean ± q·(std + floor)) and, from the same
  predictions, constant-width intervals (mean ± q, q from the validation residuals);
* classification (BACE, scaffold split): ECE and NLL of the raw and the temperature-scaled
  probabilities;
* applicability domain: the fraction of test molecules flagged in domain, and the test score
  inside and outside the domain.

A random split is exchangeable (the conformal guarantee applies); a scaffold split is not, so
its coverage shows what a chemist sees on new chemotypes. Every run stores one JSON under
``benchmarks/results/calibration/`` (rerunning skips finished runs; a killed run starts over,
a few minutes) and the page ``benchmarks/results/calibration.md`` is rebuilt from them.

Usage: OMP_NUM_THREADS=1 python benchmarks/calibration.py [--epochs 30] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fewmol.data.load import load_dataset
from fewmol.data.splits import make_split
from fewmol.data.tables import Table
from fewmol.finetune.calibration import conformal_quantile
from fewmol.finetune.run import FinetuneConfig, finetune
from fewmol.io.checkpoint import write_json

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
TARGET = 0.9
MC_PASSES = 10
CELLS = [
    ("esol", "random"),
    ("esol", "scaffold"),
    ("freesolv", "random"),
    ("freesolv", "scaffold"),
    ("bace", "scaffold"),
]


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO)
    return out.stdout.strip() or "?"


def constant_width(pred: pd.DataFrame, name: str) -> dict[str, float]:
    """Coverage and width of mean ± q on test, q the conformal quantile of valid residuals."""
    valid, test = pred[pred["split"] == "valid"], pred[pred["split"] == "test"]
    q, _ = conformal_quantile(np.abs(valid[name] - valid[f"{name}_pred"]).to_numpy(), TARGET)
    inside = np.abs(test[name] - test[f"{name}_pred"]) <= q
    return {"coverage": float(inside.mean()), "mean_width": 2.0 * q}


def run_cell(
    table: Table, dataset: str, split_kind: str, seed: int, epochs: int, work: Path
) -> dict:
    """Fine-tune one model and summarise its stored calibration and applicability reports."""
    split = make_split(split_kind, table.smiles, seed=seed)
    regression = table.task_type == "regression"
    cfg = FinetuneConfig(
        epochs=epochs,
        seed=seed,
        mc_dropout=MC_PASSES if regression else 0,
        coverage=TARGET,
        progress=False,
        accelerator="cpu",
    )
    out = work / f"{dataset}-{split_kind}-seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.time()
    metrics = finetune(table, split, cfg, out)
    record = {
        "dataset": dataset,
        "split": split_kind,
        "seed": seed,
        "epochs": epochs,
        "task_type": table.task_type,
        "split_sizes": metrics["split_sizes"],
        "test": metrics["test_at_best_valid"],
        "calibration": metrics["calibration"],
        "applicability": metrics["applicability"],
        "wall_time_s": round(time.time() - t0, 1),
        "hardware": f"{platform.machine()} {torch.get_num_threads()} torch threads, no GPU",
        "git_commit": _commit(),
        "command": "python " + " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
    }
    if regression:
        pred = pd.read_csv(out / "predictions.csv")
        record["constant_width"] = constant_width(pred, table.target_names[0])
    return record


def _pm(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    v = np.asarray(values, dtype=float) * scale
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}" if len(v) > 1 else f"{v[0]:.{digits}f}"


def write_page(root: Path, page: Path) -> None:
    """Rebuild the results page from the per-run JSON files (no training)."""
    runs = [json.loads(p.read_text()) for p in sorted(root.glob("*/*/seed*.json"))]
    if not runs:
        return
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["split"]), []).append(r)
    reg = [(k, v) for k, v in groups.items() if v[0]["task_type"] == "regression"]
    cls = [(k, v) for k, v in groups.items() if v[0]["task_type"] != "regression"]
    lines = [
        "# Calibration and applicability domain on held-out molecules",
        "",
        "Written by `benchmarks/calibration.py` from the per-run JSON files in `calibration/`; "
        "mean ± std over seeds. Default-size GIN (5 x 300, dropout 0.5), no pre-training, "
        f"{runs[0]['epochs']} fine-tuning epochs (not the benchmark's 100: these runs measure "
        "calibration, not accuracy), 80/10/10 splits; calibration and domain thresholds fitted "
        "on the validation split, scored on the test split.",
        "",
    ]
    if reg:
        lines += [
            f"## Regression: {TARGET:.0%} conformal intervals",
            "",
            f"*normalised*: what `fewmol` stores with `--mc-dropout {MC_PASSES}` "
            "(mean ± q·(std + floor)); *constant*: mean ± q from the same model's validation "
            "residuals. Width in the target's units.",
            "",
            "| dataset | split | seeds | test RMSE | coverage, normalised | width, normalised "
            "| coverage, constant | width, constant | in domain | RMSE in / out of domain |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for (ds, sp), rs in sorted(reg):
            ad = [r["applicability"]["test"] for r in rs]
            ins = [a["in_domain"]["rmse"] for a in ad if a.get("in_domain")]
            outs = [a["out_of_domain"]["rmse"] for a in ad if a.get("out_of_domain")]
            lines.append(
                f"| {ds} | {sp} | {len(rs)} | {_pm([r['test']['rmse'] for r in rs])} "
                f"| {_pm([r['calibration']['test']['coverage'] for r in rs])} "
                f"| {_pm([r['calibration']['test']['mean_width'] for r in rs])} "
                f"| {_pm([r['constant_width']['coverage'] for r in rs])} "
                f"| {_pm([r['constant_width']['mean_width'] for r in rs])} "
                f"| {_pm([a['in_domain_fraction'] for a in ad])} "
                f"| {_pm(ins) if ins else '–'} / {_pm(outs) if outs else '–'} |"
            )
        lines.append("")
    if cls:
        lines += [
            "## Classification: temperature scaling",
            "",
            "ECE: 10-bin expected calibration error; NLL: mean binary cross-entropy.",
            "",
            "| dataset | split | seeds | test ROC-AUC | ECE raw → calibrated "
            "| NLL raw → calibrated | in domain | ROC-AUC in / out of domain |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for (ds, sp), rs in sorted(cls):
            c = [r["calibration"]["test"] for r in rs]
            ad = [r["applicability"]["test"] for r in rs]
            ins = [a["in_domain"]["roc_auc"] for a in ad if a.get("in_domain")]
            outs = [a["out_of_domain"]["roc_auc"] for a in ad if a.get("out_of_domain")]
            lines.append(
                f"| {ds} | {sp} | {len(rs)} | {_pm([r['test']['roc_auc'] for r in rs], 100, 1)} "
                f"| {_pm([x['ece_raw'] for x in c], digits=3)} → "
                f"{_pm([x['ece_calibrated'] for x in c], digits=3)} "
                f"| {_pm([x['nll_raw'] for x in c], digits=3)} → "
                f"{_pm([x['nll_calibrated'] for x in c], digits=3)} "
                f"| {_pm([a['in_domain_fraction'] for a in ad])} "
                f"| {_pm(ins, 100, 1) if ins else '–'} / {_pm(outs, 100, 1) if outs else '–'} |"
            )
        lines.append("")
    commits = sorted({r["git_commit"][:10] for r in runs})
    wall = sum(r["wall_time_s"] for r in runs)
    lines += [
        f"Command: `{runs[0]['command']}`; commit(s) {', '.join(f'`{c}`' for c in commits)}; "
        f"{runs[0]['hardware']}; seeds {sorted({r['seed'] for r in runs})}; "
        f"{len(runs)} runs, {wall / 60:.0f} min of wall time in all.",
        "",
    ]
    page.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--cells", default=",".join(f"{d}:{s}" for d, s in CELLS))
    ap.add_argument("--out", type=Path, default=RESULTS / "calibration")
    ap.add_argument("--work", type=Path, default=REPO / "benchmarks" / "work" / "calibration")
    args = ap.parse_args()
    os.environ.setdefault("FEWMOL_DATA", str(REPO.parent / "shared" / "data"))
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    for cell in args.cells.split(","):
        dataset, split_kind = cell.split(":")
        todo = [int(s) for s in args.seeds.split(",")]
        todo = [s for s in todo if not (args.out / dataset / split_kind / f"seed{s}.json").exists()]
        if not todo:
            continue
        table, _ = load_dataset(dataset, None, None, None)
        for seed in todo:
            path = args.out / dataset / split_kind / f"seed{seed}.json"
            print(f"{dataset} / {split_kind} / seed {seed}: {args.epochs} epochs", flush=True)
            record = run_cell(table, dataset, split_kind, seed, args.epochs, args.work)
            write_json(path, record)
            write_page(args.out, args.out.parent / "calibration.md")
    write_page(args.out, args.out.parent / "calibration.md")


if __name__ == "__main__":
    main()
