"""Conformer throughput (molecules/s) on MOSES SMILES: a plain RDKit loop vs fewmol's store.

Three runs of the same molecules and settings (ETKDGv3 + MMFF94, C conformers, fixed seed):

1. a plain single-process loop: ``EmbedMultipleConfs`` + ``MMFFOptimizeMoleculeConfs``, nothing
   else (no time limit, no store, no failure records): the reference cost of the chemistry;
2. ``build_conformer_store`` with 1 worker process: the overhead of the pool, the per-molecule
   deadline checks and the chunked atomic writes;
3. ``build_conformer_store`` with every core.

Usage: python benchmarks/speed/conformer_speed.py [--n 200] [--num-confs 5] [--dry-run]
(--dry-run prints the section instead of writing it into benchmarks/results/speed.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from rdkit import Chem
from rdkit.Chem import rdDistGeom
from rdkit.Chem import rdForceFieldHelpers as ffh

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

from fewmol.chem.conformers import ConformerSettings  # noqa: E402
from fewmol.chem.mol import try_canonical_smiles  # noqa: E402
from fewmol.data.conformer_store import build_conformer_store  # noqa: E402


def plain_loop(smiles: list[str], num_confs: int, seed: int) -> tuple[float, int, int]:
    """The textbook RDKit loop; returns (seconds, molecules with conformers, conformers)."""
    t = time.perf_counter()
    done = confs = 0
    for s in smiles:
        mol = Chem.AddHs(Chem.MolFromSmiles(s))
        params = rdDistGeom.ETKDGv3()
        params.randomSeed = seed
        params.enableSequentialRandomSeeds = True  # as fewmol; seed 0 would repeat conformers
        params.numThreads = 1
        cids = list(rdDistGeom.EmbedMultipleConfs(mol, num_confs, params))
        if cids:
            if ffh.MMFFHasAllMoleculeParams(mol):
                ffh.MMFFOptimizeMoleculeConfs(mol, numThreads=1)
            done += 1
            confs += len(cids)
    return time.perf_counter() - t, done, confs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--num-confs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dry-run", action="store_true", help="print, do not write speed.md")
    ap.add_argument(
        "--data",
        default=str(
            Path(__file__).resolve().parents[3]
            / "shared"
            / "data"
            / "unlabeled"
            / "moses_train.csv.gz"
        ),
    )
    args = ap.parse_args()
    raw = pd.read_csv(args.data, nrows=args.n)["SMILES"].tolist()
    smiles = [c for c in (try_canonical_smiles(s)[0] for s in raw) if c is not None]
    n = len(smiles)
    settings = ConformerSettings(num_confs=args.num_confs, seed=args.seed)

    rows = []
    secs, done, confs = plain_loop(smiles, args.num_confs, args.seed)
    rows.append(("plain RDKit loop (ETKDGv3 + MMFF), 1 process", 1, secs, done, confs, "-"))
    with tempfile.TemporaryDirectory() as d:
        for workers in sorted({1, args.workers}):
            t = time.perf_counter()
            store = build_conformer_store(
                smiles, Path(d) / f"w{workers}", settings, workers=workers, progress=False
            )
            secs = time.perf_counter() - t
            label = f"fewmol store, {workers} worker process{'es' if workers > 1 else ''}"
            failed = len(store.failures)
            rows.append(
                (label, workers, secs, int(store.ok_mask.sum()), int(store.n_confs.sum()), failed)
            )

    table = [
        "| run | processes | molecules/s | molecules/s per process | ok | conformers | failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, procs, secs, ok, nconf, failed in rows:
        table.append(
            f"| {label} | {procs} | {n / secs:.2f} | {n / secs / procs:.2f} | {ok} | {nconf} | "
            f"{failed} |"
        )
    one = next(r for r in rows if r[1] == 1 and r[0].startswith("fewmol"))
    best = rows[-1]
    body = (
        "## Conformers (`benchmarks/speed/conformer_speed.py`)\n\n"
        f"First {n} MOSES molecules, ETKDGv3 + MMFF94, up to {args.num_confs} conformers each, "
        f"seed {args.seed}, heavy-atom limit {settings.max_atoms}, {settings.timeout_s:g} s per "
        "molecule. The plain loop has no time limit, no store and no failure records. "
        f"Scaling from 1 to {best[1]} worker processes: {one[2] / best[2]:.2f}x; store overhead "
        f"vs the plain loop at 1 process: {100 * (one[2] / rows[0][2] - 1):+.0f} %.\n\n"
        + "\n".join(table)
        + "\n\n"
        + provenance(
            f"python benchmarks/speed/conformer_speed.py --n {args.n} --num-confs {args.num_confs}"
        )
    )
    print(body)
    if not args.dry_run:
        write_section("conformers", body)


if __name__ == "__main__":
    main()
