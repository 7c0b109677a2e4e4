"""Inference of fine-tuned models: means, spreads (ensemble / MC-dropout) and embeddings.

Batches are aligned to input rows (batch k holds the molecules of rows k·B ... k·B + B - 1)
and MC-dropout masks are seeded by (seed, member, batch), so a molecule gets the same output
whether a file is predicted at once or in chunks of any multiple of B rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fewmol.data.collate import GraphSet
from fewmol.finetune.defaults import BATCH_ROWS
from fewmol.finetune.module import FinetuneModule
from fewmol.io.modeldir import load_model
from fewmol.models.gin import GINEncoder
from fewmol.training import inference_autocast


def load_module(model_dir: Path) -> tuple[FinetuneModule, dict[str, Any]]:
    """A FinetuneModule in eval mode from a model dir (weights of the best-validation epoch)."""
    model, cfg = load_model(model_dir)
    sc = cfg.get("target_scaling") or {}
    module = FinetuneModule(
        model,
        cfg["task_type"],
        y_mean=np.asarray(sc["mean"], np.float32) if sc else None,
        y_std=np.asarray(sc["std"], np.float32) if sc else None,
    )
    return module.eval(), cfg


@contextlib.contextmanager
def mc_dropout(model: nn.Module) -> Iterator[None]:
    """Eval mode with dropout switched on: batch norm keeps its running statistics."""
    was_training = model.training
    model.eval()
    for m in model.modules():
        # GINEncoder applies its dropout(h, p, self.training): flip only its own flag, so its
        # BatchNorm children stay in eval mode; nn.Dropout modules (MLP heads) go to train mode
        if isinstance(m, GINEncoder | nn.Dropout):
            m.training = True
    try:
        yield
    finally:
        model.train(was_training)


@dataclass
class Inference:
    """Outputs for n molecules and T tasks (probabilities or values in training units)."""

    mean: np.ndarray  # (n, T) mean over members (and MC samples)
    std: np.ndarray | None  # (n, T) spread over members x samples; None for one deterministic pass
    members: np.ndarray  # (M, n, T) each member's mean
    embedding: np.ndarray | None  # (n, d) pooled embedding of member 0 (deterministic pass)


def batch_bounds(keys: np.ndarray, batch_rows: int = BATCH_ROWS) -> list[tuple[int, int, int]]:
    """(start, stop, batch id) slices of ``keys`` (sorted input rows) grouped by row // B."""
    if not len(keys):
        return []
    bid = np.asarray(keys, dtype=np.int64) // batch_rows
    cuts = np.flatnonzero(np.diff(bid)) + 1
    starts = np.concatenate([[0], cuts])
    stops = np.concatenate([cuts, [len(keys)]])
    return [(int(a), int(b), int(bid[a])) for a, b in zip(starts, stops)]


def _seed(seed: int, member: int, batch: int) -> int:
    return int(np.random.SeedSequence([seed, member, batch]).generate_state(1)[0])


@torch.no_grad()
def run_inference(
    modules: Sequence[FinetuneModule],
    graphs: GraphSet,
    keys: np.ndarray | None = None,
    mc_samples: int = 0,
    seed: int = 0,
    embed: bool = False,
    batch_rows: int = BATCH_ROWS,
    precision: str = "32-true",
) -> Inference:
    """Predict every graph with every module (CPU); ``keys`` are the graphs' input rows.

    ``mc_samples`` > 0 runs that many dropout-on passes per member (their mean is the member's
    prediction); the spread is the std over all members x passes. ``embed`` also returns
    member 0's pooled embedding from a deterministic pass. ``precision`` ``bf16-mixed`` (or
    ``16-mixed``) runs the networks under autocast; outputs are returned in float32/64.
    """
    autocast = inference_autocast(precision)
    n = len(graphs)
    keys = np.arange(n, dtype=np.int64) if keys is None else np.asarray(keys, dtype=np.int64)
    n_tasks = modules[0].model.head.n_tasks
    n_members = len(modules)
    member_mean = np.zeros((n_members, n, n_tasks), dtype=np.float64)
    sq_sum = np.zeros((n, n_tasks), dtype=np.float64)
    emb = None
    if embed:
        emb = np.zeros((n, modules[0].model.encoder.out_dim), dtype=np.float32)
    for mod in modules:
        mod.to("cpu").eval()
    for start, stop, bid in batch_bounds(keys, batch_rows):
        batch = graphs.collate(np.arange(start, stop))
        args = (batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        for m, mod in enumerate(modules):
            model = mod.model
            if mc_samples == 0 or (m == 0 and embed):
                with autocast:
                    z = model.embed(*args)
                    logits = model.head(z) if mc_samples == 0 else None
                if m == 0 and emb is not None:
                    emb[start:stop] = z.float().numpy()
                if logits is not None:
                    out = mod.to_output_scale(logits.float()).double().numpy()
                    member_mean[m, start:stop] = out
                    continue
            with torch.random.fork_rng(devices=[]), mc_dropout(model):
                torch.manual_seed(_seed(seed, m, bid))
                acc = np.zeros((stop - start, n_tasks), dtype=np.float64)
                for _ in range(mc_samples):
                    with autocast:
                        logits = model(*args)
                    out = mod.to_output_scale(logits.float()).double().numpy()
                    acc += out
                    sq_sum[start:stop] += out**2
                member_mean[m, start:stop] = acc / mc_samples
    mean = member_mean.mean(0)
    samples = n_members * max(mc_samples, 1)
    std = None
    if mc_samples == 0 and n_members > 1:
        std = member_mean.std(0)
    elif samples > 1:
        std = np.sqrt(np.maximum(sq_sum / samples - mean**2, 0.0))
    return Inference(mean, std, member_mean, emb)
