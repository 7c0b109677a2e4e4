"""`fewmol explain` cost: integrated-gradient attributions per second, against a plain forward.

A default-size GIN (5 x 300, hu2019 features, one task; untrained: the cost does not depend on
the weights) explains the first N BBBP molecules with ``integrated_gradients`` at several step
counts, batch 64, one process; the plain eval forward over the same molecules is the
reference (what ``predict`` pays per molecule for the network).
Usage: python benchmarks/speed/explain_speed.py [--n 128] [--steps 8,32]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

from fewmol.chem.featurize import get_featurizer  # noqa: E402
from fewmol.data.module import predict_batches  # noqa: E402
from fewmol.data.registry import load_frame  # noqa: E402
from fewmol.data.store import featurize_to_graphset  # noqa: E402
from fewmol.data.tables import read_table  # noqa: E402
from fewmol.finetune.explain import integrated_gradients  # noqa: E402
from fewmol.finetune.module import FinetuneModule  # noqa: E402
from fewmol.models.gin import GINEncoder  # noqa: E402
from fewmol.models.heads import GraphPropertyModel, LinearHead  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--steps", default="8,32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--note", default="", help="Other load on the machine during the run.")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    table = read_table(load_frame("bbbp").head(args.n), "smiles", ["p_np"])
    graphs = featurize_to_graphset(table.smiles, "hu2019", cache=False)
    spec = get_featurizer("hu2019")
    enc = GINEncoder(spec.atom_dims, spec.bond_dims, spec.self_loop_bond, 5, 300, dropout=0.5)
    module = FinetuneModule(GraphPropertyModel(enc, LinearHead(300, 1)), "classification").eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in predict_batches(graphs, 64):
            module.model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)
    t_fwd = time.perf_counter() - t0
    n = len(graphs)
    rows = [f"| forward only (predict's network cost) | – | {t_fwd:.2f} | {n / t_fwd:,.0f} | 1x |"]
    for steps in (int(s) for s in args.steps.split(",")):
        t0 = time.perf_counter()
        attrs, out, base = integrated_gradients([module], graphs, [0], steps)
        dt = time.perf_counter() - t0
        gap = np.abs(np.array([a.sum() for a in attrs]) - (out - base)[:, 0]).max()
        rows.append(
            f"| integrated gradients | {steps} | {dt:.2f} | {n / dt:,.1f} | "
            f"{dt / t_fwd:,.0f}x (completeness error {gap:.1e}) |"
        )
    body = (
        "## Atom attributions (`benchmarks/speed/explain_speed.py`)\n\n"
        f"`integrated_gradients` on the first {n} BBBP molecules, default GIN (5 x 300), one "
        f"task, batch 64, {args.threads} torch thread(s); each step is one forward + backward "
        "per task. The completeness error is max |sum of attributions - (output - baseline)|."
        + (f" {args.note}" if args.note else "")
        + "\n\n| what | steps | s | molecules/s | vs forward |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + provenance("python benchmarks/speed/explain_speed.py " + shlex.join(sys.argv[1:]))
    )
    print(body)
    write_section("explain", body)


if __name__ == "__main__":
    main()
