"""Drug–target affinity evaluation: per-batch encoding against encoding each entity once.

Every epoch of ``fewmol dta`` scores the valid and test folds. Before, each evaluation batch of
256 pairs (sorted by protein) collated and encoded its distinct drugs with the GIN: on KIBA
nearly every batch holds ~256 distinct drugs, so the 2,111 drugs were encoded ~150 times per
evaluation. Now (``DTAModule.entity_tables``) every drug and protein of the evaluated pairs is
encoded once and the MLP runs on the looked-up embeddings. This script times both paths on the
same pairs and weights (the default ``fewmol dta`` model, untrained, eval mode, float32) and
checks they agree.

Usage: OMP_NUM_THREADS=1 python benchmarks/speed/dta_eval_speed.py [--datasets davis,kiba]
       [--batch-size 256] [--data-dir ../shared/data] [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

from fewmol.data.dta import EvalEntities, load_dta, make_pair_loader  # noqa: E402
from fewmol.dta.run import DTAConfig, DTARun  # noqa: E402


def time_paths(name: str, data_dir: Path | None, batch_size: int) -> dict[str, float]:
    """Seconds for one evaluation of valid + test by each path, and their largest difference."""
    data = load_dta(name, data_dir)
    cfg = DTAConfig(batch_size=batch_size, eval_batch_size=batch_size, progress=False)
    run = DTARun(data, cfg, Path("."))
    module, config = run.build()
    module.eval()
    graphs = data.featurize(config["featurizer"])
    pairs = np.concatenate([run.split.valid, run.split.test])
    out: dict[str, float] = {"pairs": len(pairs)}
    with torch.no_grad():
        t0 = time.perf_counter()
        slow = {}
        for b in make_pair_loader(data, graphs, pairs, batch_size, max_len=cfg.max_len):
            slow.update(zip(b.index.tolist(), module(b).tolist()))
        out["per_batch_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        module.eval_entities = EvalEntities.of_pairs(data, graphs, pairs, cfg.max_len)
        module.eval_chunk = batch_size
        module.on_validation_epoch_start()
        fast = {}
        loader = make_pair_loader(data, graphs, pairs, batch_size, ids_only=True)
        for b in loader:
            drug, prot = module.entity_tables()
            y = module.model.pair_head(drug, prot, b.drug, b.protein)
            fast.update(zip(b.index.tolist(), y.tolist()))
        out["once_s"] = time.perf_counter() - t0
    ent = module.eval_entities
    out["drugs"], out["proteins"] = len(ent.drugs), len(ent.proteins)
    out["max_abs_diff"] = max(abs(fast[k] - slow[k]) for k in slow)
    return out


def main() -> None:
    """Time each dataset and print (or record) the markdown section."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="davis,kiba")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--write", action="store_true", help="record the section in speed.md")
    args = ap.parse_args()
    rows = []
    for name in args.datasets.split(","):
        r = time_paths(name, args.data_dir, args.batch_size)
        rows.append((name, r))
        print(
            f"{name}: {r['pairs']:,} pairs, per-batch {r['per_batch_s']:.1f} s, "
            f"once {r['once_s']:.1f} s ({r['per_batch_s'] / r['once_s']:.1f}x), "
            f"max |diff| {r['max_abs_diff']:.1e}",
            flush=True,
        )
    lines = [
        "## Drug–target affinity evaluation (`benchmarks/speed/dta_eval_speed.py`)",
        "",
        "One evaluation of the valid + test folds (what every `fewmol dta` epoch runs), default "
        f"model, batch {args.batch_size}, float32, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}: each batch encoding its own distinct "
        "drugs and proteins (before) against every drug and protein encoded once, then the MLP "
        "on looked-up embeddings (`DTAModule.entity_tables`, now). Outputs agree to the "
        "difference shown (standardised units).",
        "",
        "| dataset | pairs | drugs | proteins | per batch (s) | once (s) | speed-up | max diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['pairs']:,} | {r['drugs']:,} | {r['proteins']:,} | "
            f"{r['per_batch_s']:.1f} | {r['once_s']:.1f} | "
            f"{r['per_batch_s'] / r['once_s']:.1f}x | {r['max_abs_diff']:.1e} |"
        )
    cmd = "python benchmarks/speed/dta_eval_speed.py " + " ".join(sys.argv[1:])
    lines += ["", provenance(cmd.strip())]
    body = "\n".join(lines)
    print("\n" + body)
    if args.write:
        write_section("dta_eval", body)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
