"""fewmol.io.modeldir.git_dirty: code changes count, benchmark outputs do not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fewmol.io.modeldir import git_dirty

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_results_written_by_other_runs_do_not_make_the_checkout_dirty(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "benchmarks" / "results").mkdir(parents=True)
    (repo / "src" / "code.py").write_text("x = 1\n")
    (repo / "benchmarks" / "results" / "seed0.json").write_text("{}\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    where = repo / "src"
    assert git_dirty(where) is False
    (repo / "benchmarks" / "results" / "seed0.json").write_text('{"roc_auc": 0.7}\n')
    (repo / "benchmarks" / "results" / "seed1.json").write_text("{}\n")  # untracked
    assert git_dirty(where) is False
    (repo / "src" / "code.py").write_text("x = 2\n")
    assert git_dirty(where) is True
    assert git_dirty(tmp_path) is None  # not a checkout
