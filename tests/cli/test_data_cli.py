"""`fewmol data list` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fewmol.cli.data import app
from fewmol.data import registry

pytestmark = pytest.mark.cli

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEWMOL_DATA", raising=False)
    monkeypatch.setenv("FEWMOL_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("columns", ["80", "160"])
def test_list_shows_every_dataset(columns: str) -> None:
    result = runner.invoke(app, ["list"], env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    for name in registry.names():
        assert name in result.output
    assert "bundled" in result.output
    assert "download" in result.output  # hiv, muv, ... are not bundled and not on disk


def test_list_json_is_machine_readable() -> None:
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == registry.names()
    by_name = {r["name"]: r for r in rows}
    assert by_name["bbbp"]["location"] == "bundled"
    assert by_name["hiv"]["location"] == "download" and by_name["hiv"]["path"] is None
    assert by_name["davis"]["location"] == "missing"
    assert by_name["toxcast"]["n_tasks"] == 617 and by_name["toxcast"]["target_cols"] is None
    assert by_name["esol"]["metric"] == "rmse"


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
def test_list_with_data_dir_resolves_to_paths() -> None:
    result = runner.invoke(app, ["list", "--json", "--data-dir", str(SHARED)])
    assert result.exit_code == 0, result.output
    by_name = {r["name"]: r for r in json.loads(result.output)}
    assert by_name["hiv"]["location"] == "data_dir"
    assert by_name["hiv"]["path"] == str(SHARED / "moleculenet" / "HIV.csv.gz")
    assert all(r["location"] in {"bundled", "data_dir"} for r in by_name.values())
    table = runner.invoke(app, ["list", "--data-dir", str(SHARED)], env={"COLUMNS": "160"})
    assert table.exit_code == 0
    assert "moleculenet/HIV.csv.gz" in table.output


def test_list_honours_fewmol_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d" / "moleculenet").mkdir(parents=True)
    (tmp_path / "d" / "moleculenet" / "HIV.csv").write_text("smiles,activity,HIV_active\n")
    monkeypatch.setenv("FEWMOL_DATA", str(tmp_path / "d"))
    rows = json.loads(runner.invoke(app, ["list", "--json"]).output)
    assert {r["name"]: r["location"] for r in rows}["hiv"] == "$FEWMOL_DATA"


def test_list_rejects_missing_data_dir(tmp_path: Path) -> None:
    result = runner.invoke(app, ["list", "--data-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2
