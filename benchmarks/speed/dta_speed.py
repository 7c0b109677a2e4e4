"""Drug–target affinity training throughput (pairs/s) and the minutes one epoch takes.

Runs :func:`fewmol.dta.run.measure_throughput` (collate + forward + backward + Adam step on
shuffled training batches of the DeepDTA setting-1 folds; the default model of ``fewmol dta``:
GIN 5 x 300, DeepDTA protein CNN, MLP 1024-1024-512) for Davis and KIBA, then prints the
implied wall time per epoch and for a full ``fewmol bench dta`` grid. Used to size epochs
before the long runs on CPU (issue 8 part 4): run it with ``OMP_NUM_THREADS=1`` to measure
the one-thread speed each grid worker gets.

Usage: OMP_NUM_THREADS=1 python benchmarks/speed/dta_speed.py [--datasets davis,kiba]
       [--steps 5] [--batch-size 256] [--data-dir ../shared/data] [--write]
(without --write the section is printed only; --write records it in benchmarks/results/speed.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

from fewmol.data.dta import load_dta  # noqa: E402
from fewmol.dta.run import DTAConfig, measure_throughput  # noqa: E402


def main() -> None:
    """Measure each dataset and print (or record) the markdown section."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="davis,kiba")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--write", action="store_true", help="record the section in speed.md")
    args = ap.parse_args()
    rows = []
    for name in args.datasets.split(","):
        t0 = time.perf_counter()
        data = load_dta(name, args.data_dir)
        cfg = DTAConfig(batch_size=args.batch_size, progress=False)
        graphs = data.featurize("hu2019")
        load_s = time.perf_counter() - t0
        r = measure_throughput(data, cfg, steps=args.steps, warmup=args.warmup, graphs=graphs)
        n_train = len(data.split.train)
        rows.append((name, n_train, r, load_s))
        print(
            f"{name}: {r['train_pairs_per_s']:.1f} pairs/s, {r['seconds_per_step']:.2f} s/step, "
            f"{n_train} training pairs -> {r['epoch_minutes_estimate']:.1f} min/epoch "
            f"(load + featurise {load_s:.1f} s)",
            flush=True,
        )
    lines = [
        "## Drug–target affinity training (`benchmarks/speed/dta_speed.py`)",
        "",
        f"`fewmol dta` default model (GIN 5 x 300 + DeepDTA CNN + MLP 1024-1024-512), batch "
        f"{args.batch_size}, {args.steps} measured steps after {args.warmup} warm-up; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}. Training only "
        "(the per-epoch evaluation of the valid and test folds adds to it).",
        "",
        "| dataset | training pairs | pairs/s | s/step | min/epoch | 100 epochs x 3 seeds |",
        "|---|---|---|---|---|---|",
    ]
    for name, n_train, r, _ in rows:
        grid_h = r["epoch_minutes_estimate"] * 100 * 3 / 60
        lines.append(
            f"| {name} | {n_train:,} | {r['train_pairs_per_s']:.1f} | "
            f"{r['seconds_per_step']:.2f} | {r['epoch_minutes_estimate']:.1f} | {grid_h:.0f} h |"
        )
    cmd = "python benchmarks/speed/dta_speed.py " + " ".join(sys.argv[1:])
    lines += ["", provenance(cmd.strip())]
    body = "\n".join(lines)
    print("\n" + body)
    if args.write:
        write_section("dta", body)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
