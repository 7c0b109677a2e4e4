"""Reading and validating user tables (fewmol.data.tables)."""

from __future__ import annotations

import csv
import gzip
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen

from fewmol.data.tables import (
    BAD_ROW_COLUMNS,
    detect_smiles_col,
    detect_target_cols,
    infer_task_type,
    read_smiles,
    read_table,
    write_bad_rows,
)
from fewmol.errors import InvalidInputError

DATA = Path(__file__).resolve().parents[2] / "data"
TINY = DATA / "tiny.csv"
TINY_REG = DATA / "tiny_regression.csv"
SMILES = "Canonical SMILES"
ACID = "Acid (active=1)"
NITRO = "N-count > 0 [class]"


def _records(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _row_of(path: Path, col: str, value: str) -> int:
    """0-based data row of the first record whose ``col`` equals ``value``."""
    return next(i for i, r in enumerate(_records(path)) if r[col] == value)


def _reasons(table, row: int) -> list[str]:
    return table.bad_rows.loc[table.bad_rows["row"] == row, "reason"].tolist()


@pytest.fixture(scope="module")
def tiny():
    return read_table(TINY)


# ----------------------------------------------------------------------------- the fixture


def test_fixture_autodetects_odd_column_names_and_ignores_id(tiny):
    assert tiny.smiles_col == SMILES
    assert tiny.target_names == [ACID, NITRO]  # not 'compound id', not the text column
    assert tiny.task_type == "classification"
    assert tiny.targets.dtype == np.float32
    assert tiny.targets.shape == (len(tiny.smiles), 2) == (len(tiny.rows), 2)
    assert set(np.unique(tiny.targets[~np.isnan(tiny.targets)])) == {0.0, 1.0}
    assert tiny.rows.dtype == np.int64 and np.all(np.diff(tiny.rows) > 0)  # input order


def test_fixture_lists_each_bad_row_with_row_line_and_reason(tiny):
    lines = TINY.read_text().splitlines()
    expected = {
        "C1CC": "invalid SMILES (RDKit could not parse it)",
        "C(C)(C)(C)(C)C": "invalid SMILES (RDKit could not parse it)",
        "not a smiles": "invalid SMILES (RDKit could not parse it)",
        "": "empty SMILES",
        "CCCCCO": "no labels",
    }
    for smi, reason in expected.items():
        row = _row_of(TINY, SMILES, smi)
        entry = tiny.bad_rows[tiny.bad_rows["row"] == row]
        assert entry["reason"].tolist() == [reason], smi
        line = int(entry["line"].iloc[0])
        assert line == row + 2
        assert lines[line - 1].split(",")[1] == smi  # the line number points at the record
        assert row not in tiny.rows
    assert tiny.summary() == (
        f"read {tiny.n_input} rows: {len(tiny.smiles)} kept, 6 invalid (3 invalid SMILES, "
        "1 empty SMILES, 1 row without labels, 1 duplicate); see bad_rows.csv"
    )
    assert tiny.n_input == len(_records(TINY)) == len(tiny.smiles) + 6


def test_fixture_duplicate_keeps_first(tiny):
    first, dup = _row_of(TINY, SMILES, "CCO"), _row_of(TINY, SMILES, "OCC")
    assert first < dup
    assert _reasons(tiny, dup) == [
        f"duplicate of row {first} (line {first + 2}, same canonical SMILES)"
    ]
    assert first in tiny.rows
    assert tiny.smiles.count("CCO") == 1


def test_fixture_missing_labels_are_nan(tiny):
    recs = _records(TINY)
    kept = {int(r): i for i, r in enumerate(tiny.rows)}
    n_missing = 0
    for row, rec in enumerate(recs):
        if row not in kept:
            continue
        for j, col in enumerate((ACID, NITRO)):
            value = tiny.targets[kept[row], j]
            if rec[col] in ("", "NA"):
                assert np.isnan(value)
                n_missing += 1
            else:
                assert value == float(rec[col])
    assert n_missing >= 5


def test_fixture_keeps_salts_stereo_charged_and_single_atoms(tiny):
    canon = set(tiny.smiles)
    for smi in [
        "[Na+].[O-]C(=O)c1ccccc1",
        "CCN(CC)CC.Cl",
        "C[C@H](N)C(=O)O",
        "C[C@@H](N)C(=O)O",
        "F/C=C/F",
        "C[N+](C)(C)C",
        "[NH3+]CC(=O)[O-]",
        "C",
        "[Na+]",
        "O",
    ]:
        assert Chem.MolToSmiles(Chem.MolFromSmiles(smi)) in canon, smi
    # stereo isomers are different molecules, not duplicates
    assert Chem.MolToSmiles(Chem.MolFromSmiles("C[C@H](N)C(=O)O")) != Chem.MolToSmiles(
        Chem.MolFromSmiles("C[C@@H](N)C(=O)O")
    )
    i = tiny.input_smiles.index("C[C@H](N)C(=O)O")
    assert tiny.smiles[i] == "C[C@H](N)C(=O)O"


def test_fixture_labels_follow_structure(tiny):
    acid = Chem.MolFromSmarts("[CX3](=O)[OX1H0-,OX2H1]")
    for smi, (y_acid, y_n) in zip(tiny.smiles, tiny.targets, strict=True):
        mol = Chem.MolFromSmiles(smi)
        if not np.isnan(y_acid):
            assert y_acid == float(mol.HasSubstructMatch(acid)), smi
        if not np.isnan(y_n):
            assert y_n == float(any(a.GetSymbol() == "N" for a in mol.GetAtoms())), smi
    for j in range(2):  # both classes present in both tasks
        assert {0.0, 1.0} <= set(tiny.targets[:, j][~np.isnan(tiny.targets[:, j])])


def test_regression_fixture_is_inferred_and_values_kept_raw():
    t = read_table(TINY_REG)
    assert (t.smiles_col, t.target_names, t.task_type) == (
        "Molecule SMILES",
        ["logP (Crippen)"],
        "regression",
    )
    for smi, y in zip(t.smiles, t.targets[:, 0], strict=True):
        assert y == pytest.approx(Crippen.MolLogP(Chem.MolFromSmiles(smi)), abs=0.006)
    bad = t.bad_rows
    row = _row_of(TINY_REG, "logP (Crippen)", "n.d.")
    assert _reasons(t, row) == ["non-numeric label 'n.d.' in column 'logP (Crippen)'"]
    assert bad.loc[bad["row"] == row, "column"].item() == "logP (Crippen)"
    assert (bad["reason"] == "invalid SMILES (RDKit could not parse it)").sum() == 2
    assert t.summary().startswith(f"read {t.n_input} rows: {t.n_input - 3} kept, 3 invalid")


# ----------------------------------------------------------------------------- detection


def test_bbbp_like_columns_pick_only_p_np():
    df = pd.DataFrame(
        {
            "num": ["1", "2", "3", "4", "5"],
            "name": ["Propanolol", "40730", "24", "cloxacillin", "12"],
            "p_np": ["1", "1", "0", "1", "0"],
            "smiles": ["CC(C)NCC(O)COc1cccc2ccccc12", "CCO", "CCN", "c1ccccc1", "CC(=O)O"],
        }
    )
    t = read_table(df)
    assert (t.smiles_col, t.target_names, t.task_type) == ("smiles", ["p_np"], "classification")
    assert t.targets[:, 0].tolist() == [1, 1, 0, 1, 0]


def test_id_like_and_counter_columns_are_not_targets():
    df = pd.DataFrame(
        {
            "Compound ID": ["17", "3", "99", "42"],  # numeric, excluded by name
            "MolId": ["5", "1", "7", "2"],
            "step": ["1", "2", "3", "4"],  # a row counter
            "Notes": ["a", "b", "c", "d"],
            "SMILES": ["CCO", "CCN", "CCC", "CCCl"],
            "pIC50": ["5.1", "6.2", "", "7.0"],
        }
    )
    assert detect_smiles_col(df) == "SMILES"
    assert detect_target_cols(df, "SMILES") == ["pIC50"]


def test_smiles_column_found_by_content_when_name_does_not_say():
    df = pd.DataFrame(
        {
            "label": ["1", "0", "1"],
            "structure": ["CCO", "c1ccccc1", "CC(=O)O"],
            "comment": ["ok", "fine", "good"],
        }
    )
    assert detect_smiles_col(df) == "structure"


def test_no_smiles_column_error_asks_for_flag():
    df = pd.DataFrame({"a": ["x", "y"], "b": ["1", "0"]})
    with pytest.raises(InvalidInputError, match=r"columns are: a, b; pass --smiles-col"):
        read_table(df)


def test_missing_columns_name_the_available_ones():
    with pytest.raises(
        InvalidInputError,
        match=r"column 'foo' not found .*columns are: compound "
        r"id, Canonical SMILES, .*pass --smiles-col",
    ):
        read_table(TINY, smiles_col="foo")
    with pytest.raises(InvalidInputError, match=r"column 'bar' not found .*pass --target-cols"):
        read_table(TINY, target_cols=["bar"])
    with pytest.raises(InvalidInputError, match=r"no label columns found .*pass --target-cols"):
        read_table(pd.DataFrame({"smiles": ["CCO", "CCN"], "name": ["a", "b"]}))


def test_explicit_columns_are_matched_leniently():
    t = read_table(TINY, smiles_col="canonical_smiles", target_cols=[NITRO])
    assert t.smiles_col == SMILES and t.target_names == [NITRO]
    t = read_table(TINY, target_cols=f"{ACID},{NITRO}")  # a comma-separated string works too
    assert t.target_names == [ACID, NITRO]


# ----------------------------------------------------------------------------- labels


def _frame(**cols: list[str]) -> pd.DataFrame:
    smiles = ["CCO", "CCN", "CCC", "CCCl", "CCBr", "CCI", "CCF", "c1ccccc1"]
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"smiles": smiles[:n], **cols})


