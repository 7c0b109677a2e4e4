"""benchmarks/precision_parity.py: the float32-vs-bf16 page it builds from paired runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def bench(repo_script, tmp_path: Path, monkeypatch):
    mod = repo_script("benchmarks/precision_parity.py")
    monkeypatch.setattr(mod, "RESULTS", tmp_path)
    monkeypatch.setattr(mod, "TREE", tmp_path / "precision")
    monkeypatch.setattr(mod, "PAGE", tmp_path / "precision.md")
    return mod


def _record(root: Path, protocol: str, ds: str, seed: int, test: float, **extra) -> None:
    path = root / protocol / "none" / ds / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {"test": test, "wall_time_s": 600.0, "git_commit": "abcdef1234567", **extra}
    path.write_text(json.dumps(rec))


def test_protocol_of_a_dataset(bench) -> None:
    assert bench.protocol_of("esol") == "regression"
    assert bench.protocol_of("bace") == "classification"
    with pytest.raises(SystemExit, match="davis"):
        bench.protocol_of("davis")


def test_page_pairs_seeds_and_skips_unpaired_or_low_precision_baselines(bench, tmp_path) -> None:
    for seed, (a, b) in enumerate([(1.40, 1.30), (1.50, 1.60)]):
        _record(tmp_path, "regression", "esol", seed, a)
        _record(bench.TREE, "regression", "esol", seed, b, precision="bf16-mixed")
    _record(tmp_path, "regression", "esol", 2, 1.0)  # no bf16 partner: not in the means
    # a "float32" side that itself ran in bf16 is no baseline
    _record(tmp_path, "classification", "bace", 0, 0.7, precision="bf16-mixed")
    _record(bench.TREE, "classification", "bace", 0, 0.72, precision="bf16-mixed")
    bench.write_page(["esol", "bace"], [0, 1, 2], "python benchmarks/precision_parity.py")
    page = bench.PAGE.read_text()
    row = next(line for line in page.splitlines() if line.startswith("| esol"))
    assert "| 2 | 1.450 ± 0.050 | 1.450 ± 0.150 | +0.000 |" in row
    assert "0: 1.400 / 1.300, 1: 1.500 / 1.600" in row and "| 20 / 20 |" in row
    assert "| bace" not in page
