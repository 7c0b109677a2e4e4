"""SMILES -> 2D graph arrays (numpy only; no torch).

Two featurisers, chosen by name and recorded in every config and cache key:

``hu2019``
    The pretrain-gnns / GraphMVP scheme (Hu et al. 2019). Atom = (atomic number index,
    chirality tag); bond = (bond type, bond direction). Vocabulary sizes match the published
    GIN weights: atoms (120, 3), bonds (6, 3). Atomic number Z maps to index Z-1; index 118 is
    our unknown bucket (e.g. the dummy atom ``*``) and 119 the mask token. Bond type 4 is the
    self-loop type added inside each GIN layer, 5 the mask token.
``ogb``
    The OGB ``smiles2graph`` scheme (9 atom / 3 bond categorical features), each list ending in
    an unknown bucket; one extra index per feature is reserved as the mask / self-loop token.

Both return a :class:`MolGraph` of int64 arrays with both directions of every bond.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from rdkit import Chem

from fewmol.chem.mol import canonical_smiles, mol_from_smiles

FEATURIZER_VERSION = {"hu2019": 1, "ogb": 1}


class MolGraph(NamedTuple):
    """One molecule as categorical graph arrays."""

    x: np.ndarray
    """int64 (n_atoms, n_atom_features): per-atom category indices."""
    edge_index: np.ndarray
    """int64 (2, n_edges): directed edges (both directions of each bond), 0-based atom indices."""
    edge_attr: np.ndarray
    """int64 (n_edges, n_bond_features): per-edge category indices."""


# ---------------------------------------------------------------- hu2019 (pretrain-gnns)
_HU_CHIRALITY = {
    Chem.ChiralType.CHI_UNSPECIFIED: 0,
    Chem.ChiralType.CHI_TETRAHEDRAL_CW: 1,
    Chem.ChiralType.CHI_TETRAHEDRAL_CCW: 2,
}
_HU_BOND_TYPE = {
    Chem.BondType.SINGLE: 0,
    Chem.BondType.DOUBLE: 1,
    Chem.BondType.TRIPLE: 2,
    Chem.BondType.AROMATIC: 3,
}
_HU_BOND_DIR = {
    Chem.BondDir.NONE: 0,
    Chem.BondDir.ENDUPRIGHT: 1,
    Chem.BondDir.ENDDOWNRIGHT: 2,
}
# bond order as reported by GetAdjacencyMatrix(useBO=True) -> hu2019 bond type index
_BO_TO_TYPE = {1.0: 0, 2.0: 1, 3.0: 2, 1.5: 3}

HU2019_ATOM_DIMS = (120, 3)
HU2019_BOND_DIMS = (6, 3)
HU2019_UNKNOWN_ATOM = 118
HU2019_MASK_ATOM = 119
HU2019_SELF_LOOP_BOND = (4, 0)
HU2019_MASK_BOND = (5, 0)


def _bonds_from_adjacency(mol: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges and hu2019 bond types from RDKit's bond-order matrix (vectorised)."""
    bo = Chem.GetAdjacencyMatrix(mol, useBO=True)
    src, dst = np.nonzero(bo)
    order = bo[src, dst]
    btype = np.zeros(len(order), dtype=np.int64)  # unknown orders (dative, ...) count as single
    btype[order == 2.0] = 1
    btype[order == 3.0] = 2
    btype[order == 1.5] = 3
    return np.stack([src, dst]).astype(np.int64), btype