def test_minus_one_one_maps_to_zero_one():
    t = read_table(_frame(y=["-1", "1", "-1.0", "1.0"], z=["0", "1", "0.0", "1"]))
    assert t.task_type == "classification"
    np.testing.assert_array_equal(t.targets, [[0, 0], [1, 1], [0, 0], [1, 1]])


def test_missing_tokens_are_nan_and_inf_is_bad():
    t = read_table(
        _frame(
            y=["1", "", "nan", "NaN", "NA", "N/A", "inf", "0"],
            z=["0", "1", "0", "1", "0", "1", "0", "1"],
        )
    )
    assert t.task_type == "classification"
    assert np.isnan(t.targets[1:6, 0]).all() and t.targets[0, 0] == 1
    assert _reasons(t, 6) == ["NaN/inf label 'inf' in column 'y'"]
    assert 6 not in t.rows and len(t.bad_rows) == 1


def test_classification_label_problems_are_listed():
    df = _frame(y=["0", "1", "2", "abc", "0.5", "1", "0", ""], z=["1"] * 7 + [""])
    t = read_table(df, target_cols=["y", "z"], task_type="classification")
    assert _reasons(t, 2) == [
        "out-of-range label 2 in column 'y' (classification labels must be 0/1 or -1/1)"
    ]
    assert _reasons(t, 3) == ["non-numeric label 'abc' in column 'y'"]
    assert _reasons(t, 4)[0].startswith("out-of-range label 0.5 in column 'y'")
    assert _reasons(t, 7) == ["no labels"]
    assert t.rows.tolist() == [0, 1, 5, 6]
    assert t.summary() == (
        "read 8 rows: 4 kept, 4 invalid (1 non-numeric label, 2 out-of-range "
        "labels, 1 row without labels); see bad_rows.csv"
    )


