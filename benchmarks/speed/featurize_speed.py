"""Featurisation throughput (molecules/s) on MOSES SMILES: one core, and parallel with the cache.

Target (DESIGN §6): >= 5,000 molecules/s on one core for the 2D featuriser.
Usage: python benchmarks/speed/featurize_speed.py [--n 20000]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

from fewmol.chem.featurize import featurize_many  # noqa: E402
from fewmol.chem.mol import try_canonical_smiles  # noqa: E402
from fewmol.data.store import featurize_to_graphset  # noqa: E402


def rate(n: int, fn) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
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
    smiles = pd.read_csv(args.data, nrows=args.n)["SMILES"].tolist()
    canon = [try_canonical_smiles(s)[0] for s in smiles]
    n = len(canon)
    rows = []
    best = {}
    for _ in range(3):
        r = {
            "RDKit parse only (sanitised), 1 core": rate(
                n, lambda: [Chem.MolFromSmiles(s) for s in canon]
            ),
            "hu2019 featurise canonical SMILES, 1 core": rate(
                n, lambda: featurize_many(canon, "hu2019")
            ),
            "ogb featurise canonical SMILES, 1 core": rate(n, lambda: featurize_many(canon, "ogb")),
            "canonicalise raw SMILES (RDKit parse + write), 1 core": rate(
                n, lambda: [try_canonical_smiles(s) for s in smiles]
            ),
        }
        for k, v in r.items():
            best[k] = max(best.get(k, 0), v)
    with tempfile.TemporaryDirectory() as d:
        workers = os.cpu_count() or 1
        best[f"hu2019 via cache store, {workers} processes, cold cache"] = rate(
            n, lambda: featurize_to_graphset(canon, "hu2019", workers=workers, cache_dir=Path(d))
        )
        best["hu2019 via cache store, warm cache (load from disk)"] = rate(
            n, lambda: featurize_to_graphset(canon, "hu2019", workers=1, cache_dir=Path(d))
        )
    for k, v in best.items():
        rows.append(f"| {k} | {v:,.0f} |")
    body = (
        "## Featurisation (`benchmarks/speed/featurize_speed.py`)\n\n"
        f"{n} MOSES molecules, best of 3 repeats. Target: >= 5,000 mol/s on one core for the "
        "2D featuriser. fewmol canonicalises each SMILES once when reading a table, then "
        "featurises the canonical form without re-sanitising (a test checks the arrays are "
        "identical to the sanitised path).\n\n"
        "| step | molecules/s |\n|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + provenance("python benchmarks/speed/featurize_speed.py --n " + str(args.n))
    )
    print(body)
    write_section("featurize", body)


if __name__ == "__main__":
    main()
