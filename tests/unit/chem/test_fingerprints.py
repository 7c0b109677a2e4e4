"""fewmol.chem.fingerprints: packed ECFP4 bits, bulk Tanimoto, RF features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import Descriptors, rdFingerprintGenerator

import fewmol.chem.fingerprints as fp
from fewmol.chem.fingerprints import (
    FP_BYTES,
    descriptor_names,
    max_tanimoto,
    morgan_counts,
    morgan_packed,
    rdkit_descriptors,
    tanimoto_matrix,
)
from fewmol.chem.mol import try_canonical_smiles

TINY = pd.read_csv(
    Path(__file__).resolve().parents[2] / "data" / "tiny.csv", dtype=str, keep_default_na=False
)
MOLS = [c for c in (try_canonical_smiles(s)[0] for s in TINY["Canonical SMILES"]) if c]


def _rdkit_sims(query: list[str], ref: list[str]) -> np.ndarray:
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    ref_fps = [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in ref]
    return np.array(
        [
            DataStructs.BulkTanimotoSimilarity(gen.GetFingerprint(Chem.MolFromSmiles(q)), ref_fps)
            for q in query
        ]
    )


def test_packed_bits_match_rdkit_bit_vectors() -> None:
    packed = morgan_packed(MOLS)
    assert packed.dtype == np.uint8 and packed.shape == (len(MOLS), FP_BYTES)
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    for s, row in zip(MOLS, packed):
        on = set(gen.GetFingerprint(Chem.MolFromSmiles(s)).GetOnBits())
        assert set(np.flatnonzero(np.unpackbits(row))) == on


def test_bulk_tanimoto_equals_rdkit(backend) -> None:
    query, ref = MOLS[:25], MOLS[25:]
    expected = _rdkit_sims(query, ref)
    np.testing.assert_allclose(
        tanimoto_matrix(morgan_packed(query), morgan_packed(ref)), expected, atol=1e-6
    )
    best, arg = max_tanimoto(morgan_packed(query), morgan_packed(ref))
    np.testing.assert_allclose(best, expected.max(1), atol=1e-6)
    np.testing.assert_allclose(expected[np.arange(len(query)), arg], expected.max(1), atol=1e-6)


@pytest.fixture(params=["gemm", "popcount"])
def backend(request, monkeypatch) -> str:
    """Runs a test with each way of counting intersections."""
    if request.param == "popcount":
        monkeypatch.setattr(fp, "_gemm_backend", lambda: None)
    else:
        assert fp._gemm_backend() is not None, "this torch build has no int8 matmul"
    return request.param


def test_blocking_does_not_change_results(monkeypatch, backend) -> None:
    ref = morgan_packed(MOLS)
    whole = max_tanimoto(ref[::-1], ref)
    # one query row per block; GEMM tiles of 3 reference x 2 query rows, reduced row by row
    monkeypatch.setattr(fp, "_BLOCK_WORDS", 1)
    monkeypatch.setattr(fp, "_GEMM_REF_ROWS", 3)
    monkeypatch.setattr(fp, "_GEMM_QUERY_ROWS", 2)
    monkeypatch.setattr(fp, "_REDUCE_ROWS", 1)
    blocked = max_tanimoto(ref[::-1], ref)
    np.testing.assert_array_equal(whole[0], blocked[0])
    np.testing.assert_array_equal(whole[1], blocked[1])


def test_gemm_and_popcount_agree_exactly_with_ties(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    bits = rng.random((300, 2048)) < 0.03
    bits[150:] = bits[:150]  # every reference twice: ties, and the first index must win
    bits[5] = bits[7] = False  # empty vectors: similarity 0 to everything
    ref = np.packbits(bits, axis=1)
    query = np.packbits(rng.random((70, 2048)) < 0.05, axis=1)
    query = np.concatenate([query, ref[[3, 5, 160]]])
    monkeypatch.setattr(fp, "_GEMM_REF_ROWS", 64)  # several reference tiles
    gemm = max_tanimoto(query, ref)
    monkeypatch.setattr(fp, "_gemm_backend", lambda: None)
    popcount = max_tanimoto(query, ref)
    np.testing.assert_array_equal(gemm[0], popcount[0])
    np.testing.assert_array_equal(gemm[1], popcount[1])
    full = tanimoto_matrix(query, ref)
    np.testing.assert_array_equal(gemm[0], full.max(1))
    np.testing.assert_array_equal(gemm[1], full.argmax(1))  # first best, as argmax
    assert gemm[0][-3] == 1.0 and gemm[1][-3] == 3 and gemm[1][-1] == 10
    assert gemm[0][-2] == 0.0 and gemm[1][-2] == 0  # empty query: 0, first reference


def test_training_molecule_is_1_and_unrelated_is_low(backend) -> None:
    train = morgan_packed(MOLS[:40])
    sim, arg = max_tanimoto(morgan_packed([MOLS[7], "[Xe]", "FC(F)(F)C(F)(F)C(F)(F)F"]), train)
    assert sim[0] == 1.0 and arg[0] == MOLS[:40].index(MOLS[7])
    assert sim[1] < 0.1 and sim[2] < 0.3, sim


def test_empty_inputs(backend) -> None:
    sim, arg = max_tanimoto(np.zeros((0, FP_BYTES), np.uint8), morgan_packed(MOLS))
    assert sim.shape == (0,) and arg.shape == (0,)
    sim, arg = max_tanimoto(morgan_packed(MOLS[:3]), np.zeros((0, FP_BYTES), np.uint8))
    assert (sim == 0).all() and (arg == -1).all()
    with pytest.raises(ValueError):
        max_tanimoto(np.zeros((2, 7), np.uint8), np.zeros((2, 7), np.uint8))


def test_rf_features_are_finite_counts_and_descriptors() -> None:
    counts = morgan_counts(MOLS[:10])
    assert counts.shape == (10, 2048) and counts.dtype == np.float32
    assert (counts >= 0).all() and counts.max() > 1  # counts, not bits
    desc = rdkit_descriptors(MOLS[:10] + ["[Na+].[Cl-]"])
    assert desc.shape == (11, len(descriptor_names())) and len(descriptor_names()) > 150
    assert np.isfinite(desc).all()
    mw = descriptor_names().index("MolWt")
    assert desc[0, mw] == pytest.approx(Descriptors.MolWt(Chem.MolFromSmiles(MOLS[0])), rel=1e-5)