def featurize_hu2019(mol: Chem.Mol, has_stereo: bool = True) -> MolGraph:
    """Featurise an RDKit molecule with the pretrain-gnns (Hu et al. 2019) scheme."""
    z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
    atom_idx = z - 1
    atom_idx[(z < 1) | (z > 118)] = HU2019_UNKNOWN_ATOM
    chir = np.zeros_like(atom_idx)
    if has_stereo:
        chir = np.array(
            [_HU_CHIRALITY.get(a.GetChiralTag(), 0) for a in mol.GetAtoms()], dtype=np.int64
        )
    x = np.stack([atom_idx, chir], axis=1)
    if mol.GetNumBonds() == 0:
        return MolGraph(x, np.zeros((2, 0), np.int64), np.zeros((0, 2), np.int64))
    edge_index, btype = _bonds_from_adjacency(mol)
    bdir = np.zeros_like(btype)
    if has_stereo:
        # Bond directions only exist around stereo double bonds; look them up only then.
        dirs = {}
        for b in mol.GetBonds():
            d = _HU_BOND_DIR.get(b.GetBondDir(), 0)
            if d:
                dirs[(b.GetBeginAtomIdx(), b.GetEndAtomIdx())] = d
                dirs[(b.GetEndAtomIdx(), b.GetBeginAtomIdx())] = d
        if dirs:
            bdir = np.array([dirs.get((s, t), 0) for s, t in edge_index.T.tolist()], dtype=np.int64)
    return MolGraph(x, edge_index, np.stack([btype, bdir], axis=1))


# ---------------------------------------------------------------- ogb (9 atom / 3 bond)
_OGB_CHIRALITY = [
    Chem.ChiralType.CHI_UNSPECIFIED,
    Chem.ChiralType.CHI_TETRAHEDRAL_CW,
    Chem.ChiralType.CHI_TETRAHEDRAL_CCW,
    Chem.ChiralType.CHI_OTHER,
]
_OGB_HYBRID = [
    Chem.HybridizationType.SP,
    Chem.HybridizationType.SP2,
    Chem.HybridizationType.SP3,
    Chem.HybridizationType.SP3D,
    Chem.HybridizationType.SP3D2,
]
_OGB_STEREO = [
    Chem.BondStereo.STEREONONE,
    Chem.BondStereo.STEREOZ,
    Chem.BondStereo.STEREOE,
    Chem.BondStereo.STEREOCIS,
    Chem.BondStereo.STEREOTRANS,
    Chem.BondStereo.STEREOANY,
]
# value ranges per OGB atom feature; the index after the last value is the unknown bucket
OGB_ATOM_VOCAB = (
    119,  # atomic number 1..119 -> 0..118, unknown 119
    len(_OGB_CHIRALITY),
    11,  # degree 0..10
    11,  # formal charge -5..5
    9,  # total H 0..8
    5,  # radical electrons 0..4
    len(_OGB_HYBRID),
    2,  # aromatic
    2,  # in ring
)
OGB_BOND_VOCAB = (4, len(_OGB_STEREO), 2)
# +1 unknown bucket, +1 mask/self-loop token per feature
OGB_ATOM_DIMS = tuple(v + 2 for v in OGB_ATOM_VOCAB)
OGB_BOND_DIMS = tuple(v + 2 for v in OGB_BOND_VOCAB)
OGB_SELF_LOOP_BOND = tuple(v + 1 for v in OGB_BOND_VOCAB)
OGB_MASK_ATOM = tuple(v + 1 for v in OGB_ATOM_VOCAB)


def _bucket(values: np.ndarray, low: int, size: int) -> np.ndarray:
    """Shift values by ``low``; anything outside [0, size) goes to the unknown bucket ``size``."""
    idx = values - low
    idx[(idx < 0) | (idx >= size)] = size
    return idx


