"""SMILES parsing and canonicalisation (RDKit only)."""

from __future__ import annotations

from rdkit import Chem, RDLogger

from fewmol.errors import InvalidSmilesError

RDLogger.DisableLog("rdApp.*")  # parse failures are reported per row by our own code


def mol_from_smiles(smiles: str, index: int | None = None) -> Chem.Mol:
    """Parse a SMILES string with sanitisation; raise InvalidSmilesError on failure."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise InvalidSmilesError(str(smiles), index, "empty SMILES")
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raise InvalidSmilesError(smiles, index)
    if mol.GetNumAtoms() == 0:
        raise InvalidSmilesError(smiles, index, "no atoms")
    return mol


def canonical_smiles(smiles: str, index: int | None = None) -> str:
    """Return RDKit's canonical isomeric SMILES (so atom order never changes a prediction)."""
    return Chem.MolToSmiles(mol_from_smiles(smiles, index), isomericSmiles=True)


def try_canonical_smiles(smiles: object) -> tuple[str | None, str | None]:
    """Return (canonical SMILES, None) or (None, reason) without raising."""
    if not isinstance(smiles, str) or not smiles.strip():
        return None, "empty SMILES"
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        return None, "RDKit could not parse the SMILES"
    if mol.GetNumAtoms() == 0:
        return None, "SMILES has no atoms"
    return Chem.MolToSmiles(mol, isomericSmiles=True), None
