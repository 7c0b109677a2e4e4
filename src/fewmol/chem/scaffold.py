"""Bemis–Murcko scaffolds (RDKit only)."""

from __future__ import annotations

from collections.abc import Sequence

from rdkit.Chem.Scaffolds import MurckoScaffold

from fewmol.chem.mol import mol_from_smiles


def murcko_scaffold(smiles: str, include_chirality: bool = True) -> str:
    """Canonical SMILES of the Bemis–Murcko scaffold ('' for acyclic molecules)."""
    mol = mol_from_smiles(smiles)
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=include_chirality)


def scaffolds(smiles: Sequence[str], include_chirality: bool = True) -> list[str]:
    """Scaffold of every SMILES in order."""
    return [murcko_scaffold(s, include_chirality) for s in smiles]
