"""benchmarks/run_pretrain_ablation.sh: which rows it asks run_pretrain_rows.sh for, in order."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from fewmol.bench.ablation import ABLATION_ROWS

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "run_pretrain_ablation.sh"
# a stand-in for run_pretrain_rows.sh: one line per call with the settings it was given
STUB = 'echo "${NAME:-=}|$METHODS|$DATASETS|${EPOCHS_FT:-=}|$PRETRAIN_ARGS|$BATCH" >> "$LOG"\n'


def _run(tmp: Path, **extra: str) -> subprocess.CompletedProcess:
    stub = tmp / "rows.sh"
    stub.write_text(STUB)
    env = dict(os.environ, ROWS_SCRIPT=str(stub), LOG=str(tmp / "log"), **extra)
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)


def test_small_sets_for_every_row_first_then_the_big_ones_at_fewer_epochs(tmp_path: Path) -> None:
    assert _run(tmp_path).returncode == 0
    calls = [c.split("|") for c in (tmp_path / "log").read_text().splitlines()]
    small, big = "bbbp,sider,clintox,bace", "tox21,toxcast"
    assert [(c[0], c[2], c[3]) for c in calls] == [
        ("=", small, "="),
        ("graphmvp-infonce", small, "="),
        ("graphmvp-no-vrr", small, "="),
        ("=", big, "30"),
        ("graphmvp-infonce", big, "30"),
        ("graphmvp-no-vrr", big, "30"),
    ]
    # one recipe for all: GraphMVP, batch 32, one conformer; only the loss flags differ
    assert {(c[1], c[5]) for c in calls} == {("graphmvp", "32")}
    args = {c[0]: c[4].split() for c in calls}
    assert args["="] == ["--num-confs", "1"]
    assert args["graphmvp-infonce"] == ["--num-confs", "1", "--contrastive", "infonce"]
    assert args["graphmvp-no-vrr"] == ["--num-confs", "1", "--generative", "none"]


def test_every_row_it_can_run_has_a_place_in_the_ablation_table(tmp_path: Path) -> None:
    for row in ABLATION_ROWS:
        flags = {"ebm_nce": [], "infonce": ["--contrastive", "infonce"]}[row.contrastive]
        flags += {"vrr": [], "none": ["--generative", "none"], "rr": ["--generative", "rr"]}[
            row.generative
        ]
        (tmp_path / "log").unlink(missing_ok=True)
        assert _run(tmp_path, VARIANTS=row.method, BIG="").returncode == 0
        (call,) = (tmp_path / "log").read_text().splitlines()
        assert call.split("|")[4].split() == ["--num-confs", "1", *flags]


def test_an_unknown_row_stops_before_any_work(tmp_path: Path) -> None:
    res = _run(tmp_path, VARIANTS="graphmvp,graphmvp-typo")
    assert res.returncode == 2 and "unknown ablation row 'graphmvp-typo'" in res.stderr
    assert not (tmp_path / "log").exists()
