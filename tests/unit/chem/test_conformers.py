"""fewmol.chem.conformers: atom order, energy order, seeds, fallbacks and failure reasons."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem

from fewmol.chem.conformers import ConformerSettings, generate_conformers
from fewmol.chem.featurize import featurize_canonical
from fewmol.chem.mol import canonical_smiles
from fewmol.errors import InvalidInputError

FAST = ConformerSettings(num_confs=2, seed=0)
# stereo, charges, an explicit isotope H, a salt, aromatic N: atom orders that are easy to break
SMILES = [
    "C[C@H](N)C(=O)O",
    "CC(=O)Oc1ccccc1C(=O)O",
    "[2H]C(Cl)(F)Br",
    "C[N+](C)(C)C.[Cl-]",
    "c1ccncc1CCO",
    "F/C=C/Cl",
]


def _bond_lengths(canon: str, pos: np.ndarray) -> np.ndarray:
    """Distances in every conformer between atoms that the 2D graph says are bonded."""
    ei = featurize_canonical(canon, "hu2019").edge_index
    return np.linalg.norm(pos[:, ei[0]] - pos[:, ei[1]], axis=-1)


@pytest.mark.parametrize("smiles", SMILES)
def test_atom_order_is_the_2d_graph_order(smiles):
    canon = canonical_smiles(smiles)
    r = generate_conformers(canon, FAST)
    assert r.ok, r.failure
    mol = Chem.MolFromSmiles(canon)
    assert r.z.tolist() == [a.GetAtomicNum() for a in mol.GetAtoms()]
    graph = featurize_canonical(canon, "hu2019")
    assert np.array_equal(graph.x[:, 0] + 1, r.z)  # the featuriser's atom types, same order
    assert r.pos.shape == (r.n_confs, mol.GetNumAtoms(), 3) and r.pos.dtype == np.float32
    if mol.GetNumBonds():
        d = _bond_lengths(canon, r.pos)
        assert (d > 0.9).all() and (d < 2.1).all()  # the 2D bonds are bonds in 3D


def test_keep_hs_appends_hydrogens_after_heavy_atoms():
    canon = canonical_smiles("CC(=O)N")
    r = generate_conformers(canon, ConformerSettings(num_confs=1, keep_hs=True))
    molh = Chem.AddHs(Chem.MolFromSmiles(canon))
    assert r.z.tolist() == [a.GetAtomicNum() for a in molh.GetAtoms()]
    for b in molh.GetBonds():  # the AddHs bonds, hydrogens included
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        assert 0.9 < np.linalg.norm(r.pos[0, i] - r.pos[0, j]) < 1.6


def test_energies_ascending_distinct_conformers_and_deterministic():
    canon = canonical_smiles("CCCCOC(=O)CCN")
    # seed 0 is the RDKit trap that gives identical conformers without sequential seeds
    st = ConformerSettings(num_confs=4, seed=0)
    r = generate_conformers(canon, st)
    assert r.ok and r.forcefield == "MMFF94" and r.n_confs == 4
    assert np.isfinite(r.energies).all()
    assert np.all(np.diff(r.energies) >= 0)
    spread = np.abs(r.pos - r.pos[0]).max(axis=(1, 2))
    assert (spread[1:] > 0.1).any()
    again = generate_conformers(canon, st)
    assert np.array_equal(r.pos, again.pos) and np.array_equal(r.energies, again.energies)


def test_failure_reasons():
    assert generate_conformers("C1CC", FAST).failure == "invalid SMILES (RDKit could not parse it)"
    assert generate_conformers("", FAST).ok is False
    big = generate_conformers("CCCCCCC", ConformerSettings(num_confs=1, max_atoms=5))
    assert big.failure == "too many heavy atoms (7 > 5)"
    assert big.pos.shape[0] == 0 and big.n_confs == 0


def test_timeout_is_a_recorded_failure():
    # a flexible 18-carbon molecule takes ~1 s for 2 conformers; the limit is 10 ms
    r = generate_conformers("CC(C)" * 6, ConformerSettings(num_confs=2, timeout_s=0.01))
    assert not r.ok
    assert r.failure.startswith("timed out after 0.01 s")


def test_uff_fallback_and_unoptimised():
    r = generate_conformers("CC[Se]CC", FAST)
    assert r.ok and r.forcefield == "UFF" and r.warning == "MMFF parameters missing; used UFF"
    r = generate_conformers("CCO", ConformerSettings(num_confs=2, mmff=False))
    assert r.ok and r.forcefield == "none" and np.isnan(r.energies).all()


def test_settings_validation_and_round_trip():
    st = ConformerSettings(num_confs=3, timeout_s=2.5)
    assert ConformerSettings.from_dict(st.to_dict()) == st
    with pytest.raises(InvalidInputError, match="num_confs"):
        ConformerSettings(num_confs=0)
    with pytest.raises(InvalidInputError, match="unknown"):
        ConformerSettings.from_dict({"num_conformers": 3})
