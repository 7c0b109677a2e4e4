"""GIN training throughput: fewmol's GIN against PyTorch Geometric's GINEConv model, same size.

Forward + backward + Adam step, 5 layers x 300, batch norm, mean pooling, linear head, on the
same batches of BBBP molecules (hu2019 features), batch sizes 32 and 256, interleaved repeats.
Usage: python benchmarks/speed/gin_speed.py [--steps 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch_geometric.nn import GINEConv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

from fewmol.chem.featurize import get_featurizer  # noqa: E402
from fewmol.data.registry import load_frame  # noqa: E402
from fewmol.data.store import featurize_to_graphset  # noqa: E402
from fewmol.data.tables import read_table  # noqa: E402
from fewmol.models.gin import CategoricalEmbedding, GINEncoder  # noqa: E402
from fewmol.models.heads import GraphPropertyModel, LinearHead, global_pool  # noqa: E402


class PygGIN(nn.Module):
    """PyG reference: GINEConv layers (edge features embedded to the node width)."""

    def __init__(self, atom_dims, bond_dims, dim=300, layers=5):
        super().__init__()
        self.atom = CategoricalEmbedding(atom_dims, dim)
        self.bond = nn.ModuleList(CategoricalEmbedding(bond_dims, dim) for _ in range(layers))
        self.convs = nn.ModuleList(
            GINEConv(
                nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim)),
                train_eps=False,
            )
            for _ in range(layers)
        )
        self.bns = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(layers))
        self.head = nn.Linear(dim, 1)

    def forward(self, b):
        h = self.atom(b.x)
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            h = bn(conv(h, b.edge_index, self.bond[i](b.edge_attr)))
            if i < len(self.convs) - 1:
                h = torch.relu(h)
        return self.head(global_pool(h, b.batch, b.num_graphs))


def ours(atom_dims, bond_dims, self_loop):
    enc = GINEncoder(atom_dims, bond_dims, self_loop, 5, 300, dropout=0.0)
    m = GraphPropertyModel(enc, LinearHead(300, 1))
    return lambda b: m(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs), m


def throughput(step_fn, params, batches) -> float:
    opt = torch.optim.Adam(params, lr=1e-3)
    for b in batches[:3]:  # warm-up
        opt.zero_grad()
        step_fn(b).sum().backward()
        opt.step()
    n = 0
    t = time.perf_counter()
    for b in batches:
        opt.zero_grad()
        step_fn(b).square().mean().backward()
        opt.step()
        n += b.num_graphs
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    table = read_table(load_frame("bbbp"), "smiles", ["p_np"], duplicates="keep")
    graphs = featurize_to_graphset(table.smiles, "hu2019")
    spec = get_featurizer("hu2019")
    rng = np.random.default_rng(0)
    lines = []
    for bs in (32, 256):
        batches = [
            graphs.collate(rng.choice(len(graphs), bs, replace=False)) for _ in range(args.steps)
        ]
        fn, m_ours = ours(spec.atom_dims, spec.bond_dims, spec.self_loop_bond)
        m_pyg = PygGIN(spec.atom_dims, spec.bond_dims)
        n_ours = sum(p.numel() for p in m_ours.parameters())
        n_pyg = sum(p.numel() for p in m_pyg.parameters())
        res = {"fewmol GINEncoder": [], "PyG GINEConv": []}
        for _ in range(args.repeats):  # interleave so drift hits both equally
            res["fewmol GINEncoder"].append(throughput(fn, list(m_ours.parameters()), batches))
            res["PyG GINEConv"].append(throughput(m_pyg, list(m_pyg.parameters()), batches))
        for k, v in res.items():
            params = n_ours if k.startswith("fewmol") else n_pyg
            lines.append(
                f"| {k} | {bs} | {np.median(v):,.0f} | {min(v):,.0f}-{max(v):,.0f} | {params:,} |"
            )
    body = (
        "## GIN training throughput (`benchmarks/speed/gin_speed.py`)\n\n"
        "Forward + backward + Adam step on BBBP batches (hu2019 features), 5 layers x 300, "
        f"{args.steps} steps per measurement, {args.repeats} interleaved repeats (median, range). "
        "PyG's GINEConv applies ReLU to (x_j + e_ji) and uses its (1+eps) self term; ours is the "
        "pretrain-gnns layer (self loop as an edge type). Molecules/s:\n\n"
        "| model | batch | median mol/s | range | parameters |\n|---|---|---|---|---|\n"
        + "\n".join(lines)
        + "\n\n"
        + provenance(f"python benchmarks/speed/gin_speed.py --steps {args.steps}")
    )
    print(body)
    write_section("gin", body)


if __name__ == "__main__":
    main()
