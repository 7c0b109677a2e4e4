"""Regenerate the tiny test tables: ``python tests/data/make_fixtures.py`` (deterministic).

``tiny.csv`` (classification, two tasks) has odd column names, an ID column, a text column,
missing labels, invalid/empty SMILES, a duplicate molecule, salts, charged, stereo and
single-atom molecules. Labels follow from the structure, so a model can learn them:

* ``Acid (active=1)``: 1 iff the molecule has a carboxylic acid or carboxylate group;
* ``N-count > 0 [class]``: 1 iff the molecule has a nitrogen atom.

``tiny_regression.csv`` has one target, ``logP (Crippen)`` = RDKit Crippen MolLogP rounded to
2 decimals, plus two invalid SMILES and one non-numeric label.

Molecules are written out below (hand-written ones and a fixed pick from MoleculeNet BBBP), so
the script needs only RDKit and always writes the same files.
"""

from __future__ import annotations

import csv
from pathlib import Path

from rdkit import Chem, RDLogger
from rdkit.Chem import Crippen

RDLogger.DisableLog("rdApp.*")

HERE = Path(__file__).resolve().parent

ACID = Chem.MolFromSmarts("[CX3](=O)[OX1H0-,OX2H1]")

# drug-like molecules from MoleculeNet BBBP (first rows with <= 30 heavy atoms and no salt):
# 12 with a carboxylic acid, 10 with nitrogen and no acid, 8 with neither
BBBP = [
    "c12c3c(N4CCN(C)CC4)c(F)cc1c(c(C(O)=O)cn2C(C)CO3)=O",
    "Cc1onc(c2ccccc2Cl)c1C(=O)N[C@H]3[C@H]4SC(C)(C)[C@@H](N4C3=O)C(O)=O",
    "C[C@H]1COc2c(N3CCN(C)CC3)c(F)cc4C(=O)C(=CN1c24)C(O)=O",
    "CO/N=C(C(=O)N[C@H]1[C@H]2SCC(=C(N2C1=O)C(O)=O)COC(N)=O)/c3occc3",
    "CO[C@]1(NC(=O)Cc2sccc2)[C@H]3SCC(=C(N3C1=O)C(O)=O)COC(N)=O",
    "CCCCC[C@H](O)/C=C/[C@H]1[C@H](O)CC(=O)[C@@H]1CCCCCCC(O)=O",
    "CC1(C)S[C@@H]2[C@H](NC(=O)[C@H](N)c3ccccc3)C(=O)N2[C@H]1C(O)=O",
    "NCC1(CCCCC1)CC(O)=O",
    "CCN1C=C(C(O)=O)C(=O)c2ccc(C)nc12",
    "CC1(C)S[C@@H]2[C@H](NC(=O)C(C(O)=O)c3ccccc3)C(=O)N2[C@H]1C(O)=O",
    "C[C@@](Cc1ccc(O)c(O)c1)(NN)C(O)=O",
    "CC(=O)OCC1=C(N2[C@H](SC1)[C@H](NC(=O)CSc3ccncc3)C2=O)C(O)=O",
    "C(=O)(OC(C)(C)C)CCCc1ccc(cc1)N(CCCl)CCCl",
    "C1CCN(CC1)Cc1cccc(c1)OCCCNC(=O)C",
    "Cn1c2CCC(Cn3ccnc3C)C(=O)c2c4ccccc14",
    "COc1ccc(cc1)[C@@H]2Sc3ccccc3N(CCN(C)C)C(=O)[C@@H]2OC(C)=O",
    "NC(N)=NC(=O)c1nc(Cl)c(N)nc1N",
    "OCC(C)(O)c1onc(c2ncn3c2CN(C)C(c4c3cccc4Cl)=O)n1",
    "CC1=CN([C@H]2C[C@H](F)[C@@H](CO)O2)C(=O)NC1=O",
    "CCC(=O)C(CC(C)N(C)C)(c1ccccc1)c2ccccc2",
    "CCN1N=NN(CCN2CCC(CC2)(COC)N(C(=O)CC)c3ccccc3)C1=O",
    "CN1C2CCC1CC(C2)OC(=O)[C@H](CO)c3ccccc3",
    "C(Cl)Cl",
    "CCCC(C)C",
    "c1(ccccc1)CC",
    "ClCC(F)(F)F",
    "C[C@]1(O)CC[C@H]2[C@@H]3CCC4=CC(=O)CC[C@]4(C)[C@H]3CC[C@]12C",
    "C[C@H]1C[C@H]2[C@@H]3CCC4=CC(=O)C=C[C@]4(C)[C@@]3(F)[C@@H](O)C[C@]2(C)[C@@]1(O)C(=O)CO",
    "CCOC(=O)C(C)(C)Oc1ccc(Cl)cc1",
    "C[C@]12C[C@H](O)[C@H]3[C@@H](CCC4=CC(=O)CC[C@]34C)[C@@H]1CC[C@@H]2C(=O)CO",
]

