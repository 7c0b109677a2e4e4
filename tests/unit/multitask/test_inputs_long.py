"""fewmol.multitask.inputs: long-format CSVs (one row per measurement) as multi-task labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fewmol.data.tables import long_to_wide
from fewmol.errors import InvalidInputError
from fewmol.multitask.inputs import load_input

WIDE = pd.DataFrame(
    {
        "smiles": ["CCO", "c1ccccc1", "CCN", "CC(=O)O"],
        "t1": ["1", "0", "", "1"],
        "t2": ["0", "", "1", "1"],
        "t3": ["", "1", "0", "0"],
    }
)


def _long(wide: pd.DataFrame) -> pd.DataFrame:
    df = wide.melt(id_vars="smiles", var_name="assay", value_name="active")
    df = df[df["active"] != ""]
    return df.sample(frac=1.0, random_state=0).reset_index(drop=True)  # any row order


def _by_smiles(inp) -> dict[str, list[float]]:
    ds = inp.dataset
    order = [ds.task_names.index(t) for t in ("t1", "t2", "t3")]
    return {s: ds.y[i, order].tolist() for i, s in enumerate(ds.smiles)}


def test_long_table_gives_the_same_labels_as_the_wide_one(tmp_path: Path) -> None:
    (tmp_path / "wide.csv").write_text(WIDE.to_csv(index=False))
    _long(WIDE).to_csv(tmp_path / "long.csv", index=False)
    wide = load_input(str(tmp_path / "wide.csv"))
    long = load_input(str(tmp_path / "long.csv"), long_format=("assay", "active"))
    a, b = _by_smiles(wide), _by_smiles(long)
    assert a.keys() == b.keys()
    for s in a:
        np.testing.assert_array_equal(a[s], b[s])
    assert long.info["long_format"] == {"task_col": "assay", "label_col": "active", "tasks": 3}
    assert long.info["duplicates"]["merged_rows"] == 9 - 4  # 9 measurements, 4 molecules


def test_replicates_vote_and_bad_rows_keep_their_lines(tmp_path: Path) -> None:
    rows = [
        ("CCO", "t1", "1"),
        ("OCC", "t1", "1"),  # same molecule, written differently
        ("CCO", "t1", "0"),  # outvoted
        ("CCO", "t2", "1"),
        ("CCN", "t1", "1"),
        ("not a smiles", "t2", "0"),
        ("CCN", "t1", "0"),  # a 1-1 tie: CCN's t1 is unknown, and it has no other label
    ]
    p = tmp_path / "long.csv"
    pd.DataFrame(rows, columns=["SMILES", "target", "label"]).to_csv(p, index=False)
    inp = load_input(str(p), long_format=("target", "label"))
    assert inp.dataset.smiles == ["CCO"] and inp.dataset.y.tolist() == [[1.0, 1.0]]
    bad = inp.table.bad_rows.set_index("row")["reason"]
    assert (
        bad[5].startswith("invalid SMILES") and inp.table.bad_rows.set_index("row")["line"][5] == 7
    )
    assert bad[4] == "no labels (its replicates tie)"
    assert bad[1].startswith("replicate of row 0")


def test_long_format_user_errors(tmp_path: Path) -> None:
    p = tmp_path / "long.csv"
    _long(WIDE).to_csv(p, index=False)
    with pytest.raises(InvalidInputError, match="column 'task' not found"):
        load_input(str(p), long_format=("task", "active"))
    with pytest.raises(InvalidInputError, match="always merged"):
        load_input(str(p), duplicates="first", long_format=("assay", "active"))
    with pytest.raises(InvalidInputError, match="three different columns"):
        load_input(str(p), long_format=("assay", "assay"))
    with pytest.raises(InvalidInputError, match="--target-cols"):
        load_input(str(p), target_cols=["t1"], long_format=("assay", "active"))
    with pytest.raises(InvalidInputError, match="non-binary"):
        df = _long(WIDE)
        df.loc[0, "active"] = "6.5"
        df.to_csv(p, index=False)
        load_input(str(p), long_format=("assay", "active"))


def test_too_many_cells_is_refused_with_advice(monkeypatch, tmp_path: Path) -> None:
    import fewmol.data.tables as tables

    monkeypatch.setattr(tables, "MAX_LONG_CELLS", 10)
    p = tmp_path / "long.csv"
    _long(WIDE).to_csv(p, index=False)
    with pytest.raises(InvalidInputError, match="pivot it to one row per molecule"):
        long_to_wide(p, "assay", "active")


def test_other_columns_ride_along_and_task_names_must_not_clash(tmp_path: Path) -> None:
    df = _long(WIDE)
    df["batch_id"] = [f"b{i}" for i in range(len(df))]
    p = tmp_path / "long.csv"
    df.to_csv(p, index=False)
    wide, smiles_col, tasks, _ = long_to_wide(p, "assay", "active")
    assert list(wide.columns) == ["smiles", "batch_id", *tasks]
    assert wide["batch_id"].tolist() == df["batch_id"].tolist()  # row i is input row i
    inp = load_input(str(p), long_format=("assay", "active"))
    first = {s: b for s, b in zip(df["smiles"][::-1], df["batch_id"][::-1])}  # first wins
    assert inp.table.raw["batch_id"].to_numpy()[inp.rows].tolist() == [
        first[s] for s in inp.table.input_smiles
    ]
    df.loc[0, "assay"] = "batch_id"
    df.to_csv(p, index=False)
    with pytest.raises(InvalidInputError, match="named like another column.*batch_id"):
        long_to_wide(p, "assay", "active")


def test_a_threshold_recovers_the_classes_of_numeric_long_labels(tmp_path: Path) -> None:
    df = _long(WIDE)
    rng = np.random.default_rng(1)
    act = df["active"].astype(int).to_numpy()
    df["pchembl"] = np.where(act == 1, rng.uniform(6.5, 8, len(df)), rng.uniform(4, 5.5, len(df)))
    p = tmp_path / "long.csv"
    df.drop(columns="active").to_csv(p, index=False)
    (tmp_path / "wide.csv").write_text(WIDE.to_csv(index=False))
    got = load_input(str(p), long_format=("assay", "pchembl"), threshold=6.0)
    want = load_input(str(tmp_path / "wide.csv"))
    a, b = _by_smiles(want), _by_smiles(got)
    for s in a:
        np.testing.assert_array_equal(a[s], b[s])
    assert got.info["threshold"] == 6.0
    with pytest.raises(InvalidInputError, match="non-binary"):
        load_input(str(p), long_format=("assay", "pchembl"))  # numbers without a threshold