def test_ambiguous_minus_one_with_zero_is_bad_for_classification():
    t = read_table(_frame(y=["-1", "0", "1", "1"]), task_type="classification")
    assert _reasons(t, 0)[0].startswith("ambiguous label -1 in column 'y'")
    assert t.targets[:, 0].tolist() == [0, 1, 1]
    # without --task, a -1/0/1 column is not binary: it is read as regression
    assert read_table(_frame(y=["-1", "0", "1", "1"])).task_type == "regression"


def test_regression_is_inferred_and_explicit_task_type_overrides():
    t = read_table(_frame(y=["0.5", "-1.25", "3", "1e2"]))
    assert t.task_type == "regression"
    np.testing.assert_allclose(t.targets[:, 0], [0.5, -1.25, 3, 100])
    t = read_table(_frame(y=["0", "1", "1", "0"]), task_type="regression")
    assert t.task_type == "regression" and t.targets[:, 0].tolist() == [0, 1, 1, 0]
    t = read_table(_frame(y=["0", "1", "3.5", "0"]), task_type="Classification")
    assert t.task_type == "classification" and t.rows.tolist() == [0, 1, 3]
    with pytest.raises(InvalidInputError, match="--task must be one of"):
        read_table(_frame(y=["0", "1"]), task_type="multiclass")


