"""Nearest-neighbour Tanimoto (the applicability domain's similarity): pairs/s per backend.

Every finished run compares its valid and test molecules with the training set, and every
`fewmol predict` compares each input molecule with it; on a MUV-sized training set (74k) that
search dominated. ``max_tanimoto`` counts intersections either as an exact int8 matrix product
of unpacked ECFP4 bits (torch's int8 GEMM, int32 sums) or by popcount of ANDed 64-bit words
(numpy). The fingerprints are real: MOSES molecules (the references) against other MOSES
molecules (the queries). Both backends must return identical similarities and indices.
Usage: python benchmarks/speed/tanimoto_speed.py [--references 74000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import gzip
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

import fewmol.chem.fingerprints as fp  # noqa: E402

MOSES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "unlabeled"


def moses_smiles(n: int) -> list[str]:
    """The first ``n`` SMILES of the MOSES training file."""
    out: list[str] = []
    with gzip.open(MOSES / "moses_train.csv.gz", "rt") as fh:
        next(fh)
        for line in fh:
            out.append(line.split(",")[0].strip())
            if len(out) == n:
                break
    return out


def timed(query: np.ndarray, ref: np.ndarray, gemm: bool) -> tuple[float, tuple]:
    """Seconds for one ``max_tanimoto`` call with the chosen backend, and its result."""
    backend = fp._int8_matmul() if gemm else None
    saved = fp._gemm_backend
    fp._gemm_backend = lambda: backend  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        out = fp.max_tanimoto(query, ref)
        return time.perf_counter() - t0, out
    finally:
        fp._gemm_backend = saved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--references", type=int, default=74_000)
    ap.add_argument("--queries", type=int, default=2_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--note", default="", help="Other load on the machine during the run.")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    smiles = moses_smiles(args.references + args.queries)
    t0 = time.perf_counter()
    bits = fp.morgan_packed(smiles)
    t_fp = time.perf_counter() - t0
    ref, query = bits[: args.references], bits[args.references :]
    pairs = len(ref) * len(query)
    t_pop, pop = timed(query, ref, gemm=False)
    t_gemm, gemm = timed(query, ref, gemm=True)
    np.testing.assert_array_equal(pop[0], gemm[0])
    np.testing.assert_array_equal(pop[1], gemm[1])
    rows = [
        f"| popcount (numpy, 64-bit words) | {t_pop:,.1f} | {pairs / t_pop / 1e6:,.1f} | "
        f"{len(query) / t_pop:,.0f} | 1.0x |",
        f"| int8 GEMM (torch, unpacked bits) | {t_gemm:,.1f} | {pairs / t_gemm / 1e6:,.1f} | "
        f"{len(query) / t_gemm:,.0f} | {t_pop / t_gemm:.1f}x |",
    ]
    body = (
        "## Nearest-neighbour Tanimoto (`benchmarks/speed/tanimoto_speed.py`)\n\n"
        f"`max_tanimoto` of {len(query):,} MOSES molecules against {len(ref):,} others "
        f"(ECFP4, 2048 bits; a MUV-sized training set), {args.threads} torch thread(s), one "
        "call per backend. Both return identical similarities and indices (checked). "
        f"ECFP4 of all {len(bits):,} molecules took {t_fp:.1f} s."
        + (f" {args.note}" if args.note else "")
        + "\n\n| backend | s | M pairs/s | queries/s | speed-up |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + provenance("python benchmarks/speed/tanimoto_speed.py " + shlex.join(sys.argv[1:]))
    )
    print(body)
    write_section("tanimoto", body)


if __name__ == "__main__":
    main()