def featurize_ogb(mol: Chem.Mol, has_stereo: bool = True) -> MolGraph:
    """Featurise an RDKit molecule with OGB's 9 atom / 3 bond categorical features."""
    atoms = list(mol.GetAtoms())
    chir_map = {c: i for i, c in enumerate(_OGB_CHIRALITY)}
    hyb_map = {h: i for i, h in enumerate(_OGB_HYBRID)}
    raw = np.array(
        [
            (
                a.GetAtomicNum(),
                chir_map.get(a.GetChiralTag(), 4),
                a.GetDegree(),
                a.GetFormalCharge(),
                a.GetTotalNumHs(),
                a.GetNumRadicalElectrons(),
                hyb_map.get(a.GetHybridization(), 5),
                a.GetIsAromatic(),
                a.IsInRing(),
            )
            for a in atoms
        ],
        dtype=np.int64,
    ).reshape(len(atoms), 9)
    lows = (1, 0, 0, -5, 0, 0, 0, 0, 0)
    x = np.stack([_bucket(raw[:, k], lows[k], OGB_ATOM_VOCAB[k]) for k in range(9)], axis=1)
    if mol.GetNumBonds() == 0:
        return MolGraph(x, np.zeros((2, 0), np.int64), np.zeros((0, 3), np.int64))
    stereo_map = {s: i for i, s in enumerate(_OGB_STEREO)}
    b = np.array(
        [
            (
                bd.GetBeginAtomIdx(),
                bd.GetEndAtomIdx(),
                _HU_BOND_TYPE.get(bd.GetBondType(), 4),
                stereo_map.get(bd.GetStereo(), 6),
                bd.GetIsConjugated(),
            )
            for bd in mol.GetBonds()
        ],
        dtype=np.int64,
    )
    src = np.concatenate([b[:, 0], b[:, 1]])
    dst = np.concatenate([b[:, 1], b[:, 0]])
    attr = np.concatenate([b[:, 2:], b[:, 2:]])
    return MolGraph(x, np.stack([src, dst]), attr)


# ---------------------------------------------------------------- registry by name
class FeaturizerSpec(NamedTuple):
    """Name, version and vocabulary sizes of a featuriser (what a model needs to be built)."""

    name: str
    version: int
    atom_dims: tuple[int, ...]
    bond_dims: tuple[int, ...]
    self_loop_bond: tuple[int, ...]
    mask_atom: tuple[int, ...]
    fn: Callable[[Chem.Mol, bool], MolGraph]

    @property
    def key(self) -> str:
        """Identifier used in cache keys and config files, e.g. ``hu2019-v1``."""
        return f"{self.name}-v{self.version}"


FEATURIZERS: dict[str, FeaturizerSpec] = {
    "hu2019": FeaturizerSpec(
        "hu2019",
        FEATURIZER_VERSION["hu2019"],
        HU2019_ATOM_DIMS,
        HU2019_BOND_DIMS,
        HU2019_SELF_LOOP_BOND,
        (HU2019_MASK_ATOM, 0),
        featurize_hu2019,
    ),
    "ogb": FeaturizerSpec(
        "ogb",
        FEATURIZER_VERSION["ogb"],
        OGB_ATOM_DIMS,
        OGB_BOND_DIMS,
        OGB_SELF_LOOP_BOND,
        OGB_MASK_ATOM,
        featurize_ogb,
    ),
}


def get_featurizer(name: str) -> FeaturizerSpec:
    """Look up a featuriser by name; raise ValueError listing the valid names."""
    try:
        return FEATURIZERS[name]
    except KeyError:
        raise ValueError(
            f"unknown featurizer {name!r}; expected one of: {', '.join(FEATURIZERS)}"
        ) from None


def _has_stereo(smiles: str) -> bool:
    return "@" in smiles or "/" in smiles or "\\" in smiles


def featurize_canonical(smiles: str, featurizer: str = "hu2019") -> MolGraph:
    """Featurise a SMILES that is already RDKit-canonical (output of ``canonical_smiles``).

    Canonical SMILES carry aromaticity and cleaned stereo already, so we skip RDKit's
    sanitisation (3x faster parse); a test checks the features equal the sanitised path's.
    The ``ogb`` featuriser needs hybridisation and H counts, so it always sanitises.
    """
    spec = get_featurizer(featurizer)
    if spec.name == "hu2019":
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None or mol.GetNumAtoms() == 0:
            mol = mol_from_smiles(smiles)
    else:
        mol = mol_from_smiles(smiles)
    return spec.fn(mol, _has_stereo(smiles))


def featurize_smiles(smiles: str, featurizer: str = "hu2019") -> MolGraph:
    """Canonicalise any SMILES (chirality tags follow atom order) and featurise it."""
    return featurize_canonical(canonical_smiles(smiles), featurizer)


def featurize_many(smiles: Sequence[str], featurizer: str = "hu2019") -> list[MolGraph]:
    """Featurise canonical SMILES in this process (:mod:`fewmol.data.store` runs it in parallel)."""
    return [featurize_canonical(s, featurizer) for s in smiles]
