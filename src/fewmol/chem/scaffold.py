"""Bemis–Murcko scaffolds (RDKit only)."""

from __future__ import annotations

from collections.abc import Sequence

from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold


def murcko_scaffold(smiles: str, include_chirality: bool = True) -> str:
    """Canonical SMILES of the Bemis–Murcko scaffold ('' for acyclic molecules)."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"cannot compute a scaffold for invalid SMILES {smiles!r}")
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=include_chirality)


def scaffolds(smiles: Sequence[str], include_chirality: bool = True) -> list[str]:
    """Scaffold of every SMILES in order."""
    return [murcko_scaffold(s, include_chirality) for s in smiles]