def test_infer_task_type():
    assert infer_task_type(np.array([0, 1, np.nan, 1])) == "classification"
    assert infer_task_type(np.array([[0, -1], [1, 1], [np.nan, -1]])) == "classification"
    assert infer_task_type(np.array([0, 1, 2])) == "regression"
    assert infer_task_type(np.array([-1, 0, 1])) == "regression"
    with pytest.raises(InvalidInputError):
        infer_task_type(np.array([np.nan, np.nan]))


def test_inferred_task_type_is_noted_and_a_stray_label_is_named():
    """A 0/1 column with one typo is read as regression, and the note names the row to blame."""
    smiles = [f"C{'C' * k}O" for k in range(40)]
    y = ["0", "1"] * 20
    t = read_table(pd.DataFrame({"smiles": smiles, "y": y}))
    assert t.notes == [
        "task type: classification, inferred from the labels (pass --task to override)"
    ]
    y[11] = "3"
    t = read_table(pd.DataFrame({"smiles": smiles, "y": y}))
    assert t.task_type == "regression" and len(t.notes) == 2
    assert "'y' is 0/1 in 39 of 40 labelled rows; row 11 (3) made it regression" in t.notes[1]
    assert "--task classification" in t.notes[1]
    # a real regression column gets only the first note; a given --task gets none
    t = read_table(pd.DataFrame({"smiles": smiles, "y": [str(k / 7) for k in range(40)]}))
    assert len(t.notes) == 1 and t.notes[0].startswith("task type: regression")
    assert read_table(pd.DataFrame({"smiles": smiles, "y": y}), task_type="regression").notes == []


# ----------------------------------------------------------------------------- rows


def test_duplicates_keep_first_and_say_when_labels_differ():
    df = pd.DataFrame({"smiles": ["CCO", "OCC", "C(O)C", "CCN"], "y": ["1", "1", "0", "0"]})
    t = read_table(df)
    assert t.rows.tolist() == [0, 3]
    assert _reasons(t, 1) == ["duplicate of row 0 (line 2, same canonical SMILES)"]
    assert _reasons(t, 2) == ["duplicate of row 0 (line 2, same canonical SMILES; labels differ)"]
    assert read_table(df, duplicates="keep").rows.tolist() == [0, 1, 2, 3]


