"""fewmol.data.dta_table: a user's table of measured drug–protein pairs as DTAData."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fewmol.data.dta_table import load_dta_table, pair_split
from fewmol.errors import InvalidInputError

SEQ_A, SEQ_B, SEQ_C = "MKKLVVAG", "MSTNPKPQRKTKRNTNRRPQDVKFPGG", "MAEGEITTFTALTEKFNLPPGNYKKPKLLY"
ROWS = [
    ("CCO", SEQ_A, "5.1"),
    ("OCC", SEQ_A.lower(), "5.3"),  # the same drug and protein, written differently
    ("c1ccccc1", SEQ_B, "7.0"),
    ("not_a_smiles", SEQ_B, "6.0"),  # bad SMILES
    ("CCN", "MK-KL", "6.5"),  # bad sequence
    ("CCN", "", "6.5"),  # empty sequence
    ("CCN", SEQ_C, ""),  # no affinity
    ("CCN", SEQ_C, "8.2"),
    ("CC(=O)O", SEQ_A, "4.9"),
]
# ten more valid pairs, so an 8-1-1 split has something in every part
MORE = [(f"C{'C' * k}O", (SEQ_B, SEQ_C)[k % 2], f"{5 + k / 10:.1f}") for k in range(2, 12)]


def _table(tmp_path: Path, rows=ROWS + MORE, cols=("smiles", "sequence", "pKd")) -> Path:
    p = tmp_path / "pairs.csv"
    pd.DataFrame(rows, columns=list(cols)).to_csv(p, index=False)
    return p


def test_pairs_drugs_and_proteins_are_stored_once_and_bad_rows_named(tmp_path: Path) -> None:
    data, table = load_dta_table(_table(tmp_path))
    assert data.units == "pKd" and data.name == "pairs"
    # row 1 repeats row 0's pair: averaged into it
    assert data.pair_rows.tolist() == [0, 2, 7, 8, *range(9, 19)]
    assert data.drug_ids[:4] == ["CCO", "c1ccccc1", "CCN", "CC(=O)O"]  # canonical, distinct
    assert len(data.drug_ids) == 14 and len(data.proteins) == 3  # SEQ_A in two cases is one
    assert data.drug_idx[:4].tolist() == [0, 1, 2, 3] and data.prot_idx[:4].tolist() == [0, 1, 2, 0]
    np.testing.assert_allclose(data.affinity[:4], [5.2, 7.0, 8.2, 4.9])
    assert data.split.sizes() == {"train": 11, "valid": 1, "test": 2}
    assert data.proteins.sequence(1) == SEQ_B
    reasons = dict(zip(table.bad_rows["row"], table.bad_rows["reason"]))
    assert reasons[3].startswith("invalid SMILES")
    assert reasons[4] == "protein sequence has characters other than amino-acid letters: '-'"
    assert reasons[5] == "empty protein sequence" and reasons[6] == "no labels"
    assert reasons[1] == "replicate of row 0 (line 2): its affinity was averaged into that row"
    assert (table.bad_rows["line"] == table.bad_rows["row"] + 2).all()
    assert table.summary(None) == (
        "read 19 rows: 14 kept (1 replicates merged into them), 4 invalid (1 invalid SMILES, "
        "1 row without labels, 1 empty protein sequence, 1 invalid protein sequence)"
    )


def test_user_errors(tmp_path: Path) -> None:
    p = _table(tmp_path)
    with pytest.raises(InvalidInputError, match="4 invalid row"):
        load_dta_table(p, on_invalid="error")
    with pytest.raises(InvalidInputError, match="--protein-col 'prot' is not a column"):
        load_dta_table(p, protein_col="prot")
    two = [(s, q, y, "1") for s, q, y in ROWS + MORE]
    with pytest.raises(InvalidInputError, match="--target-col"):
        load_dta_table(_table(tmp_path, two, ("smiles", "sequence", "pKd", "batch")))
    data, _ = load_dta_table(_table(tmp_path, two, ("smiles", "sequence", "pKd", "batch")),
                             target_col="pKd")  # fmt: skip
    assert data.units == "pKd"
    nameless = _table(tmp_path, ROWS + MORE, ("smiles", "chain", "pKd"))
    with pytest.raises(InvalidInputError, match="pass --protein-col"):
        load_dta_table(nameless)
    assert load_dta_table(nameless, protein_col="chain")[0].n_pairs == 14
    with pytest.raises(InvalidInputError, match="--split must be one of"):
        load_dta_table(p, split="scaffold")


@pytest.mark.parametrize("how", ["cold-drug", "cold-protein"])
def test_cold_splits_keep_valid_and_test_entities_out_of_training(how: str) -> None:
    rng = np.random.default_rng(0)
    drug, prot = rng.integers(0, 40, 2000), rng.integers(0, 30, 2000)
    s = pair_split(drug, prot, how, seed=3)
    key = drug if how == "cold-drug" else prot
    seen = set(key[s.train].tolist())
    assert not seen & set(key[s.valid].tolist()) and not seen & set(key[s.test].tolist())
    assert sorted(np.concatenate([s.train, s.valid, s.test]).tolist()) == list(range(2000))
    assert 0.65 < len(s.train) / 2000 < 0.92  # whole groups: near 8-1-1
    assert s.kind == f"{how}(seed=3)"
    again = pair_split(drug, prot, how, seed=3)
    assert again.test.tolist() == s.test.tolist()


def test_random_pair_split_and_too_few_groups() -> None:
    s = pair_split(np.zeros(100, int), np.arange(100), "random", seed=0)
    assert s.sizes() == {"train": 80, "valid": 10, "test": 10}
    with pytest.raises(InvalidInputError, match="3 distinct drugs leave a part empty"):
        pair_split(np.array([0, 0, 1, 2]), np.array([0, 1, 2, 3]), "cold-drug")
    with pytest.raises(InvalidInputError, match="5 distinct proteins leave a part empty"):
        pair_split(np.zeros(5, int), np.arange(5), "cold-protein")
    with pytest.raises(InvalidInputError, match="6 pairs leave a part"):
        pair_split(np.zeros(6, int), np.arange(6), "random")
    ten = pair_split(np.zeros(10, int), np.arange(10), "cold-protein")
    assert min(ten.sizes().values()) >= 1
