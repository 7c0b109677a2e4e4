"""The CPU fine-tuning step before and after its two speed-ups: dropout masks and fused Adam.

``F.dropout`` against fewmol's 16-bit-slice mask (fewmol.models.dropout), and torch's default
(per-tensor) Adam against the fused one (fewmol.training.make_adam). Interleaved repeats
(median, range) of:
* dropout alone: forward + backward on an (800, 300) activation (a batch of 32 molecules'
  atoms at GIN width), float32 and bfloat16;
* Adam alone: one step over the GIN's parameters (5 x 300 + linear head), gradients set;
* a GIN fine-tuning step as `fewmol finetune` runs it: 5 layers x 300 with dropout 0.5 after
  each, mean pooling, linear head, forward + backward + Adam on BBBP batches of 32 (hu2019),
  float32 and under bf16 autocast (``--precision bf16-mixed``), with F.dropout + Adam (before),
  fewmol's dropout + Adam, and fewmol's dropout + fused Adam (now).
Usage: python benchmarks/speed/finetune_step_speed.py [--steps 40] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

import fewmol.models.gin as gin  # noqa: E402
from fewmol.chem.featurize import get_featurizer  # noqa: E402
from fewmol.data.registry import load_frame  # noqa: E402
from fewmol.data.store import featurize_to_graphset  # noqa: E402
from fewmol.data.tables import read_table  # noqa: E402
from fewmol.models.dropout import dropout as fast_dropout  # noqa: E402
from fewmol.models.heads import GraphPropertyModel, LinearHead  # noqa: E402

VARIANTS = {"F.dropout": lambda x, p, training: F.dropout(x, p, training), "fewmol": fast_dropout}


def op_ms(fn, dtype: torch.dtype, reps: int) -> float:
    """Milliseconds per forward + backward of one dropout call."""
    x = torch.randn(800, 300, dtype=dtype, requires_grad=True)
    for _ in range(5):
        fn(x, 0.5, True).sum().backward()
    t = time.perf_counter()
    for _ in range(reps):
        fn(x, 0.5, True).sum().backward()
    return (time.perf_counter() - t) / reps * 1e3


def adam_ms(model, fused: bool, reps: int) -> float:
    """Milliseconds per Adam step over the model's parameters (gradients already set)."""
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    for _ in range(5):
        opt.step()
    t = time.perf_counter()
    for _ in range(reps):
        opt.step()
    return (time.perf_counter() - t) / reps * 1e3


def step_mol_s(model, batches, bf16: bool, fused: bool) -> float:
    """Molecules/s of forward + backward + Adam over the batches."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)

    def step(b) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)
        opt.zero_grad()
        out.float().square().mean().backward()
        opt.step()

    for b in batches[:3]:
        step(b)
    t = time.perf_counter()
    for b in batches:
        step(b)
    return sum(b.num_graphs for b in batches) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load0 = Path("/proc/loadavg").read_text().split()[0]
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        res = {k: [] for k in VARIANTS}
        for _ in range(args.repeats):
            for name, fn in VARIANTS.items():
                res[name].append(op_ms(fn, dtype, 200))
        for name, v in res.items():
            rows.append(
                f"| dropout op, {str(dtype).removeprefix('torch.')} | {name} | "
                f"{np.median(v):.2f} ms | "
                f"{min(v):.2f}-{max(v):.2f} |"
            )
    table = read_table(load_frame("bbbp"), "smiles", ["p_np"], duplicates="keep")
    graphs = featurize_to_graphset(table.smiles, "hu2019")
    spec = get_featurizer("hu2019")
    rng = np.random.default_rng(0)
    n = len(graphs)
    batches = [graphs.collate(rng.choice(n, 32, replace=False)) for _ in range(args.steps)]
    model = GraphPropertyModel(
        gin.GINEncoder(spec.atom_dims, spec.bond_dims, spec.self_loop_bond, 5, 300, 0.5),
        LinearHead(300, 1),
    )
    res = {"Adam (per tensor)": [], "Adam (fused)": []}
    for _ in range(args.repeats):
        for name in res:
            res[name].append(adam_ms(model, "fused" in name, 100))
    for name, v in res.items():
        rows.append(f"| Adam step | {name} | {np.median(v):.2f} ms | {min(v):.2f}-{max(v):.2f} |")
    steps = {  # name: (dropout function, fused Adam)
        "F.dropout + Adam (before)": (VARIANTS["F.dropout"], False),
        "fewmol dropout + Adam": (fast_dropout, False),
        "fewmol dropout + fused Adam (now)": (fast_dropout, True),
    }
    for bf16 in (False, True):
        torch.manual_seed(0)
        enc = gin.GINEncoder(spec.atom_dims, spec.bond_dims, spec.self_loop_bond, 5, 300, 0.5)
        model = GraphPropertyModel(enc, LinearHead(300, 1)).train()
        res = {k: [] for k in steps}
        try:
            for _ in range(args.repeats):
                for name, (fn, fused) in steps.items():
                    gin.dropout = fn
                    res[name].append(step_mol_s(model, batches, bf16, fused))
        finally:
            gin.dropout = fast_dropout
        for name, v in res.items():
            rows.append(
                f"| GIN step, {'bf16-mixed' if bf16 else 'float32'} | {name} | "
                f"{np.median(v):,.0f} mol/s | {min(v):,.0f}-{max(v):,.0f} |"
            )
    load1 = Path("/proc/loadavg").read_text().split()[0]
    cmd = (
        f"python benchmarks/speed/finetune_step_speed.py --steps {args.steps} "
        f"--threads {args.threads}"
    )
    body = (
        "## Fine-tuning step on CPU: dropout masks and fused Adam "
        "(`benchmarks/speed/finetune_step_speed.py`)\n\n"
        "`F.dropout` draws one Bernoulli per element; `fewmol.models.dropout` cuts 64-bit random "
        "words into four 16-bit slices and compares them with the rate (quantised to 1/65536). "
        "torch's Adam on CPU loops over tensors unless `fused=True` (`fewmol.training.make_adam`). "
        "Dropout op: forward + backward on an (800, 300) activation, p = 0.5, 200 calls. Adam "
        "step: the GIN's parameters, 100 steps. GIN step: 5 x 300, dropout 0.5 after each layer, "
        f"mean pooling, linear head, forward + backward + Adam on {args.steps} BBBP batches of "
        f"32 (hu2019). {args.repeats} interleaved repeats (median, range). "
        f"{args.note} Load average (1 min) {load0} at the start and {load1} at the end.\n\n"
        "| measurement | variant | median | range |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + provenance(cmd)
    )
    print(body)
    write_section("finetune-step", body)


if __name__ == "__main__":
    main()
