"""Shared fixtures: tiny CSVs, the shared data root, and an isolated cache per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SHARED_DATA = REPO.parent / "shared" / "data"


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