# hand-written molecules (valid), used in both files
OWN = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",  # ibuprofen
    "COc1ccc2cc(ccc2c1)[C@H](C)C(=O)O",  # naproxen (stereo)
    "OC(=O)c1ccccc1",  # benzoic acid
    "CC(=O)O",  # acetic acid
    "OC(=O)CCC(=O)O",  # succinic acid
    "OC(=O)/C=C/C(=O)O",  # fumaric acid (E)
    "OC(=O)/C=C\\C(=O)O",  # maleic acid (Z)
    "OC(=O)c1ccccc1O",  # salicylic acid
    "CCCCCCCC(=O)O",  # octanoic acid
    "c1ccccc1",  # benzene
    "Cc1ccccc1",  # toluene
    "CCO",  # ethanol
    "CC(C)=O",  # acetone
    "C1CCCCC1",  # cyclohexane
    "c1ccc2ccccc2c1",  # naphthalene
    "Oc1ccccc1",  # phenol
    "CCOCC",  # diethyl ether
    "ClC(Cl)Cl",  # chloroform
    "CC(C)(C)O",  # tert-butanol
    "c1ccncc1",  # pyridine
    "CCN(CC)CC",  # triethylamine
    "NC(=O)c1ccccc1",  # benzamide
    "CN1CCC[C@H]1c1cccnc1",  # nicotine (stereo)
    "c1ccc2[nH]ccc2c1",  # indole
    "CC(=O)Nc1ccc(O)cc1",  # paracetamol
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",  # caffeine
    "CCCCN",  # butylamine
    "C1CCNCC1",  # piperidine
    "N#Cc1ccccc1",  # benzonitrile
]

# special rows of tiny.csv: (SMILES as written, note)
SPECIAL = [
    ("[Na+].[O-]C(=O)c1ccccc1", "salt: sodium benzoate"),
    ("CCN(CC)CC.Cl", "salt: triethylamine hydrochloride"),
    ("C[C@H](N)C(=O)O", "stereo: L-alanine"),
    ("C[C@@H](N)C(=O)O", "stereo: D-alanine"),
    ("F/C=C/F", "stereo: E-difluoroethene"),
    ("C[N+](C)(C)C", "charged: tetramethylammonium"),
    ("[NH3+]CC(=O)[O-]", "charged: glycine zwitterion"),
    ("C", "single atom: methane"),
    ("[Na+]", "single atom: sodium ion"),
    ("O", "single atom: water"),
]
INVALID = [
    ("C1CC", "invalid: unclosed ring"),
    ("C(C)(C)(C)(C)C", "invalid: pentavalent carbon"),
    ("not a smiles", "invalid: text"),
]


def _has_n(mol: Chem.Mol) -> bool:
    return any(a.GetAtomicNum() == 7 for a in mol.GetAtoms())


def _labels(smi: str) -> tuple[str, str]:
    mol = Chem.MolFromSmiles(smi)
    return str(int(mol.HasSubstructMatch(ACID))), str(int(_has_n(mol)))


def _interleave(a: list, b: list) -> list:
    """Deterministic mix: one of ``b`` after every len(a)//len(b) of ``a``."""
    if not b:
        return list(a)
    step = max(1, len(a) // len(b))
    out, j = [], 0
    for i, x in enumerate(a):
        out.append(x)
        if (i + 1) % step == 0 and j < len(b):
            out.append(b[j])
            j += 1
    return out + b[j:]


def make_tiny() -> list[list[str]]:
    """Rows of tiny.csv (header first)."""
    header = [
        "compound id",
        "Canonical SMILES",
        "Source (text)",
        "Acid (active=1)",
        "N-count > 0 [class]",
    ]
    molecules = [(s, "hand-written") for s in OWN] + [(s, "BBBP") for s in BBBP]
    rows = []
    for k, (smi, note) in enumerate(molecules):
        acid, n = _labels(smi)
        if k % 7 == 3:
            acid = ""  # missing label
        if k % 9 == 5 and acid:
            n = "NA"  # missing label, spelled NA (never both labels missing here)
        rows.append([smi, note, acid, n])
    special = []
    for smi, note in SPECIAL:
        acid, n = _labels(smi)
        special.append([smi, note, acid, n])
    special += [[smi, note, "0", "1"] for smi, note in INVALID]
    special.append(["", "empty SMILES", "0", "0"])
    special.append(["OCC", "duplicate: ethanol written differently", "0", "0"])
    special.append(["CCCCCO", "no labels: pentanol", "", ""])
    rows = _interleave(rows, special)
    # ID column: unique integers, not in order (so it is excluded by its name, not as a counter)
    return [header] + [[str(1000 + (37 * i) % 997)] + r for i, r in enumerate(rows)]


def _logp(smi: str) -> str:
    """Crippen logP as text with 2 decimals (never '-0.00')."""
    return f"{round(Crippen.MolLogP(Chem.MolFromSmiles(smi)), 2) + 0.0:.2f}"


def make_tiny_regression() -> list[list[str]]:
    """Rows of tiny_regression.csv (header first)."""
    header = ["Name", "Molecule SMILES", "logP (Crippen)"]
    molecules = OWN + [s for s, _ in SPECIAL[:3]] + BBBP[:8] + BBBP[12:20] + BBBP[22:26]
    rows = [[smi, _logp(smi)] for smi in molecules]
    bad = [["C1CC", "1.00"], ["c1cccc", "2.00"], ["CCCCO", "n.d."]]
    rows = _interleave(rows, bad)
    return [header] + [[f"mol-{i + 1:03d}"] + r for i, r in enumerate(rows)]


def write(path: Path, rows: list[list[str]]) -> None:
    """Write rows as CSV with '\\n' line endings."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def main() -> None:
    """Write both fixtures next to this script."""
    tiny = make_tiny()
    reg = make_tiny_regression()
    assert len(tiny) - 1 <= 100 and len(reg) - 1 <= 100
    write(HERE / "tiny.csv", tiny)
    write(HERE / "tiny_regression.csv", reg)
    print(f"wrote tiny.csv ({len(tiny) - 1} rows), tiny_regression.csv ({len(reg) - 1} rows)")


if __name__ == "__main__":
    main()
