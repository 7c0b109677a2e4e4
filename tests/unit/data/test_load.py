"""DATA given as a registry name or a CSV path."""

from __future__ import annotations

import pandas as pd
import pytest

from fewmol.data.load import load_dataset
from fewmol.errors import InvalidInputError


def test_named_benchmark_keeps_duplicates_like_the_papers():
    table, info = load_dataset("bbbp", None, None, None)
    assert len(table) == 2039  # 2,050 rows minus 11 RDKit failures, as in the paper
    assert info["name"] == "bbbp" and info["metric"] == "roc_auc"
    assert table.target_names == ["p_np"] and table.task_type == "classification"


def test_user_csv_drops_later_duplicates_and_reports_them(tmp_path):
    p = tmp_path / "dups.csv"
    pd.DataFrame({"smiles": ["CCO", "OCC", "c1ccccc1"], "y": [1, 1, 0]}).to_csv(p, index=False)
    table, _ = load_dataset(str(p), None, None, None)
    assert len(table) == 2
    assert table.bad_rows["reason"].str.startswith("duplicate").sum() == 1


def test_unknown_name_that_is_not_a_file_lists_known_datasets():
    with pytest.raises(InvalidInputError, match="neither a file nor a known dataset.*bbbp"):
        load_dataset("no-such-thing", None, None, None)


def test_non_property_dataset_is_refused_for_finetuning(shared_data):
    with pytest.raises(InvalidInputError, match="dta dataset"):
        load_dataset("davis", None, None, None, data_dir=shared_data)


def test_user_csv_can_merge_replicates_and_records_it(tmp_path):
    p = tmp_path / "reps.csv"
    pd.DataFrame({"smiles": ["CCO", "OCC", "c1ccccc1"], "y": [1.0, 3.0, 0.5]}).to_csv(
        p, index=False
    )
    table, info = load_dataset(str(p), None, None, "regression", duplicates="merge")
    assert table.targets[:, 0].tolist() == [2.0, 0.5]
    assert info["duplicates"] == {"mode": "merge", "merged_rows": 1}
    named, _ = load_dataset("bbbp", None, None, None, duplicates="first")
    assert len(named) < 2039  # a named benchmark can drop its repeats too, when asked


def test_threshold_makes_classes_after_replicates_are_averaged(tmp_path):
    p = tmp_path / "pic50.csv"
    pd.DataFrame(
        {
            "smiles": ["CCO", "OCC", "c1ccccc1", "CCN", "CCC"],
            "pIC50": ["5.0", "7.4", "6.5", "", "4.2"],
        }
    ).to_csv(p, index=False)
    table, info = load_dataset(str(p), None, None, None, duplicates="merge", threshold=6.0)
    assert table.task_type == "classification" and info["threshold"] == 6.0
    # CCO: mean(5.0, 7.4) = 6.2 >= 6 -> 1; benzene 6.5 -> 1; CCN has no label; CCC 4.2 -> 0
    assert table.smiles == ["CCO", "c1ccccc1", "CCC"]
    assert table.targets[:, 0].tolist() == [1.0, 1.0, 0.0]
    assert table.notes[0] == "--threshold 6: 2 of 3 labels are >= 6 (class 1)"
    with pytest.raises(InvalidInputError, match="not with --task regression"):
        load_dataset(str(p), None, None, "regression", threshold=6.0)
    with pytest.raises(InvalidInputError, match="0/1 already"):
        load_dataset("bbbp", None, None, None, threshold=0.5)


def test_threshold_names_tasks_left_with_one_class(tmp_path):
    p = tmp_path / "two.csv"
    rows = {"smiles": ["CCO", "CCN", "CCC", "CCCl"], "a": [7, 8, 5, 4], "b": [1, 2, 3, 4.5]}
    pd.DataFrame(rows).to_csv(p, index=False)
    table, _ = load_dataset(str(p), None, None, None, threshold=6)
    assert table.targets.tolist() == [[1, 0], [1, 0], [0, 0], [0, 0]]
    assert table.notes[0].endswith("one class only in b")