def test_merge_averages_regression_replicates_per_task():
    df = pd.DataFrame(
        {
            "smiles": ["CCO", "CCN", "OCC", "C(O)C", "c1ccccc1"],
            "a": ["1.0", "5", "2.0", "", "7"],
            "b": ["", "1", "4", "6", "2"],
        }
    )
    t = read_table(df, task_type="regression", duplicates="merge")
    assert t.rows.tolist() == [0, 1, 4] and t.smiles[0] == "CCO"
    # CCO: a from rows 0 and 2 (row 3 has none), b from rows 2 and 3 (row 0 has none)
    np.testing.assert_allclose(t.targets[0], [1.5, 5.0])
    np.testing.assert_allclose(t.targets[1:], [[5, 1], [7, 2]])  # singletons untouched
    assert t.n_invalid == 0 and t.n_merged == 2
    assert _reasons(t, 2) == ["replicate of row 0 (line 2): its labels were merged into that row"]
    assert (
        t.summary()
        == "read 5 rows: 3 kept (2 replicates merged into them), 0 invalid; see bad_rows.csv"
    )
    # merged replicates are not invalid rows: --on-invalid error lets them through
    assert (
        read_table(df, task_type="regression", duplicates="merge", on_invalid="error").n_kept == 3
    )
    with pytest.raises(InvalidInputError, match="2 invalid row"):
        read_table(df, task_type="regression", on_invalid="error")  # first: dropped = invalid


def test_merge_takes_the_classification_majority_and_a_tie_unlabels():
    df = pd.DataFrame(
        {
            "smiles": ["CCO", "OCC", "C(O)C", "CCN", "NCC", "c1ccccc1"],
            "x": ["1", "1", "0", "1", "0", "0"],
            "z": ["0", "", "", "1", "1", "1"],
        }
    )
    t = read_table(df, duplicates="merge")
    assert t.task_type == "classification" and t.rows.tolist() == [0, 3, 5]
    np.testing.assert_array_equal(t.targets[0], [1, 0])  # x: 2 of 3 say 1; z: one label
    np.testing.assert_array_equal(t.targets[1], [np.nan, 1])  # CCN: x ties 1-1, z agrees
    np.testing.assert_array_equal(t.targets[2], [0, 1])
    assert any("1 molecule/task label(s) left unlabelled" in n for n in t.notes)


def test_merge_drops_a_molecule_whose_every_task_ties():
    df = pd.DataFrame({"smiles": ["CCN", "NCC", "CCO"], "y": ["1", "0", "1"]})
    t = read_table(df, task_type="classification", duplicates="merge")
    assert t.smiles == ["CCO"]
    assert _reasons(t, 0) == ["no labels (its replicates tie)"]
    assert (
        t.summary(None)
        == "read 3 rows: 1 kept (1 replicates merged into them), 1 invalid (1 row without labels)"
    )


def test_unknown_duplicates_mode_is_a_user_error():
    with pytest.raises(InvalidInputError, match="--duplicates must be one of first, merge, keep"):
        read_table(pd.DataFrame({"smiles": ["CCO"], "y": ["1"]}), duplicates="mean")


def test_duplicate_of_a_bad_row_is_kept():
    df = pd.DataFrame({"smiles": ["CCO", "OCC"], "y": ["abc", "1"]})
    with pytest.raises(InvalidInputError, match=r"partly numeric: 'y' \(1 of 2 numeric\)"):
        read_table(df)  # one value in two is not numeric: not auto-detected as labels
    t = read_table(df, target_cols=["y"])
    assert t.rows.tolist() == [1] and t.smiles == ["CCO"] and t.input_smiles == ["OCC"]


def test_on_invalid_error_names_rows_and_suggests_skip():
    with pytest.raises(InvalidInputError) as info:
        read_table(TINY, on_invalid="error")
    msg = str(info.value)
    row = _row_of(TINY, SMILES, "C1CC")
    assert msg.startswith("6 invalid row(s) in ")
    assert f"line {row + 2} (row {row}): invalid SMILES (RDKit could not parse it)" in msg
    assert "--on-invalid skip" in msg and "and 1 more" in msg
    assert len(info.value.bad_rows) == 6


