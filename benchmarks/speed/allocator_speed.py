"""Training steps with glibc's default allocator settings against fewmol's (fewmol.allocator).

The `fewmol` command calls :func:`fewmol.allocator.tune_allocator` at start: every block comes
from the heap and freed memory is kept, instead of glibc mapping each block above its mmap
threshold afresh and unmapping it on free. Each measurement runs in a fresh process (the
setting is process-wide and must precede the first tensor), ``FEWMOL_MALLOC_TUNING=0`` or 1,
alternating, repeated (median, range):

* **sgnn-ebm step**: the SGNN-EBM head at KIBA size (229 tasks, 1,736 task-graph edges,
  ``fewmol multitask`` default sizes), batch 32 of random molecule embeddings, forward + NCE
  (4 noise samples) + backward + fused Adam, bf16-mixed; ms per step;
* **gin step**: a GIN fine-tuning step (5 x 300, dropout 0.5, OGB features, BBBP batches of 32),
  forward + backward + fused Adam, bf16-mixed; molecules/s;

and the process's peak RSS (MiB) after the steps.

Usage: python benchmarks/speed/allocator_speed.py [--repeats 3] [--steps 8] [--threads 1]
       [--note "..."] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _record import provenance, write_section  # noqa: E402

CHILD = r"""
import json, resource, sys, time
from fewmol.allocator import tune_allocator
applied = tune_allocator()
import numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
steps, kind = int(sys.argv[3]), sys.argv[1]
torch.manual_seed(0)
if kind == "sgnn-ebm":
    sys.path.insert(0, sys.argv[4])  # benchmarks/speed: the KIBA-size head of sgnn_fold_speed
    from sgnn_fold_speed import build
    from fewmol.multitask.run import MultitaskConfig
    from fewmol.multitask.sgnn_ebm import mix_uniform, nce_loss
    cfg = MultitaskConfig()
    head, z, y, q = build(None)
    head.train()
    q = mix_uniform(q, cfg.noise_mix)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3, fused=True)
    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = head(z, True)
        loss = nce_loss(out.node_pot, out.edge_pot, head.pairs, y, q, cfg.lam, cfg.nce_samples)
        opt.zero_grad(); loss.backward(); opt.step()
    unit = 32
else:
    from fewmol.chem.featurize import get_featurizer
    from fewmol.data.registry import load_frame
    from fewmol.data.store import featurize_to_graphset
    from fewmol.data.tables import read_table
    from fewmol.models.gin import GINEncoder
    from fewmol.models.heads import GraphPropertyModel, LinearHead
    table = read_table(load_frame("bbbp"), "smiles", ["p_np"], duplicates="keep")
    graphs, spec = featurize_to_graphset(table.smiles, "ogb"), get_featurizer("ogb")
    rng = np.random.default_rng(0)
    batches = [graphs.collate(rng.choice(len(graphs), 32, replace=False)) for _ in range(steps)]
    model = GraphPropertyModel(GINEncoder(spec.atom_dims, spec.bond_dims, spec.self_loop_bond,
        5, 300, 0.5), LinearHead(300, 1)).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    it = iter(range(10**9))
    def step():
        b = batches[next(it) % len(batches)]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)
        opt.zero_grad(); out.float().square().mean().backward(); opt.step()
    unit = 32
for _ in range(2):
    step()
t = time.perf_counter()
for _ in range(steps):
    step()
dt = (time.perf_counter() - t) / steps
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"applied": applied, "ms": dt * 1e3, "mol_s": unit / dt, "peak_mib": peak}))
"""

WORKLOADS = {"sgnn-ebm": ("sgnn-ebm step", "ms"), "gin": ("gin step", "mol_s")}


def run_child(kind: str, tuned: bool, threads: int, steps: int) -> dict:
    """One measurement in a fresh process."""
    env = dict(os.environ, FEWMOL_MALLOC_TUNING="1" if tuned else "0")
    env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(threads), str(steps), str(HERE)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["applied"] == tuned, res
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--note", default="")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    import torch  # the parent only records provenance; the children measure

    torch.set_num_threads(args.threads)
    load0 = Path("/proc/loadavg").read_text().split()[0]
    res: dict[tuple[str, bool], list[dict]] = {}
    for r in range(args.repeats):
        for kind in WORKLOADS:
            order = (False, True) if r % 2 == 0 else (True, False)
            for tuned in order:
                res.setdefault((kind, tuned), []).append(
                    run_child(kind, tuned, args.threads, args.steps)
                )
    rows = []
    for kind, (label, key) in WORKLOADS.items():
        med = {}
        for tuned in (False, True):
            v = [m[key] for m in res[(kind, tuned)]]
            peak = max(m["peak_mib"] for m in res[(kind, tuned)])
            med[tuned] = float(np.median(v))
            unit = "ms" if key == "ms" else "mol/s"
            rows.append(
                f"| {label} | {'fewmol (tuned)' if tuned else 'glibc default'} | "
                f"{np.median(v):,.0f} {unit} | {min(v):,.0f}-{max(v):,.0f} | {peak:,.0f} |"
            )
        speedup = med[False] / med[True] if key == "ms" else med[True] / med[False]
        rows.append(f"| {label} | speed-up | {speedup:.2f}x | | |")
    load1 = Path("/proc/loadavg").read_text().split()[0]
    cmd = (
        f"python benchmarks/speed/allocator_speed.py --repeats {args.repeats} --steps "
        f"{args.steps} --threads {args.threads}"
    )
    body = (
        "## Allocator settings (`benchmarks/speed/allocator_speed.py`)\n\n"
        "The `fewmol` command serves every block from glibc's heap and keeps freed memory "
        "(`fewmol.allocator`, off with `FEWMOL_MALLOC_TUNING=0`), instead of glibc's default "
        "of a fresh `mmap` per block above its threshold (at most 32 MB), unmapped on free. "
        "Each measurement is a fresh process, the two settings alternating; "
        f"{args.repeats} repeats (median, range) of {args.steps} timed steps after 2 warm-up "
        "steps. **sgnn-ebm step**: SGNN-EBM head at KIBA size (229 tasks, 1,736 edges, default "
        "sizes), batch 32, forward + NCE + backward + fused Adam, bf16-mixed. **gin step**: GIN "
        "5 x 300 fine-tuning step on BBBP batches of 32 (OGB features), bf16-mixed. Peak RSS: "
        f"the largest over the repeats. {args.note} Load average (1 min) {load0} at the start "
        f"and {load1} at the end.\n\n"
        "| workload | allocator | median | range | peak RSS MiB |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + provenance(cmd)
    )
    print(body)
    if not args.dry_run:
        write_section("allocator", body)


if __name__ == "__main__":
    main()
