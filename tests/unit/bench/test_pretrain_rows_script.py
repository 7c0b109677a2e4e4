"""benchmarks/run_pretrain_rows.sh with a stand-in `fewmol`: who pre-trains, who fine-tunes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "run_pretrain_rows.sh"

pytestmark = pytest.mark.skipif(shutil.which("flock") is None, reason="needs util-linux flock")

# pre-training takes 2 s and leaves a complete encoder config (a finished one is reused at once,
# as `fewmol pretrain --resume` does); bench logs who fine-tuned what
STUB = """#!/usr/bin/env bash
if [ "$1" = pretrain ]; then
    prev=""; for a in "$@"; do
        [ "$prev" = --out ] && out="$a"; [ "$prev" = --method ] && m="$a"; prev="$a"
    done
    [ -f "$out/config.json" ] && exit 0
    echo "pretrain $m" >> "$LOG"; sleep 2
    mkdir -p "$out"; echo '{"complete": true}' > "$out/config.json"
else
    prev=""; for a in "$@"; do [ "$prev" = --methods ] && m="$a"; prev="$a"; done
    echo "finetune $m $WORKER" >> "$LOG"
    [ "$2" = classification ] || echo "protocol $2" >> "$LOG"
fi
"""


def _env(tmp: Path, worker: str, **extra: str) -> dict[str, str]:
    stub = tmp / "fewmol"
    if not stub.exists():
        stub.write_text(STUB)
        stub.chmod(0o755)
    env = dict(os.environ, FEWMOL=str(stub), LOG=str(tmp / "log"), WORKER=worker)
    env.update(WORK=str(tmp / "work"), RESULTS=str(tmp / "results"), PYTHON=sys.executable)
    env.update({"DATASETS": "bbbp", "SEEDS": "0", "METHODS": "aa,bb", **extra})
    return env


def _run_two(tmp: Path, **extra: str) -> list[str]:
    first = subprocess.Popen(["bash", str(SCRIPT)], env=_env(tmp, "w1", **extra))
    # the second worker starts while the first holds aa's pre-training lock
    for _ in range(100):
        if (tmp / "log").exists():
            break
        subprocess.run(["sleep", "0.05"])
    second = subprocess.run(["bash", str(SCRIPT)], env=_env(tmp, "w2", **extra), timeout=60)
    assert first.wait(timeout=60) == 0 and second.returncode == 0
    return (tmp / "log").read_text().splitlines()


def test_two_workers_pretrain_each_row_once_and_both_fine_tune_it(tmp_path: Path) -> None:
    log = _run_two(tmp_path, JOIN_WAIT_S="30")
    assert sorted(x for x in log if x.startswith("pretrain")) == ["pretrain aa", "pretrain bb"]
    tuned = sorted(x for x in log if x.startswith("finetune"))
    # each row's cells are shared: both workers join its fine-tuning (cells are locked there)
    assert tuned == ["finetune aa w1", "finetune aa w2", "finetune bb w1", "finetune bb w2"]


def test_no_join_wait_leaves_a_locked_row_to_its_pretrainer(tmp_path: Path) -> None:
    log = _run_two(tmp_path, JOIN_WAIT_S="0", METHODS="aa")
    assert log.count("pretrain aa") == 1
    assert [x for x in log if x.startswith("finetune")] == ["finetune aa w1"]


def test_a_row_with_every_record_is_not_pretrained_again(tmp_path: Path) -> None:
    cell = tmp_path / "results" / "classification" / "aa" / "bbbp" / "seed0.json"
    cell.parent.mkdir(parents=True)
    cell.write_text("{}")
    out = subprocess.run(
        ["bash", str(SCRIPT)], env=_env(tmp_path, "w1"), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "aa: every cell" in out.stdout
    assert (tmp_path / "log").read_text().splitlines() == ["pretrain bb", "finetune bb w1"]


def test_regression_protocol_fine_tunes_the_regression_table(tmp_path: Path) -> None:
    done = tmp_path / "results" / "regression" / "aa" / "esol" / "seed0.json"
    done.parent.mkdir(parents=True)
    done.write_text("{}")
    env = _env(tmp_path, "w1", PROTOCOL="regression", DATASETS="esol")
    out = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "aa: every cell" in out.stdout  # its regression record counts, not classification's
    log = (tmp_path / "log").read_text().splitlines()
    assert log == ["pretrain bb", "finetune bb w1", "protocol regression"]
    bad = subprocess.run(["bash", str(SCRIPT)], env=_env(tmp_path, "w1", PROTOCOL="qm9"),
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "PROTOCOL must be" in bad.stderr


def test_dta_protocol_fine_tunes_davis_at_ten_epochs(tmp_path: Path) -> None:
    stub = tmp_path / "fewmol"
    env = _env(tmp_path, "w1", PROTOCOL="dta", METHODS="aa")
    env.pop("DATASETS")
    out = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "log").read_text().splitlines() == [
        "pretrain aa",
        "finetune aa w1",
        "protocol dta",
    ]
    # the stub saw the dataset and epochs the script chose
    stub.write_text('#!/usr/bin/env bash\necho "$@" >> "$LOG"\n')
    (tmp_path / "log").unlink()
    subprocess.run(["bash", str(SCRIPT)], env=env, check=True, capture_output=True)
    bench = [x for x in (tmp_path / "log").read_text().splitlines() if x.startswith("bench")]
    assert bench and "--datasets davis" in bench[0] and "--epochs 10" in bench[0]


def test_from_continues_a_copy_of_a_finished_run_in_the_rows_own_dir(tmp_path: Path) -> None:
    src = tmp_path / "shipped"
    src.mkdir()
    (src / "config.json").write_text('{"complete": true}')
    (src / "pretrain_log.csv").write_text("epoch\n1\n")
    env = _env(tmp_path, "w1", METHODS="aa", NAME="aa-e20", EPOCHS_PRE="20", FROM=str(src))
    out = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    row = tmp_path / "work" / "pretrain" / "rows-aa-e20-50000x20"
    assert (row / "pretrain_log.csv").read_text() == "epoch\n1\n"  # the copy, then --resume
    assert (src / "config.json").read_text() == '{"complete": true}'  # the source is untouched
    left = sorted(p.name for p in row.parent.iterdir())
    assert left == ["rows-aa-e20-50000x20", "rows-aa-e20-50000x20.lock"]  # no temporary copy
    # a later pass resumes the row's own dir: what it trained is not replaced by a new copy
    (row / "pretrain_log.csv").write_text("epoch\n1\n2\n")
    subprocess.run(["bash", str(SCRIPT)], env=env, check=True, capture_output=True)
    assert (row / "pretrain_log.csv").read_text() == "epoch\n1\n2\n"
