"""SGNN-EBM training / Gibbs throughput and peak training memory versus tasks and graph density.

Synthetic multi-task problems on real molecules: the first ``--n`` Tox21 SMILES (hu2019
features, collated into fixed batches of ``--batch-size`` once, so collate is **excluded** from
every timing), random 0/1 labels (p = 0.5) for T tasks with 30 % missing, and a task graph made
by :func:`fewmol.multitask.task_graph.from_matrix` from a random symmetric similarity matrix
with per-task top-k (k capped at T - 1; the union of the k choices gives M undirected edges).
Model sizes are the ``fewmol multitask`` defaults (:class:`MultitaskConfig`: GIN 5 x 300,
task_dim 64, state_dim 64, sgnn_hidden 128, 2 SGNN layers, 4 NCE noise samples, adaptive noise,
Gibbs 20 sweeps x 4 chains), built with ``build_net`` / ``MultitaskModule`` as a run builds them.

Per configuration, in a fresh subprocess (so no peak carries over):

* train mol/s: one step = ``MultitaskModule._loss`` (forward, NCE + BCE) + backward + Adam
  step, the body of ``training_step`` without the Trainer; ``--warmup`` then ``--steps`` steps;
* Gibbs mol/s: ``predict_proba`` (eval mode, forward + chromatic Gibbs marginals) on the same
  batches;
* peak MiB: the process's peak RSS during the training steps above its RSS just before them.
  The kernel's high-water mark is reset first (``echo 5 > /proc/self/clear_refs``), then read
  with ``getrusage(RUSAGE_SELF).ru_maxrss``; torch has no CPU allocator statistics;
* saved MiB: bytes of the tensors autograd keeps for backward in one training step (distinct
  storages, from ``saved_tensors_hooks``): exact and independent of the allocator.

``mtl`` (independent heads, no graph) at the same T is the reference row.

Usage: python benchmarks/speed/multitask_speed.py [--tasks 16,64,256] [--topk 2,10,50]
       [--steps 5] [--warmup 3] [--threads 1] [--n 320] [--dry-run]
(--dry-run prints the section instead of writing it into benchmarks/results/speed.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

from fewmol.data import registry  # noqa: E402
from fewmol.data.store import featurize_to_graphset  # noqa: E402
from fewmol.data.tables import read_table  # noqa: E402
from fewmol.io.modeldir import encoder_hparams  # noqa: E402
from fewmol.multitask.balancing import make_balancer  # noqa: E402
from fewmol.multitask.model import STRUCTURED, build_net  # noqa: E402
from fewmol.multitask.module import MultitaskModule  # noqa: E402
from fewmol.multitask.run import MultitaskConfig  # noqa: E402
from fewmol.multitask.sgnn_ebm import label_frequencies  # noqa: E402
from fewmol.multitask.task_graph import TaskGraph, from_matrix  # noqa: E402

MISSING = 0.3
MiB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# One configuration (runs inside its own subprocess)
# --------------------------------------------------------------------------------------------


def synthetic_graph(t: int, k: int, seed: int = 0) -> TaskGraph:
    """Top-k (capped at T - 1) of a random symmetric similarity matrix over T tasks."""
    rng = np.random.default_rng(seed)
    a = rng.random((t, t))
    sim = (a + a.T) / 2 + 1e-3  # strictly positive: zero would mean "no relation"
    return from_matrix(sim, [f"task{i}" for i in range(t)], top_k=min(k, t - 1))


def _rss_kib() -> int:
    m = re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(m.group(1)) if m else 0


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (and so ru_maxrss) to the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _saved_bytes(fn):
    """(``fn()``, bytes of the distinct storages autograd saves for backward meanwhile)."""
    seen: dict[int, int] = {}

    def pack(x: torch.Tensor) -> torch.Tensor:
        s = x.untyped_storage()
        seen[s.data_ptr()] = max(seen.get(s.data_ptr(), 0), s.nbytes())
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        out = fn()
    return out, sum(seen.values())


def timed(fn, warmup: int, steps: int, budget: float) -> tuple[int, float, int]:
    """(molecules, seconds, timed calls) of ``fn(i)`` after ``warmup`` untimed calls.

    Warm-up stops after one call slower than budget / 4; timing stops after ``steps`` calls,
    or after ``budget`` seconds once two calls are done (the large graphs take ~30 s a step).
    """
    i = 0
    for _ in range(warmup):
        t0 = time.perf_counter()
        fn(i)
        i += 1
        if time.perf_counter() - t0 > budget / 4:
            break
    mols, n = 0, 0
    t0 = time.perf_counter()
    while n < steps and (n < 2 or time.perf_counter() - t0 < budget):
        mols += fn(i + n)
        n += 1
    return mols, time.perf_counter() - t0, n


def measure_one(spec: dict) -> dict:
    """Throughputs and memory of one (method, T, k) on fixed pre-collated batches."""
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    method, t, k = spec["method"], spec["tasks"], spec["topk"]
    cfg = MultitaskConfig(method=method)
    frame = registry.load_frame("tox21", spec["data_dir"]).head(spec["n"])
    smiles = read_table(frame, "smiles", None, None, "skip", require_targets=False).smiles
    graphs = featurize_to_graphset(smiles, cfg.featurizer)
    n = len(graphs)
    rng = np.random.default_rng(0)
    y = (rng.random((n, t)) < 0.5).astype(np.float32)
    y[rng.random((n, t)) < MISSING] = np.nan
    names = [f"task{i}" for i in range(t)]
    graph = synthetic_graph(t, k) if method in STRUCTURED else None
    config = {
        "method": method,
        "task_names": names,
        "encoder": encoder_hparams(cfg.featurizer, cfg.num_layers, cfg.dim, cfg.dropout, cfg.jk),
        "pooling": cfg.pooling,
        "structured": {
            "task_dim": cfg.task_dim,
            "state_dim": cfg.state_dim,
            "hidden": cfg.sgnn_hidden,
            "num_layers": cfg.sgnn_layers,
            "gcn_layers": cfg.gcn_layers,
            "dropout": cfg.dropout,
            "smoothing": cfg.smoothing,
        },
    }
    net = build_net(config, graph)
    module = MultitaskModule(
        net,
        method,
        make_balancer(method, t, cfg.alpha, cfg.dwa_temperature),
        cfg.lr,
        cfg.weight_decay,
        cfg.encoder_lr,
        lam=cfg.lam,
        noise=cfg.noise,
        noise_mix=cfg.noise_mix,
        noise_prob=label_frequencies(y),
        nce_samples=cfg.nce_samples,
        gibbs_sweeps=cfg.gibbs_sweeps,
        gibbs_chains=cfg.gibbs_chains,
    )
    bs = spec["batch_size"]
    order = np.random.default_rng(1).permutation(n)  # the same batches for every T and k
    batches = [graphs.collate(order[i : i + bs], y[order[i : i + bs]]) for i in range(0, n, bs)]
    batches = [b for b in batches if b.num_graphs == bs]
    opt = module.configure_optimizers()
    module.train()

    def step(b) -> int:
        loss, *_ = module._loss(b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        module._reset_epoch()  # mtl keeps train predictions for the epoch metrics: drop them
        return b.num_graphs

    warm, steps, budget = spec["warmup"], spec["steps"], spec["budget"]
    saved = 0
    gc.collect()
    reset_ok = _reset_peak()
    rss0 = _rss_kib()

    def train(i: int) -> int:
        nonlocal saved
        b = batches[i % len(batches)]
        if i > 0:
            return step(b)
        # The first (warm-up) step also sums what autograd saves; the hooks copy nothing.
        out, saved = _saved_bytes(lambda: step(b))
        return out

    train_mols, train_s, n_train = timed(train, max(warm, 1), steps, budget)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0

    module.eval()
    gen = torch.Generator().manual_seed(0)

    def gibbs(i: int) -> int:
        return module.predict_proba(batches[i % len(batches)], generator=gen).shape[0]

    gibbs_mols, gibbs_s, n_gibbs = timed(gibbs, min(warm, 1), steps, budget)
    head = net.head
    return {
        "method": method,
        "tasks": t,
        "topk": k if graph is not None else None,
        "edges": graph.num_undirected_edges if graph is not None else 0,
        "colors": module.sampler.num_colors if module.sampler is not None else None,
        "train_mol_s": train_mols / train_s,
        "gibbs_mol_s": gibbs_mols / gibbs_s,
        "train_steps": n_train,
        "gibbs_steps": n_gibbs,
        "peak_mib": peak_kib / 1024,
        "saved_mib": saved / MiB,
        "params": sum(p.numel() for p in net.parameters()),
        "head_params": sum(p.numel() for p in head.parameters()),
        "reset_ok": reset_ok,
        "wall_s": train_s + gibbs_s,
    }


def run_in_subprocess(spec: dict) -> dict:
    """``measure_one(spec)`` in a fresh interpreter (its own peak RSS); returns its JSON."""
    threads = str(spec["threads"])
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    proc = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"configuration {spec} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# The grid and the section
# --------------------------------------------------------------------------------------------


def fit_line(x: list[float], y: list[float]) -> tuple[float, float, float]:
    """Least squares y = a + b x: (a, b, R^2)."""
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    b, a = np.polyfit(xa, ya, 1)
    resid = ya - (a + b * xa)
    ss = float(((ya - ya.mean()) ** 2).sum())
    return float(a), float(b), 1.0 - float((resid**2).sum()) / ss if ss > 0 else 1.0


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "—" if v is None else format(v, spec)


def render(
    res: list[dict], args: argparse.Namespace, total_s: float, load: tuple[float, float]
) -> str:
    """The markdown section: table, linearity fits, provenance."""
    cfg = MultitaskConfig()
    mtl = {r["tasks"]: r for r in res if r["method"] == "mtl"}
    rows = []
    for r in res:
        ref = mtl.get(r["tasks"])
        per_k = None
        if r["method"] != "mtl" and r["edges"] and ref is not None:
            per_k = (r["peak_mib"] - ref["peak_mib"]) / (r["edges"] / 1000)
        rows.append(
            f"| {r['method']} | {r['tasks']} | {_fmt(r['topk'], 'd')} | {r['edges']:,} | "
            f"{_fmt(r['colors'], 'd')} | {r['train_mol_s']:,.1f} | {r['gibbs_mol_s']:,.1f} | "
            f"{r['peak_mib']:,.0f} | {_fmt(per_k, ',.1f')} | {r['saved_mib']:,.1f} | "
            f"{r['train_steps']}/{r['gibbs_steps']} |"
        )
    fits = []
    for t in sorted({r["tasks"] for r in res}):
        pts = [r for r in res if r["tasks"] == t and r["method"] != "mtl"]
        if len({r["edges"] for r in pts}) < 2:
            continue
        m = [r["edges"] / 1000 for r in pts]
        a, b, r2 = fit_line(m, [r["peak_mib"] for r in pts])
        sa, sb, sr2 = fit_line(m, [r["saved_mib"] for r in pts])
        edges = ", ".join(f"{r['edges']:,}" for r in pts)
        fits.append(
            f"T = {t} (M = {edges}): peak "
            f"= {a:,.0f} + {b:,.0f} MiB x M/1000 (R^2 = {r2:.3f}); autograd-saved "
            f"= {sa:,.1f} + {sb:,.1f} MiB x M/1000 (R^2 = {sr2:.4f})"
        )
    sgnn = [r for r in res if r["method"] != "mtl"]
    dense_line = ""
    if len(sgnn) >= 5 and len({r["tasks"] for r in sgnn}) >= 3:
        # saved = c0 + c1 T + c2 M + c3 T^2 over every sgnn-ebm row: a dense T x T edge state
        # would show up as a T^2 term of the size of the per-edge term.
        tt = np.array([r["tasks"] for r in sgnn], float)
        mm = np.array([r["edges"] for r in sgnn], float)
        yy = np.array([r["saved_mib"] for r in sgnn], float)
        x = np.stack([np.ones_like(tt), tt, mm, tt**2], 1)
        c, *_ = np.linalg.lstsq(x, yy, rcond=None)
        t_max = tt.max()
        dense_line = (
            f"Joint fit over all sgnn-ebm rows: saved MiB = {c[0]:.1f} {c[1]:+.4f} T "
            f"{c[2] * 1e3:+.1f} x M/1000 {c[3]:+.2e} T^2, i.e. at T = {t_max:.0f} the T^2 term "
            f"is {c[3] * t_max**2:+.1f} MiB while the edge term of the densest graph is "
            f"{c[2] * mm.max():.1f} MiB. The per-edge term is "
            f"{c[2] * MiB / 4 / args.batch_size:,.0f} float32 values per edge per molecule "
            f"(a C x C x d edge state is {2 * 2 * MultitaskConfig().state_dim})."
        )
    reset_ok = all(r["reset_ok"] for r in res)
    mem_method = (
        "peak RSS during the training steps minus RSS just before them, in a fresh subprocess "
        "per row; the peak mark is reset with `/proc/self/clear_refs` and read with "
        "`getrusage(RUSAGE_SELF).ru_maxrss` (torch has no CPU allocator statistics)"
        if reset_ok
        else "`getrusage(RUSAGE_SELF).ru_maxrss` after the training steps minus RSS before them "
        "(could not reset the peak mark, so import/featurise peaks may hide small rows)"
    )
    b = args.batch_size
    return "\n".join(
        [
            "## Multi-task SGNN-EBM throughput and memory (`benchmarks/speed/multitask_speed.py`)",
            "",
            f"Synthetic problems on real molecules: the first {args.n} Tox21 SMILES (hu2019), "
            f"random 0/1 labels for T tasks with {MISSING:.0%} missing, task graph = per-task "
            "top-k of a random symmetric similarity matrix (`task_graph.from_matrix`, k capped "
            "at T - 1, union of choices: M undirected edges). `fewmol multitask` default sizes: "
            f"GIN {cfg.num_layers} x {cfg.dim}, dropout {cfg.dropout}, task_dim {cfg.task_dim}, "
            f"state_dim {cfg.state_dim}, sgnn_hidden {cfg.sgnn_hidden}, {cfg.sgnn_layers} SGNN "
            f"layers, {cfg.nce_samples} NCE noise samples ({cfg.noise} noise), Gibbs "
            f"{cfg.gibbs_sweeps} sweeps x {cfg.gibbs_chains} chains. Batch {b}, batches "
            "collated beforehand (**collate excluded**). **train mol/s**: `MultitaskModule._loss`"
            " (forward + NCE + BCE) + backward + Adam step, i.e. `training_step` without the "
            f"Trainer, {args.warmup} warm-up + {args.steps} timed steps (fewer once a step takes "
            f"more than {args.budget / 4:g} s or the timed steps {args.budget:g} s, at least "
            "1 + 2: the column timed steps gives train/Gibbs). **Gibbs mol/s**: "
            f"`predict_proba` (eval forward + Gibbs marginals) at batch {b} after 1 warm-up "
            f"batch. **peak MiB**: {mem_method}. **MiB/1k edges**: (peak − mtl peak at the "
            "same T) / (M / 1000). **saved MiB**: distinct storages autograd saves for backward "
            "in one step (`saved_tensors_hooks`): exact, allocator-independent. colours = "
            "Gibbs colour classes (batched updates per sweep). `mtl` (linear heads, no graph) "
            "is the reference at each T.",
            "",
            f"{args.note} Load average (1 min) {load[0]:.1f} at the start and {load[1]:.1f} at "
            f"the end on {os.cpu_count()} cores; {args.threads} torch thread(s). Total "
            f"{total_s:.0f} s.",
            "",
            "| method | T | k | M edges | colours | train mol/s | Gibbs mol/s | peak MiB | "
            "MiB/1k edges above mtl | saved MiB | timed steps |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            *(["Least-squares fits of memory against M at fixed T:", ""] if fits else []),
            *[f"* {f}" for f in fits],
            "",
            dense_line,
            "",
            provenance(
                f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} "
                f"python benchmarks/speed/multitask_speed.py {shlex.join(sys.argv[1:])}"
            ),
        ]
    )


def main() -> None:
    """Measure every configuration in a subprocess, then write or print the section."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="16,64,256", help="numbers of tasks T")
    ap.add_argument("--topk", default="2,10,50", help="neighbours per task (capped at T - 1)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (and Gibbs batches)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    ap.add_argument(
        "--budget", type=float, default=20.0, help="seconds per measurement after 2 steps"
    )
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--n", type=int, default=320, help="Tox21 molecules to batch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-mtl", action="store_true", help="skip the mtl reference rows")
    ap.add_argument("--dry-run", action="store_true", help="print, do not write speed.md")
    ap.add_argument(
        "--note",
        default="Absolute rates depend on what else runs on the machine; compare rows of one run.",
        help="a sentence about the machine's state during the run, put into the section",
    )
    ap.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data"
    )
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one configuration as JSON
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure_one(json.loads(args.one))))
        return
    torch.set_num_threads(args.threads)
    tasks = [int(v) for v in args.tasks.split(",")]
    topks = [int(v) for v in args.topk.split(",")]
    base = {
        "threads": args.threads,
        "steps": args.steps,
        "warmup": args.warmup,
        "budget": args.budget,
        "batch_size": args.batch_size,
        "n": args.n,
        "data_dir": str(args.data_dir),
    }
    specs = []
    for t in tasks:
        if not args.no_mtl:
            specs.append({**base, "method": "mtl", "tasks": t, "topk": 0})
        seen = set()
        for k in topks:
            if min(k, t - 1) in seen:  # k >= T - 1 all give the complete graph
                continue
            seen.add(min(k, t - 1))
            specs.append({**base, "method": "sgnn-ebm", "tasks": t, "topk": k})
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    res = []
    for spec in specs:
        r = run_in_subprocess(spec)
        res.append(r)
        print(
            f"{r['method']} T={r['tasks']} k={r['topk']} M={r['edges']}: train "
            f"{r['train_mol_s']:.1f} mol/s, Gibbs {r['gibbs_mol_s']:.1f} mol/s, peak "
            f"{r['peak_mib']:.0f} MiB, saved {r['saved_mib']:.1f} MiB ({r['wall_s']:.0f} s)",
            flush=True,
        )
    load = (load0, os.getloadavg()[0])
    body = render(res, args, time.perf_counter() - t0, load)
    if args.dry_run:
        print(body)
    else:
        write_section("multitask", body)
        print(body)
        print("wrote the multitask section of benchmarks/results/speed.md")


if __name__ == "__main__":
    main()
