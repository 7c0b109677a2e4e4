"""SchNet interactions: PyG's ``InteractionBlock.forward`` against fewmol's (same weights).

fewmol.models.schnet runs each block's per-edge products in the filters' dtype (bfloat16 under
``--precision bf16-mixed``) and computes the cosine cutoff once; PyG's block multiplies by a
float32 cutoff, so under autocast its per-edge work runs in float32. fewmol also computes one
filter per unordered atom pair for both of its edges (the filter depends on the distance only),
where PyG and fewmol before computed one per directed edge. Measured, interleaved
(median, range): a GraphMVP-C pre-training step (GIN 5 x 300 + SchNet 128 x 6, EBM-NCE + VRR +
ContextPred; collate + forward + backward + Adam, as ``fewmol pretrain`` runs it) on fixed-seed
MOSES molecules with one ETKDG conformer each, batch 32, float32 and bf16-mixed, with the
encoder's interactions done either way.
Usage: python benchmarks/speed/schnet_speed.py [--n 320] [--steps 8] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402
from pretrain_speed import moses_sample  # noqa: E402

import fewmol.models.schnet as schnet  # noqa: E402
from fewmol.chem.conformers import ConformerSettings  # noqa: E402
from fewmol.data.conformer_store import build_conformer_store  # noqa: E402
from fewmol.pretrain.data import resolve_pretrain_data  # noqa: E402
from fewmol.pretrain.datamodule import PretrainDataModule  # noqa: E402
from fewmol.pretrain.run import PretrainConfig, build_module, prepare_data  # noqa: E402

OURS = schnet.SchNetEncoder.atom_embeddings


def pyg_atom_embeddings(self, z, pos, batch=None):
    """The encoder with PyG's own ``InteractionBlock.forward`` (what fewmol ran before)."""
    if batch is None:
        batch = torch.zeros_like(z)
    edge_index = schnet.radius_graph(pos, batch, self.cutoff, self.max_neighbors)
    src, dst = edge_index
    edge_weight = (pos[src] - pos[dst]).norm(dim=-1)
    edge_attr = self.distance_expansion(edge_weight)
    h = self.embedding(z)
    for block in self.interactions:
        h = h + block(h, edge_index, edge_weight, edge_attr)
    return self.lin2(self.act(self.lin1(h)))


def per_edge_atom_embeddings(self, z, pos, batch=None):
    """fewmol's interactions with one filter per directed edge (before the per-pair filters)."""
    if batch is None:
        batch = torch.zeros_like(z)
    src, dst = schnet.radius_graph(pos, batch, self.cutoff, self.max_neighbors)
    dist = (pos[src] - pos[dst]).norm(dim=-1)
    edge_attr = self.distance_expansion(dist)
    cutoff_weight = 0.5 * (torch.cos(dist * math.pi / self.cutoff) + 1.0)
    every = torch.arange(len(src))
    h = self.embedding(z)
    for block in self.interactions:
        h = h + schnet._interaction(block, h, src, dst, cutoff_weight, edge_attr, every)
    return self.lin2(self.act(self.lin1(h)))


def step_mol_s(module, batches, bf16: bool) -> float:
    """Molecules/s over the batches (after two warm-up steps)."""
    opt = module.configure_optimizers()

    def step(b) -> int:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = module.compute_loss(b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return b.num_graphs

    for b in batches[:2]:
        step(b)
    t = time.perf_counter()
    n = sum(step(b) for b in batches)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=320)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--note", default="")
    ap.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load0 = Path("/proc/loadavg").read_text().split()[0]
    smiles = moses_sample(args.n, args.data_dir)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        build_conformer_store(smiles, tmp, ConformerSettings(num_confs=1), progress=False)
        cfg = PretrainConfig(method="graphmvp-c")
        data = prepare_data(cfg, resolve_pretrain_data(tmp, "graphmvp-c", max_molecules=None))
        loader = PretrainDataModule(data, 32, seed=0, use_3d=True).train_dataloader()
        batches = list(itertools.islice(itertools.cycle(loader), args.steps))
        variants = {
            "PyG InteractionBlock.forward": pyg_atom_embeddings,
            "fewmol, one filter per edge (before)": per_edge_atom_embeddings,
            "fewmol, one filter per atom pair (now)": OURS,
        }
        for bf16 in (False, True):
            torch.manual_seed(0)
            module = build_module(cfg, data).train()
            res = {k: [] for k in variants}
            try:
                for _ in range(args.repeats):
                    for name, fn in variants.items():
                        schnet.SchNetEncoder.atom_embeddings = fn
                        res[name].append(step_mol_s(module, batches, bf16))
            finally:
                schnet.SchNetEncoder.atom_embeddings = OURS
            for name, v in res.items():
                rows.append(
                    f"| {'bf16-mixed' if bf16 else 'float32'} | {name} | {np.median(v):.1f} | "
                    f"{min(v):.1f}-{max(v):.1f} |"
                )
    load1 = Path("/proc/loadavg").read_text().split()[0]
    body = (
        "## SchNet interactions in pre-training (`benchmarks/speed/schnet_speed.py`)\n\n"
        "GraphMVP-C pre-training step (GIN 5 x 300 + SchNet 128 x 6; EBM-NCE + VRR + "
        "ContextPred; forward + backward + Adam), batch 32, on "
        f"{len(data)} fixed-seed MOSES molecules with one ETKDG conformer each, {args.steps} "
        f"steps per measurement, {args.repeats} interleaved repeats (median, range); the rows "
        "differ only in how the encoder runs its interaction blocks (same weights). "
        f"{args.note} Load average (1 min) {load0} at the start and {load1} at the end.\n\n"
        "| precision | interactions | median mol/s | range |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + provenance(
            f"python benchmarks/speed/schnet_speed.py --n {args.n} --steps {args.steps} "
            f"--threads {args.threads}"
        )
    )
    print(body)
    write_section("schnet", body)


if __name__ == "__main__":
    main()
