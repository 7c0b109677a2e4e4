"""fewmol.data.geometry: SDF and QM9 coordinates mapped onto the canonical 2D atom order."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from fewmol.chem.featurize import featurize_canonical
from fewmol.chem.mol import canonical_smiles
from fewmol.data.conformer_store import ConformerStore
from fewmol.data.geometry import _qm9_molecule, load_qm9, read_sdf, sdf_to_store

SMILES = ["C[C@H](N)C(=O)O", "OC(=O)c1ccccc1OC(C)=O", "F/C=C/Cl", "CC(C)(C)c1ccncc1"]


def _distances(pos: np.ndarray) -> np.ndarray:
    return np.linalg.norm(pos[..., :, None, :] - pos[..., None, :, :], axis=-1)


def _same_up_to_symmetry(canon: str, pos: np.ndarray, expected: np.ndarray) -> bool:
    """pos equals expected after some automorphism of the 2D graph (the three methyls of a
    tert-butyl are interchangeable: which one comes first depends on the record's atom order)."""
    mol = Chem.MolFromSmiles(canon)
    perms = mol.GetSubstructMatches(mol, uniquify=False, useChirality=True, maxMatches=10000)
    return any(np.allclose(pos, expected[:, list(p)], atol=1e-3) for p in perms)


@pytest.fixture(scope="module")
def sdf(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """Two conformers per molecule, each record with its atoms in a random order, plus a 2D
    record and an unreadable one; returns the path and the reference coordinates (with H) in
    canonical order."""
    path = tmp_path_factory.mktemp("sdf") / "mols.sdf"
    rng = np.random.default_rng(0)
    ref = {}
    writer = Chem.SDWriter(str(path))
    for s in SMILES:
        canon = canonical_smiles(s)
        mol = Chem.AddHs(Chem.MolFromSmiles(canon))
        AllChem.EmbedMultipleConfs(mol, 2, randomSeed=7)
        ref[canon] = np.stack([mol.GetConformer(c).GetPositions() for c in range(2)])
        shuffled = Chem.RenumberAtoms(mol, rng.permutation(mol.GetNumAtoms()).tolist())
        shuffled.SetProp("_Name", canon)
        for c in range(2):
            writer.write(shuffled, confId=c)
    flat = Chem.MolFromSmiles("CCO")
    AllChem.Compute2DCoords(flat)
    writer.write(flat)
    writer.close()
    with open(path, "a") as fh:  # a record RDKit cannot read: carbon with five bonds
        fh.write(
            Chem.MolToMolBlock(Chem.MolFromSmiles("C")).replace("  0  0  0  0", "  0  5  0  0")
        )
        fh.write("\n$$$$\n")
    return path, ref


def test_sdf_maps_shuffled_atoms_to_canonical_order(sdf):
    path, ref = sdf
    geoms = read_sdf(path)
    assert geoms.smiles == [canonical_smiles(s) for s in SMILES]
    for canon, z, pos in zip(*geoms[:3]):
        mol = Chem.MolFromSmiles(canon)
        assert z.tolist() == [a.GetAtomicNum() for a in mol.GetAtoms()]
        assert pos.shape == (2, mol.GetNumAtoms(), 3)
        expected = ref[canon][:, : mol.GetNumAtoms()]
        assert _same_up_to_symmetry(canon, pos, expected)  # SDF keeps 4 decimals
        if len(mol.GetSubstructMatches(mol, uniquify=False, useChirality=True)) == 1:
            # no interchangeable atoms: the order is unique
            assert np.allclose(pos, expected, atol=1e-3)
            assert np.allclose(_distances(pos), _distances(expected), atol=2e-3)
        ei = featurize_canonical(canon).edge_index
        assert (np.linalg.norm(pos[:, ei[0]] - pos[:, ei[1]], axis=-1) < 2.0).all()
    assert geoms.failures["record"].tolist() == [8, 9]
    assert geoms.failures["reason"].iloc[0] == "record has no 3D coordinates"


def test_sdf_keep_hs_and_gzip(sdf, tmp_path):
    path, ref = sdf
    gz = tmp_path / "mols.sdf.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    geoms = read_sdf(gz, keep_hs=True)
    for canon, z, pos in zip(*geoms[:3]):
        molh = Chem.AddHs(Chem.MolFromSmiles(canon))
        assert z.tolist() == [a.GetAtomicNum() for a in molh.GetAtoms()]
        # hydrogens on one atom are interchangeable; each must sit on the atom AddHs puts it on
        for b in molh.GetBonds():
            i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
            assert (np.linalg.norm(pos[:, i] - pos[:, j], axis=-1) < 2.0).all()
        heavy = molh.GetNumHeavyAtoms()
        assert _same_up_to_symmetry(canon, pos[:, :heavy], ref[canon][:, :heavy])


def test_sdf_to_store(sdf, tmp_path):
    path, _ = sdf
    store, bad = sdf_to_store(path, tmp_path / "store")
    assert len(store) == 4 and store.ok_mask.all() and len(bad) == 2
    assert store.source == "sdf" and store.n_confs.tolist() == [2, 2, 2, 2]
    assert store.source_id.tolist() == [0, 2, 4, 6]  # first record of each molecule
    z, pos = store.get(1)
    geoms = read_sdf(path)
    assert np.array_equal(z, geoms.z[1]) and np.array_equal(pos, geoms.pos[1])
    assert ConformerStore(tmp_path / "store").key == store.key


def test_qm9_mapping_and_tautomer_warning():
    """A geometry with H on N (acetamide) against its SMILES and against the imidic acid."""
    mol = Chem.AddHs(Chem.MolFromSmiles("NC(C)=O"))
    AllChem.EmbedMolecule(mol, randomSeed=3)
    z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    pos = mol.GetConformer().GetPositions().astype(np.float32)
    right = _qm9_molecule(z, pos, canonical_smiles("CC(N)=O"), keep_hs=True, match="smiles")
    assert right.ok and right.warning is None
    molh = Chem.AddHs(Chem.MolFromSmiles(canonical_smiles("CC(N)=O")))
    assert right.z.tolist() == [a.GetAtomicNum() for a in molh.GetAtoms()]
    for b in molh.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        assert np.linalg.norm(right.pos[0, i] - right.pos[0, j]) < 1.6
    other = _qm9_molecule(z, pos, canonical_smiles("CC(O)=N"), keep_hs=False, match="connectivity")
    assert other.ok and "another tautomer" in other.warning
    strict = _qm9_molecule(z, pos, canonical_smiles("CC(O)=N"), keep_hs=False, match="smiles")
    assert not strict.ok
    wrong = _qm9_molecule(z, pos, canonical_smiles("CCNO"), keep_hs=False, match="connectivity")
    assert wrong.failure.startswith("heavy-atom connectivity of the geometry")


def test_load_qm9(shared_data, tmp_path):
    out = tmp_path / "qm9"
    store = load_qm9(shared_data / "qm9", out, limit=50, seed=0)
    assert store.source == "qm9" and len(store) == 50
    assert store.ok_mask.sum() >= 40  # SOURCES.md: ~95 % match
    assert len(store.failures) == (~store.ok_mask).sum()
    assert store.failures["reason"].str.len().gt(0).all()
    assert np.all(np.diff(store.source_id) > 0)  # QM9 Index, QM9 order
    for i in np.flatnonzero(store.ok_mask):
        canon = store.smiles[i]
        z, pos = store.get(i)
        assert z.tolist() == [a.GetAtomicNum() for a in Chem.MolFromSmiles(canon).GetAtoms()]
        ei = featurize_canonical(canon).edge_index
        d = np.linalg.norm(pos[0, ei[0]] - pos[0, ei[1]], axis=-1)
        assert (d > 1.0).all() and (d < 1.8).all()  # DFT bond lengths of the 2D bonds
    manifest = (out / "manifest.json").stat().st_mtime_ns
    assert load_qm9(shared_data / "qm9", out, limit=50, seed=0).key == store.key
    assert (out / "manifest.json").stat().st_mtime_ns == manifest  # reused, not rebuilt
    with_h = load_qm9(shared_data / "qm9", tmp_path / "qm9h", limit=50, seed=0, keep_hs=True)
    i = int(np.flatnonzero(with_h.ok_mask)[0])
    z, _ = with_h.get(i)
    assert len(z) == Chem.AddHs(Chem.MolFromSmiles(with_h.smiles[i])).GetNumAtoms()
