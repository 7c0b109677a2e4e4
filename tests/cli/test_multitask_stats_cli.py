"""`fewmol data multitask-stats`: the multi-task statistics table (REFERENCE B style)."""

from __future__ import annotations

from typer.testing import CliRunner

from fewmol.cli import app


def test_stats_table_for_chembl_and_a_threshold_that_leaves_nothing(shared_data):
    res = CliRunner().invoke(
        app,
        [
            "data",
            "multitask-stats",
            "--datasets",
            "chembl",
            "--thresholds",
            "10,50",
            "--markdown",
            "--data-dir",
            str(shared_data),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "| chembl-10 | 336 | 146 |" in res.output
    assert "| chembl-50 | 0 | 0 |" in res.output
    assert "largest threshold that leaves data" in res.output


def test_bad_threshold_is_a_usage_error(shared_data):
    res = CliRunner().invoke(
        app, ["data", "multitask-stats", "--datasets", "chembl", "--thresholds", "ten"]
    )
    assert res.exit_code == 2 and "--thresholds" in res.output
