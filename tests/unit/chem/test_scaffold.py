"""fewmol.chem.scaffold: Bemis–Murcko scaffolds."""

from __future__ import annotations

import pytest
from rdkit import Chem

from fewmol.chem.scaffold import murcko_scaffold, scaffolds


@pytest.mark.parametrize("smiles", ["CCO", "CC(=O)O", "[Na+].[Cl-]", "C", "CCCCCCCCN", "C=CC#N"])
def test_acyclic_molecules_have_empty_scaffold(smiles: str) -> None:
    assert murcko_scaffold(smiles) == ""
    assert murcko_scaffold(smiles, include_chirality=False) == ""


@pytest.mark.parametrize(
    ("smiles", "scaffold"),
    [
        ("c1ccccc1CC", "c1ccccc1"),
        ("CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1"),
        ("CCc1ccc(Cc2ccncc2)cc1", "c1ccc(Cc2ccncc2)cc1"),
        ("C[C@@H]1CCC[C@H](C)N1", "C1CCNCC1"),
        ("O=C(O)C1CCCCC1", "C1CCCCC1"),
    ],
)
def test_known_scaffolds(smiles: str, scaffold: str) -> None:
    assert murcko_scaffold(smiles) == Chem.MolToSmiles(Chem.MolFromSmiles(scaffold))


def test_scaffold_is_independent_of_spelling() -> None:
    a = murcko_scaffold("CCc1ccc(Cc2ccncc2)cc1")
    b = murcko_scaffold("c1cc(CC)ccc1Cc1ccncc1")
    assert a == b != ""


def test_chirality_kept_in_scaffold_unless_disabled() -> None:
    smiles = "O=C1N[C@@H](c2ccccc2)CN1"
    with_chir = murcko_scaffold(smiles)
    without = murcko_scaffold(smiles, include_chirality=False)
    assert "@" in with_chir
    assert "@" not in without
    assert Chem.MolToSmiles(Chem.MolFromSmiles(with_chir), isomericSmiles=False) == without
    # enantiomers have different scaffolds with chirality, the same without
    other = "O=C1N[C@H](c2ccccc2)CN1"
    assert murcko_scaffold(other) != with_chir
    assert murcko_scaffold(other, include_chirality=False) == without


@pytest.mark.parametrize("bad", ["C1CC", "xyz", "c1cccc1"])
def test_invalid_smiles_raises(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid SMILES"):
        murcko_scaffold(bad)
    with pytest.raises(ValueError):
        scaffolds(["CCO", bad])


def test_scaffolds_in_order() -> None:
    smiles = ["CCO", "c1ccccc1C", "C1CC1C"]
    assert scaffolds(smiles) == ["", "c1ccccc1", "C1CC1"]
    assert scaffolds([]) == []