def test_all_rows_invalid_is_always_an_error():
    df = pd.DataFrame({"smiles": ["xx", "", "C1CC"], "y": ["1", "0", "1"]})
    with pytest.raises(InvalidInputError, match=r"no valid rows .*all 3 rows are invalid"):
        read_table(df, on_invalid="skip")


def test_blank_lines_and_trailing_newlines(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("smiles,y\nCCO,1\n\nCCN,0\n\n\n")
    t = read_table(path)
    assert t.n_input == 3 and t.rows.tolist() == [0, 2]
    assert t.bad_rows[["row", "line", "reason"]].values.tolist() == [
        [1, 3, "empty SMILES (blank line)"]
    ]


# ----------------------------------------------------------------------------- files


def test_empty_and_header_only_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("smiles,y\n")
    with pytest.raises(InvalidInputError, match="has no data rows"):
        read_table(tmp_path / "empty.csv")
    with pytest.raises(InvalidInputError, match=r"has no data rows \(only a header: smiles, y\)"):
        read_table(tmp_path / "header.csv")


def test_missing_binary_and_headerless_files(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InvalidInputError, match="binary"):
        read_table(tmp_path / "bin.csv")
    (tmp_path / "nohead.csv").write_text("CCO,1\nCCN,0\nc1ccccc1,1\n")
    with pytest.raises(InvalidInputError, match="not a header"):
        read_table(tmp_path / "nohead.csv")


def test_tsv_gzip_and_semicolon_files(tmp_path):
    (tmp_path / "a.tsv").write_text("smiles\ty\nCCO\t1\nCCN\t0\n")
    with gzip.open(tmp_path / "b.csv.gz", "wt") as fh:
        fh.write("smiles,y\nCCO,1\nCCN,0\n")
    (tmp_path / "c.csv").write_text("smiles;y\nCCO;1\nCCN;0\n")
    for name in ("a.tsv", "b.csv.gz", "c.csv"):
        t = read_table(tmp_path / name)
        assert t.smiles == ["CCO", "CCN"] and t.targets[:, 0].tolist() == [1, 0], name


def test_cells_are_not_coerced(tmp_path):
    # 'NA' as a SMILES is sodium's symbol without brackets: invalid, but must not become NaN
    (tmp_path / "t.csv").write_text("smiles,y\nNA,1\nCCO,0\n")
    t = read_table(tmp_path / "t.csv")
    assert t.bad_rows["smiles"].tolist() == ["NA"]


# ----------------------------------------------------------------------------- predict / output


def test_read_smiles_keeps_all_rows_in_order_and_flags_invalid():
    t = read_smiles(TINY)
    recs = _records(TINY)
    bad_smiles = {"C1CC", "C(C)(C)(C)(C)C", "not a smiles", ""}
    expected = [i for i, r in enumerate(recs) if r[SMILES] not in bad_smiles]
    assert t.rows.tolist() == expected  # no dedup, unlabeled rows kept, input order
    assert t.input_smiles == [recs[i][SMILES] for i in expected]
    assert t.targets is None and t.target_names == [] and t.task_type is None
    assert sorted(t.bad_rows["row"]) == sorted(set(range(len(recs))) - set(expected))
    assert t.kept_mask().sum() == len(expected) and len(t.kept_mask()) == len(recs)


def test_write_bad_rows_round_trips(tmp_path, tiny):
    path = tmp_path / "out" / "bad_rows.csv"
    write_bad_rows(tiny, path)
    back = pd.read_csv(path, dtype={"smiles": str}, keep_default_na=False)
    assert list(back.columns) == BAD_ROW_COLUMNS
    pd.testing.assert_frame_equal(
        back, tiny.bad_rows.astype(back.dtypes.to_dict()), check_dtype=False
    )
    assert [p.name for p in path.parent.iterdir()] == ["bad_rows.csv"]  # no temp file left

    clean = read_table(pd.DataFrame({"smiles": ["CCO"], "y": ["1"]}))
    write_bad_rows(clean, path)
    assert path.read_text().strip() == ",".join(BAD_ROW_COLUMNS)
    assert clean.summary() == "read 1 rows: 1 kept, 0 invalid"


def test_large_table_is_fast():
    n = 100_000
    smiles = np.array(["CCO", "CCN", "c1ccccc1", "CC(=O)O", "xx"])[np.arange(n) % 5]
    y = np.where(np.arange(n) % 7 == 0, "", (np.arange(n) % 2).astype(str))
    df = pd.DataFrame({"smiles": smiles, "a": y, "b": y[::-1]})
    start = time.perf_counter()
    t = read_table(df, duplicates="keep")
    assert time.perf_counter() - start < 10
    assert t.n_input == n and len(t.bad_rows) >= n // 5


def test_a_raw_concentration_column_gets_a_log_scale_note():
    smiles = ["C" * k for k in range(1, 21)]
    ic50 = [f"{x:g}" for x in np.geomspace(0.5, 25000, 20)]
    t = read_table(pd.DataFrame({"smiles": smiles, "IC50 (nM)": ic50}), task_type="regression")
    [note] = t.notes
    assert note.startswith("column 'IC50 (nM)' is positive and spans 4.7 orders of magnitude")
    assert "pIC50 = 9 - log10(IC50 in nM)" in note
    p = [f"{9 - np.log10(float(x)):.3f}" for x in ic50]  # the same data as pIC50: no note
    assert read_table(pd.DataFrame({"smiles": smiles, "y": p}), task_type="regression").notes == []
    few = read_table(pd.DataFrame({"smiles": smiles[:5], "y": ic50[:5]}), task_type="regression")
    assert few.notes == []  # too few labels to judge


def test_merge_without_labels_lists_repeats_as_replicates_not_invalid():
    df = pd.DataFrame({"smiles": ["CCO", "OCC", "bad(", "c1ccccc1"]})
    t = read_table(df, require_targets=False, duplicates="merge")
    assert t.smiles == ["CCO", "c1ccccc1"] and t.n_invalid == 1 and t.n_merged == 1
    assert _reasons(t, 1) == ["replicate of row 0 (line 2): the same molecule"]
    assert t.summary(None) == (
        "read 4 rows: 2 kept (1 replicates merged into them), 1 invalid (1 invalid SMILES)"
    )


def test_censored_labels_are_named_as_such():
    df = pd.DataFrame(
        {"smiles": ["CCO", "CCN", "CCC", "CCCl"], "y": ["5.1", ">10", "< 0.5", "abc"]}
    )
    t = read_table(df, target_cols=["y"], task_type="regression")
    reasons = dict(zip(t.bad_rows["row"], t.bad_rows["reason"]))
    assert reasons[1].startswith("non-numeric label '>10' in column 'y' (a censored value")
    assert "censored" in reasons[2] and reasons[3] == "non-numeric label 'abc' in column 'y'"
    assert t.problems_text() == "3 non-numeric labels"


def test_a_mostly_numeric_column_left_out_of_the_labels_is_noted():
    y2 = ["1", "x", "0", "1", "0", "1", "0", "1", "0", "1"]  # 9 of 10 numeric: < 95 %
    df = pd.DataFrame(
        {
            "smiles": ["CCO", "CCN", "CCC", "CCCC", "CCOC", "CCCN", "CCCO", "CC", "CCCCO", "CO"],
            "y1": ["1", "0"] * 5,
            "y2": y2,
            "name": ["aspirin", "3", *["drug"] * 8],  # mostly text: an annotation, not noted
        }
    )
    t = read_table(df)
    assert t.target_names == ["y1"]
    [note] = [n for n in t.notes if n.startswith("not used as labels")]
    assert "'y2' (9 of 10 numeric)" in note and "--target-cols" in note
    assert "'name'" not in note
    explicit = read_table(df, target_cols=["y1", "y2"])
    assert not any(n.startswith("not used as labels") for n in explicit.notes)
    assert explicit.bad_rows["reason"].str.contains("non-numeric label 'x'").any()
