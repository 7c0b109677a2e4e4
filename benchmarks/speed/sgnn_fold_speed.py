"""SGNN-EBM head now, at commit 3de8831 (the fold) and before it (unfolded), same weights.

``StructuredHead.forward`` (fewmol.multitask.sgnn) folds the last layer's edge update, which is
linear and read only by the edge readout, into the readout's first Linear: the last edge
states (B, M, C, C, d), their concatenation with the earlier layers' and one d x d product per
edge-state entry are never built (commit 3de8831). Since then, sums over a label dimension and
the gradients of the per-edge pair adds are slice adds instead of size-2 reductions, and the
pair gathers use index_select. The two reference columns run ``fewmol.multitask.sgnn`` as of
commit 3de8831, loaded from git (``git show``), so they stay what they were whatever the head
becomes:

* **unfolded**: the head before the fold: 3de8831's ``head.states()`` (which still builds the
  last edge states; its StateLayer is the one from before the fold) and the readouts on the
  concatenation;
* **folded @3de8831**: 3de8831's ``head(z)``;
* **now**: ``head(z)`` of the working tree.

All three have the same weights and outputs (the float32 difference is printed into the
section).

At the KIBA size (229 kinase tasks, ``load_kiba_mt``'s top-10 Smith-Waterman task graph: 1,736
undirected edges), batch 32 of random molecule embeddings (mol_dim 300, the GIN width), the
labels of KIBA's first 32 molecules, ``fewmol multitask`` default head sizes
(:class:`MultitaskConfig`), measured interleaved (median, range over repeats):

* train step: head forward + NCE loss (4 noise samples, label-frequency noise) + backward +
  Adam step (fused), float32 and bf16-mixed (``torch.autocast("cpu", torch.bfloat16)``), in
  train mode (dropout on);
* eval forward: ``head(z)`` with the potentials, eval mode, under ``torch.no_grad``;
* saved MiB: distinct storages autograd keeps for the backward of one training step
  (``saved_tensors_hooks``).

Usage: python benchmarks/speed/sgnn_fold_speed.py [--steps 3] [--repeats 5] [--threads 1]
       [--note "..."] [--dry-run]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402
from multitask_speed import _saved_bytes  # noqa: E402

from fewmol.multitask.datasets import load_kiba_mt  # noqa: E402
from fewmol.multitask.run import MultitaskConfig  # noqa: E402
from fewmol.multitask.sgnn import NUM_CLASSES, SGNNOutput, StructuredHead  # noqa: E402
from fewmol.multitask.sgnn_ebm import label_frequencies, nce_loss  # noqa: E402

MiB = 1024 * 1024
BATCH, MOL_DIM = 32, 300
REPO = Path(__file__).resolve().parents[2]
FOLD_COMMIT = "3de8831"  # the fold, with the label sums and pair adds as broadcasts


def module_at(commit: str) -> types.ModuleType:
    """fewmol.multitask.sgnn as of ``commit`` (from ``git show``), a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{commit}:src/fewmol/multitask/sgnn.py"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    mod = types.ModuleType(f"sgnn_at_{commit}")
    sys.modules[mod.__name__] = mod  # dataclasses look their module up
    exec(compile(source, f"sgnn.py@{commit}", "exec"), mod.__dict__)
    return mod


def unfolded_forward(head: StructuredHead, z: torch.Tensor) -> SGNNOutput:
    """The head's forward before the fold: every layer's edge states built and concatenated."""
    h, e = head.states(z, edges=True)
    assert e is not None
    b, t = h.shape[:2]
    m, c = e.shape[1], NUM_CLASSES
    logits = head.logit_readout(h.reshape(b, t, -1)).squeeze(-1)
    node = head._log_table(head.node_readout(h).squeeze(-1))
    edge = head._log_table(head.edge_readout(e).reshape(b, m, c * c)).view(b, m, c, c)
    return SGNNOutput(logits, node, edge)


