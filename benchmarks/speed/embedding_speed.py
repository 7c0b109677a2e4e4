"""Categorical embeddings: one summed table per call against one lookup per feature column.

``fewmol.models.gin.CategoricalEmbedding`` sums the column tables once (every combination of
values) when they have at most ``COMBINED_TABLE_MAX`` combinations (all bond features; hu2019
atoms) and gathers each row's combination, instead of one gather per column plus the adds.
Measured, interleaved (median, range): a GIN fine-tuning step (5 x 300, dropout 0.5, mean
pooling, linear head; forward + backward + fused Adam) on BBBP batches of 32, float32 and
bf16-mixed, per featuriser, with the same weights either way.
Usage: python benchmarks/speed/embedding_speed.py [--steps 40] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402
from finetune_step_speed import step_mol_s  # noqa: E402

from fewmol.chem.featurize import get_featurizer  # noqa: E402
from fewmol.data.registry import load_frame  # noqa: E402
from fewmol.data.store import featurize_to_graphset  # noqa: E402
from fewmol.data.tables import read_table  # noqa: E402
from fewmol.models.gin import CategoricalEmbedding, GINEncoder  # noqa: E402
from fewmol.models.heads import GraphPropertyModel, LinearHead  # noqa: E402


def set_combined(model: torch.nn.Module, on: bool) -> None:
    """Switch every embedding that can use a summed table to it (on) or to per-column lookups."""
    for m in model.modules():
        if isinstance(m, CategoricalEmbedding) and len(m.dims) > 1:
            m.combined = on and m.combined_ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load0 = Path("/proc/loadavg").read_text().split()[0]
    table = read_table(load_frame("bbbp"), "smiles", ["p_np"], duplicates="keep")
    rows = []
    for feat in ("hu2019", "ogb"):
        graphs = featurize_to_graphset(table.smiles, feat)
        spec = get_featurizer(feat)
        rng = np.random.default_rng(0)
        n = len(graphs)
        batches = [graphs.collate(rng.choice(n, 32, replace=False)) for _ in range(args.steps)]
        for bf16 in (False, True):
            torch.manual_seed(0)
            enc = GINEncoder(spec.atom_dims, spec.bond_dims, spec.self_loop_bond, 5, 300, 0.5)
            model = GraphPropertyModel(enc, LinearHead(300, 1)).train()
            for m in model.modules():
                if isinstance(m, CategoricalEmbedding):
                    m.combined_ok = m.combined
            res: dict[str, list[float]] = {"one lookup per column (before)": [],
                                           "summed table (now)": []}  # fmt: skip
            try:
                for _ in range(args.repeats):
                    for name in res:
                        set_combined(model, "now" in name)
                        res[name].append(step_mol_s(model, batches, bf16, fused=True))
            finally:
                set_combined(model, True)
            for name, v in res.items():
                rows.append(
                    f"| {feat} | {'bf16-mixed' if bf16 else 'float32'} | {name} | "
                    f"{np.median(v):.0f} | {min(v):.0f}-{max(v):.0f} |"
                )
    load1 = Path("/proc/loadavg").read_text().split()[0]
    body = (
        "## Categorical embeddings in the GIN (`benchmarks/speed/embedding_speed.py`)\n\n"
        "GIN fine-tuning step (5 x 300, dropout 0.5, mean pooling, linear head; forward + "
        f"backward + fused Adam) on {args.steps} BBBP batches of 32, {args.repeats} interleaved "
        "repeats (median, range), molecules/s. The rows differ only in how the atom and bond "
        "embeddings are looked up (same weights): one gather per feature column plus the adds, "
        "or one gather from the sum of the column tables over every combination of values "
        "(bonds: 18 combinations for hu2019, 60 for OGB; hu2019 atoms 480; OGB atoms stay per "
        f"column). {args.note} Load average (1 min) {load0} at the start and {load1} at the "
        "end.\n\n"
        "| featuriser | precision | embeddings | median mol/s | range |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + provenance(
            f"python benchmarks/speed/embedding_speed.py --steps {args.steps} --repeats "
            f"{args.repeats} --threads {args.threads}"
        )
    )
    print(body)
    write_section("embedding", body)


if __name__ == "__main__":
    main()
