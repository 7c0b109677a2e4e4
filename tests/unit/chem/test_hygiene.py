"""fewmol.chem.mol: salt stripping, standardisation and atom-order-free canonical SMILES."""

from __future__ import annotations

import random

import pytest
from rdkit import Chem

from fewmol.chem.mol import (
    NO_HYGIENE,
    Hygiene,
    canonical_smiles,
    try_canonical_smiles,
)
from fewmol.errors import InvalidInputError, InvalidSmilesError

SALTS = Hygiene(strip_salts=True)
STANDARD = Hygiene(strip_salts=True, standardize=True)
CHIRAL = [
    "C[C@H](N)C(=O)O",
    "C[C@@H](N)C(=O)O",
    "COc1ccc2cc([C@H](C)C(=O)O)ccc2c1",
    "C[C@@H]1CC[C@H](C(C)C)[C@@H](O)C1",  # menthol: three stereocentres in a ring
    "O=C(O)[C@@H]1CSC(=N1)c1nc2ccc(O)cc2s1",
    "F/C=C/[C@H](Cl)Br",
    "C[C@H]1O[C@@H](O)[C@H](O)[C@@H](O)[C@@H]1O",
]


def _permutations(smiles: str, n: int = 8, seed: int = 0) -> set[str]:
    """The molecule written with ``n`` random atom orders (non-canonical SMILES)."""
    mol = Chem.MolFromSmiles(smiles)
    rng = random.Random(seed)
    out = set()
    for _ in range(n):
        perm = list(range(mol.GetNumAtoms()))
        rng.shuffle(perm)
        out.add(Chem.MolToSmiles(Chem.RenumberAtoms(mol, perm), canonical=False))
    return out


def test_no_hygiene_keeps_molecule_as_written() -> None:
    assert not NO_HYGIENE.active
    assert canonical_smiles("[Na+].[O-]C(=O)c1ccccc1") == "O=C([O-])c1ccccc1.[Na+]"


@pytest.mark.parametrize(
    ("smiles", "hygiene", "expected"),
    [
        ("[Na+].[O-]C(=O)c1ccccc1", SALTS, "O=C([O-])c1ccccc1"),
        ("[Na+].[O-]C(=O)c1ccccc1", STANDARD, "O=C(O)c1ccccc1"),
        ("CCN(CC)CC.Cl", SALTS, "CCN(CC)CC"),
        ("[NH3+]CC(=O)[O-]", Hygiene(standardize=True), "NCC(=O)O"),
        ("C[NH3+].[Cl-]", STANDARD, "CN"),
        ("Oc1ccccn1", Hygiene(canonical_tautomer=True), "O=c1cccc[nH]1"),
    ],
)
def test_hygiene_steps(smiles: str, hygiene: Hygiene, expected: str) -> None:
    assert try_canonical_smiles(smiles, hygiene) == (expected, None)
    assert canonical_smiles(smiles, hygiene=hygiene) == expected


def test_salt_forms_of_one_parent_become_one_molecule() -> None:
    forms = [
        "CC(=O)Oc1ccccc1C(=O)O",
        "CC(=O)Oc1ccccc1C(=O)[O-].[Na+]",
        "[K+].CC(=O)Oc1ccccc1C([O-])=O",
    ]
    assert len({try_canonical_smiles(s, STANDARD)[0] for s in forms}) == 1
    assert len({try_canonical_smiles(s)[0] for s in forms}) == 3


def test_hygiene_failures_are_reasons_not_exceptions() -> None:
    canon, why = try_canonical_smiles("not a smiles", STANDARD)
    assert canon is None and "parse" in why
    with pytest.raises(InvalidSmilesError):
        canonical_smiles("C1CC", hygiene=STANDARD)


def test_hygiene_round_trips_through_json() -> None:
    h = Hygiene(strip_salts=True, canonical_tautomer=True)
    assert Hygiene.from_dict(h.to_dict()) == h
    assert Hygiene.from_dict(None) == NO_HYGIENE  # model dirs written before hygiene existed
    assert h.describe() == "strip salts, canonical tautomer"
    with pytest.raises(InvalidInputError, match="unknown hygiene"):
        Hygiene.from_dict({"strip_salt": True})


@pytest.mark.parametrize("hygiene", [NO_HYGIENE, STANDARD], ids=["plain", "standardized"])
@pytest.mark.parametrize("smiles", CHIRAL)
def test_atom_order_never_changes_canonical_smiles(smiles: str, hygiene: Hygiene) -> None:
    variants = _permutations(smiles)
    assert len(variants) > 1
    canon = {try_canonical_smiles(v, hygiene)[0] for v in variants}
    assert canon == {try_canonical_smiles(smiles, hygiene)[0]}
    # and the stereo is kept: the enantiomer is a different molecule
    assert "@" in next(iter(canon)) or "/" in next(iter(canon))