def folded_forward(head: StructuredHead, z: torch.Tensor) -> SGNNOutput:
    """The head's forward (the fold)."""
    return head(z)


def build(data_dir: Path) -> tuple[StructuredHead, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(head, z, labels, noise probabilities) at the KIBA size, with the working tree's head."""
    cfg = MultitaskConfig()
    ds = load_kiba_mt(data_dir)
    graph = ds.task_graph
    assert graph is not None
    torch.manual_seed(0)
    head = StructuredHead(
        graph.num_tasks,
        graph.edge_index,
        graph.edge_weight,
        MOL_DIM,
        task_dim=cfg.task_dim,
        state_dim=cfg.state_dim,
        hidden=cfg.sgnn_hidden,
        num_layers=cfg.sgnn_layers,
        gcn_layers=cfg.gcn_layers,
        dropout=cfg.dropout,
        smoothing=cfg.smoothing,
    )
    z = torch.randn(BATCH, MOL_DIM)
    y = torch.from_numpy(ds.y[:BATCH].copy())
    q = torch.as_tensor(label_frequencies(ds.y), dtype=torch.float32)
    return head, z, y, q


def measure(args: argparse.Namespace) -> tuple[list[str], str, float]:
    """Table rows, a description of the problem, and the float32 max |now − either reference|."""
    cfg = MultitaskConfig()
    head, z, y, q = build(args.data_dir)
    old = module_at(FOLD_COMMIT)
    graph = {"edge_index": head.gcn_edge_index, "edge_weight": head.gcn_edge_weight}
    ref = old.StructuredHead(**head.hparams, **graph)
    ref.load_state_dict(head.state_dict())
    # name -> (head, forward); each head has its own optimiser
    variants: dict[str, tuple[torch.nn.Module, Callable]] = {
        "unfolded": (ref, unfolded_forward),
        f"folded @{FOLD_COMMIT}": (ref, folded_forward),
        "now": (head, folded_forward),
    }
    opts = {id(h): torch.optim.Adam(h.parameters(), lr=cfg.lr, fused=True) for h in (head, ref)}

    def train_step(name: str, bf16: bool) -> None:
        hd, fn = variants[name]
        hd.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = fn(hd, z)
            loss = nce_loss(out.node_pot, out.edge_pot, hd.pairs, y, q, cfg.lam, cfg.nce_samples)
        opt = opts[id(hd)]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def eval_forward(name: str, bf16: bool) -> None:
        hd, fn = variants[name]
        hd.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            fn(hd, z)

    outs = []
    for hd, fn in variants.values():
        hd.eval()
        with torch.no_grad():
            o = fn(hd, z)
        outs.append((o.logits, o.node_pot, o.edge_pot))
    diff = max(float((a - b).abs().max()) for o in outs[:-1] for a, b in zip(o, outs[-1]))
    names = list(variants)
    rows = []
    for bf16 in (False, True):
        prec = "bf16-mixed" if bf16 else "float32"
        saved = {}
        for name in names:
            _, saved[name] = _saved_bytes(lambda name=name, bf16=bf16: train_step(name, bf16))
        for what, run in (("train step", train_step), ("eval forward", eval_forward)):
            times: dict[str, list[float]] = {k: [] for k in names}
            for name in names:  # warm-up
                run(name, bf16)
            for r in range(args.repeats):
                # alternate the order so no variant always runs first
                for name in names if r % 2 == 0 else names[::-1]:
                    t0 = time.perf_counter()
                    for _ in range(args.steps):
                        run(name, bf16)
                    times[name].append((time.perf_counter() - t0) / args.steps * 1e3)
            cells = [f"{np.median(t):,.0f} ({min(t):,.0f}-{max(t):,.0f})" for t in times.values()]
            now = np.median(times["now"])
            ups = [f"{np.median(times[k]) / now:.2f}" for k in names[:-1]]
            mib = " / ".join(f"{saved[k] / MiB:,.0f}" for k in names)
            rows.append(
                f"| {prec} | {what} | {' | '.join(cells)} | {' | '.join(ups)} | "
                f"{mib if what == 'train step' else '—'} |"
            )
            print(rows[-1], flush=True)
    problem = (
        f"{head.num_tasks} tasks, {head.num_edges:,} undirected edges, batch {BATCH}, "
        f"state_dim {cfg.state_dim}, hidden {cfg.sgnn_hidden}, {cfg.sgnn_layers} SGNN layers, "
        f"dropout {cfg.dropout}, {cfg.nce_samples} NCE noise samples"
    )
    return rows, problem, diff


def main() -> None:
    """Measure the three heads interleaved, then write or print the section."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3, help="calls per timed measurement")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved measurements per row")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dry-run", action="store_true", help="print, do not write speed.md")
    ap.add_argument(
        "--note",
        default="Absolute times depend on what else runs on the machine; compare within a row.",
        help="a sentence about the machine's state during the run, put into the section",
    )
    ap.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    rows, problem, diff = measure(args)
    load1 = os.getloadavg()[0]
    cmd = (
        f"python benchmarks/speed/sgnn_fold_speed.py --steps {args.steps} "
        f"--repeats {args.repeats} --threads {args.threads}"
    )
    body = "\n".join(
        [
            "## SGNN-EBM head: last edge update folded into the edge readout, label sums as "
            "slice adds (`benchmarks/speed/sgnn_fold_speed.py`)",
            "",
            "`StructuredHead.forward` folds the last SGNN layer's edge update (linear, read only "
            "by the edge readout) into the readout's first Linear, so the last edge states, "
            "their concatenation and one d x d product per edge-state entry are never built "
            f"(commit {FOLD_COMMIT}). Since then the sums over a label dimension (C = 2) and the "
            "gradients of the per-edge pair adds are slice adds instead of size-2 reductions "
            "(`label_sums`, `add_outer`), the pair gathers use `index_select`, and "
            "`BroadcastMLP` sums the task parts before the molecule part broadcasts. "
            f"**unfolded** = the head before the fold (commit {FOLD_COMMIT}'s `head.states()`, "
            "with the StateLayer of before the fold, + readouts on the concatenation), "
            f"**folded @{FOLD_COMMIT}** = that commit's `head(z)`, both run from `git show "
            f"{FOLD_COMMIT}:src/fewmol/multitask/sgnn.py`; **now** = `head(z)` of the commit "
            "below. "
            "Same weights; float32 outputs of now equal to both references to "
            f"{diff:.1e} (max abs). KIBA size ({problem}); random molecule embeddings "
            f"(dim {MOL_DIM}), labels of KIBA's first {BATCH} molecules. **train step**: head "
            "forward + NCE + backward + fused Adam, train mode; **eval forward**: `head(z)` with "
            "potentials, eval mode, no grad. ms per call over "
            f"{args.steps} calls, {args.repeats} interleaved repeats (median, range); "
            "**saved MiB**: distinct storages autograd keeps for one training step's backward.",
            "",
            f"{args.note} Load average (1 min) {load0:.2f} at the start and {load1:.2f} at the "
            f"end on {os.cpu_count()} cores; {args.threads} torch thread(s); total "
            f"{time.perf_counter() - t0:.0f} s.",
            "",
            f"| precision | measurement | unfolded ms | folded @{FOLD_COMMIT} ms | now ms | "
            f"speed-up of now vs unfolded | vs @{FOLD_COMMIT} (medians) | saved MiB "
            f"(unfolded / @{FOLD_COMMIT} / now) |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            provenance(cmd),
        ]
    )
    print(body)
    if not args.dry_run:
        write_section("sgnn-fold", body)
        print("wrote the sgnn-fold section of benchmarks/results/speed.md")


if __name__ == "__main__":
    main()
