"""Shared fixtures: one torch thread, tiny CSVs, the shared data root, an isolated cache."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread in every test (runs that are compared need identical arithmetic)."""
    # also: subprocess runs use OMP_NUM_THREADS=1, and the suite stays fast beside a long job

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point $FEWMOL_CACHE at a temporary dir so tests never touch the user's cache."""
    old = os.environ.get("FEWMOL_CACHE")
    os.environ["FEWMOL_CACHE"] = str(tmp_path_factory.mktemp("fewmol-cache"))
    yield
    if old is None:
        os.environ.pop("FEWMOL_CACHE", None)
    else:
        os.environ["FEWMOL_CACHE"] = old


@pytest.fixture
def tiny_csv() -> Path:
    """76-row classification CSV with odd column names, salts, stereo and bad rows."""
    return TESTS / "data" / "tiny.csv"


@pytest.fixture
def tiny_regression_csv() -> Path:
    """56-row regression CSV (Crippen logP) with invalid SMILES and a non-numeric label."""
    return TESTS / "data" / "tiny_regression.csv"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (skip the test where it is absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not available")
    return SHARED_DATA


#: `fewmol pretrain` settings for a run of seconds (tests add --data, --method, --epochs, --out)
TINY_PRETRAIN = [
    "--max-molecules", "24", "--num-confs", "2", "--workers", "0", "--batch-size", "8",
    "--num-layers", "2", "--hidden", "32", "--schnet-hidden", "16", "--schnet-interactions",
    "2", "--accelerator", "cpu", "-q",
]  # fmt: skip


@pytest.fixture(scope="session")
def run_pretrain() -> Callable[..., Any]:
    """Invoke `fewmol pretrain` with tiny model and data settings plus the given arguments."""
    from fewmol.cli import app

    runner = CliRunner()

    def run(*args: str | Path) -> Any:  # typer's CliRunner result
        return runner.invoke(app, ["pretrain", *TINY_PRETRAIN, *[str(a) for a in args]])

    return run


@pytest.fixture(scope="session")
def repo_script() -> Callable[[str], ModuleType]:
    """Import a script of the repo that is not in the package (``scripts/``, ``benchmarks/``)."""

    def load(relpath: str) -> ModuleType:
        path = REPO / relpath
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
