"""Morgan fingerprints, RDKit 2D descriptors and bulk Tanimoto on packed bits (numpy only).

Used by the applicability domain (max Tanimoto of ECFP4 bits to the training set) and the
random-forest baseline (Morgan counts + 2D descriptors). Input SMILES are canonical (the
output of :func:`fewmol.chem.mol.try_canonical_smiles`), so bits never depend on atom order.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors, rdFingerprintGenerator

FP_RADIUS = 2  # ECFP4: radius 2 = diameter 4
FP_BITS = 2048
FP_BYTES = FP_BITS // 8
_F32_MAX = float(np.finfo(np.float32).max) / 16  # headroom so sums of descriptors stay finite
# (query rows x reference rows x 64-bit words) per block: ~2 MB temporaries stay in cache
_BLOCK_WORDS = 1 << 18


@lru_cache(maxsize=4)
def _morgan(radius: int, bits: int) -> Any:  # RDKit's generator class (no stub)
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)


def _mol(smiles: str) -> Chem.Mol | None:
    return Chem.MolFromSmiles(smiles)


def morgan_packed(
    smiles: Sequence[str], radius: int = FP_RADIUS, bits: int = FP_BITS
) -> np.ndarray:
    """ECFP bit vectors packed 8 per byte: uint8 (n, bits / 8). Unparsable SMILES: all zero."""
    gen = _morgan(radius, bits)
    out = np.zeros((len(smiles), bits // 8), dtype=np.uint8)
    for i, s in enumerate(smiles):
        mol = _mol(s)
        if mol is not None:
            out[i] = np.packbits(gen.GetFingerprintAsNumPy(mol))
    return out


def morgan_counts(
    smiles: Sequence[str], radius: int = FP_RADIUS, bits: int = FP_BITS
) -> np.ndarray:
    """Morgan count fingerprints (hashed, ``bits`` columns): float32 (n, bits)."""
    gen = _morgan(radius, bits)
    out = np.zeros((len(smiles), bits), dtype=np.float32)
    for i, s in enumerate(smiles):
        mol = _mol(s)
        if mol is not None:
            out[i] = gen.GetCountFingerprintAsNumPy(mol)
    return out


def descriptor_names() -> list[str]:
    """Names of the RDKit 2D descriptors :func:`rdkit_descriptors` computes, in order."""
    return [name for name, _ in Descriptors._descList]


def rdkit_descriptors(smiles: Sequence[str]) -> np.ndarray:
    """RDKit 2D descriptors, float32 (n, n_descriptors); failures and NaN/inf become 0.

    A few descriptors (Ipc, some BCUTs) overflow or fail on odd molecules; they are zeroed and
    clipped so tree models (which only compare values) never see non-finite input.
    """
    funcs = [f for _, f in Descriptors._descList]
    out = np.zeros((len(smiles), len(funcs)), dtype=np.float64)
    for i, s in enumerate(smiles):
        mol = _mol(s)
        if mol is None:
            continue
        for j, f in enumerate(funcs):
            try:
                out[i, j] = f(mol)
            except Exception:  # RDKit descriptor code raises on rare inputs; 0 = "unknown"
                out[i, j] = 0.0
    out = np.nan_to_num(out, nan=0.0, posinf=_F32_MAX, neginf=-_F32_MAX)
    return np.clip(out, -_F32_MAX, _F32_MAX).astype(np.float32)


def _as_words(packed: np.ndarray) -> np.ndarray:
    """uint8 (n, bytes) -> uint64 (n, bytes / 8) view (bytes must be a multiple of 8)."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    if packed.ndim != 2 or packed.shape[1] % 8:
        raise ValueError(f"packed fingerprints must be (n, 8k) uint8, got {packed.shape}")
    return packed.view(np.uint64)


def max_tanimoto(query: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max Tanimoto similarity of each query to any reference, and that reference's index.

    Both are packed bit vectors (uint8 (n, bytes)). Vectorised over blocks of query rows:
    AND of 64-bit words, ``np.bitwise_count``, and |a ∪ b| = |a| + |b| - |a ∩ b|. Returns
    float32 (m,) similarities (0 where both vectors are empty) and int64 (m,) indices (-1 when
    there is no reference).
    """
    q, r = _as_words(query), _as_words(reference)
    m, n = len(q), len(r)
    best = np.zeros(m, dtype=np.float32)
    arg = np.full(m, -1, dtype=np.int64)
    if m == 0 or n == 0:
        return best, arg
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"fingerprint sizes differ: {q.shape[1]} and {r.shape[1]} words")
    q_on = np.bitwise_count(q).sum(1, dtype=np.int32)
    r_on = np.bitwise_count(r).sum(1, dtype=np.int32)
    block = max(1, _BLOCK_WORDS // (n * q.shape[1]))
    for s in range(0, m, block):
        qb = q[s : s + block]
        inter = np.bitwise_count(qb[:, None, :] & r[None, :, :]).sum(-1, dtype=np.int32)
        union = q_on[s : s + block, None] + r_on[None, :] - inter
        sim = inter / np.maximum(union, 1)
        k = sim.argmax(1)
        best[s : s + block] = sim[np.arange(len(qb)), k]
        arg[s : s + block] = k
    return best, arg


def tanimoto_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full Tanimoto matrix (len(a), len(b)) of packed fingerprints (small inputs: tests)."""
    qa, qb = _as_words(a), _as_words(b)
    inter = np.bitwise_count(qa[:, None, :] & qb[None, :, :]).sum(-1, dtype=np.int32)
    union = (
        np.bitwise_count(qa).sum(1, dtype=np.int32)[:, None]
        + np.bitwise_count(qb).sum(1, dtype=np.int32)[None, :]
        - inter
    )
    return (inter / np.maximum(union, 1)).astype(np.float32)
