"""SMILES parsing, canonicalisation and optional input hygiene (RDKit only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from rdkit import Chem, RDLogger
from rdkit.Chem.MolStandardize import rdMolStandardize

from fewmol.errors import InvalidInputError, InvalidSmilesError

RDLogger.DisableLog("rdApp.*")  # parse failures are reported per row by our own code


@dataclass(frozen=True)
class Hygiene:
    """Clean-up applied to every molecule before canonicalisation (recorded in config.json).

    ``strip_salts`` keeps the largest organic fragment; ``standardize`` runs RDKit's
    MolStandardize clean-up (normalise groups, reionise, disconnect metals) and neutralises;
    ``canonical_tautomer`` replaces the molecule by RDKit's canonical tautomer. All off by
    default, so a SMILES means exactly what the user wrote.
    """

    strip_salts: bool = False
    standardize: bool = False
    canonical_tautomer: bool = False

    @property
    def active(self) -> bool:
        """Whether any step is on."""
        return self.strip_salts or self.standardize or self.canonical_tautomer

    def to_dict(self) -> dict[str, bool]:
        """JSON form (config.json ``hygiene``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Hygiene:
        """Inverse of :meth:`to_dict`; None or a missing key means off (older model dirs)."""
        d = d or {}
        unknown = set(d) - {"strip_salts", "standardize", "canonical_tautomer"}
        if unknown:
            raise InvalidInputError(f"unknown hygiene settings {sorted(unknown)} in config.json")
        return cls(**{k: bool(v) for k, v in d.items()})

    def describe(self) -> str:
        """Human-readable list of the steps that are on ('none' if none)."""
        steps = [k.replace("_", " ") for k, v in self.to_dict().items() if v]
        return ", ".join(steps) or "none"

    def apply(self, mol: Chem.Mol) -> Chem.Mol:
        """The cleaned molecule (a new object; ``mol`` is not modified)."""
        if self.standardize:
            mol = rdMolStandardize.Cleanup(mol)
        if self.strip_salts:
            mol = _fragment_chooser().choose(mol)
        if self.standardize:
            mol = _uncharger().uncharge(mol)
        if self.canonical_tautomer:
            mol = _tautomer_enumerator().Canonicalize(mol)
        return mol


NO_HYGIENE = Hygiene()


# One instance each per process: constructing them costs more than applying them.
@lru_cache(maxsize=1)
def _fragment_chooser() -> rdMolStandardize.LargestFragmentChooser:
    return rdMolStandardize.LargestFragmentChooser(preferOrganic=True)


@lru_cache(maxsize=1)
def _uncharger() -> rdMolStandardize.Uncharger:
    return rdMolStandardize.Uncharger(canonicalOrder=True)


@lru_cache(maxsize=1)
def _tautomer_enumerator() -> rdMolStandardize.TautomerEnumerator:
    return rdMolStandardize.TautomerEnumerator()


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


def canonical_smiles(smiles: str, index: int | None = None, hygiene: Hygiene = NO_HYGIENE) -> str:
    """Return RDKit's canonical isomeric SMILES (so atom order never changes a prediction)."""
    mol = mol_from_smiles(smiles, index)
    if hygiene.active:
        mol, why = _clean(mol, hygiene)
        if mol is None:
            raise InvalidSmilesError(smiles, index, why or "standardisation failed")
    return Chem.MolToSmiles(mol, isomericSmiles=True)


def _clean(mol: Chem.Mol, hygiene: Hygiene) -> tuple[Chem.Mol | None, str | None]:
    """Apply ``hygiene``; (None, reason) when RDKit fails or nothing is left."""
    try:
        mol = hygiene.apply(mol)
    except Exception as e:  # RDKit raises assorted C++ errors (valence, kekulisation, ...)
        text = str(e).splitlines()[0] if str(e) else repr(e)
        return None, f"standardisation failed: {text}"
    if mol is None or mol.GetNumAtoms() == 0:
        return None, "standardisation left no atoms"
    return mol, None


def try_canonical_smiles(
    smiles: object, hygiene: Hygiene = NO_HYGIENE
) -> tuple[str | None, str | None]:
    """Return (canonical SMILES, None) or (None, reason) without raising.

    ``hygiene`` steps run on the parsed molecule before it is written canonically, so the
    same parent written as two salts (or two atom orders) gives one canonical SMILES.
    """
    if not isinstance(smiles, str) or not smiles.strip():
        return None, "empty SMILES"
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        return None, "RDKit could not parse the SMILES"
    if mol.GetNumAtoms() == 0:
        return None, "SMILES has no atoms"
    if hygiene.active:
        mol, why = _clean(mol, hygiene)
        if mol is None:
            return None, why
    return Chem.MolToSmiles(mol, isomericSmiles=True), None
