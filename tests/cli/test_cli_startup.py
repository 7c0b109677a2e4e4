"""`fewmol` starts without the heavy training libraries; commands load them when they run."""

from __future__ import annotations

import subprocess
import sys

HEAVY = "lightning torch_geometric scipy.stats sklearn.metrics"


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout


def test_importing_the_cli_loads_no_training_library() -> None:
    code = f"import sys, fewmol.cli; print(*[m for m in {HEAVY.split()!r} if m in sys.modules])"
    assert _python(code).strip() == ""


def test_help_lists_every_command() -> None:
    code = "import sys; sys.argv = ['fewmol', '--help']; from fewmol.cli import main; main()"
    try:
        text = _python(code)
    except subprocess.CalledProcessError as e:  # click exits 0 after --help; anything else fails
        raise AssertionError(e.stderr) from None
    for command in ("finetune", "predict", "pretrain", "multitask", "dta", "bench", "explain"):
        assert command in text, text


def test_training_prints_no_lightning_banners(tmp_path) -> None:
    """Lightning is imported mid-command now; its info banners must stay quiet all the same."""
    from pathlib import Path

    tiny = Path(__file__).resolve().parents[1] / "data" / "tiny.csv"
    argv = ["finetune", str(tiny), "--target-cols", "Acid (active=1)", "--epochs", "1"]
    argv += ["--num-layers", "1", "--hidden", "16", "--split", "random", "--accelerator", "cpu"]
    argv += ["--out", str(tmp_path / "run"), "-q"]
    code = f"import sys; sys.argv = ['fewmol', *{argv!r}]; from fewmol.cli import main; main()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert "test roc_auc" in text  # the run itself reported
    for banner in ("Tip:", "max_epochs", "GPU available", "LOCAL_RANK"):
        assert banner not in text, text


def test_fewmol_warnings_print_as_one_line_without_the_source() -> None:
    # a warning raised from fewmol's own code (as a dataset loader's dropped-rows note is) reads
    # "warning: ...", while other libraries' warnings keep Python's format
    code = (
        "import warnings, fewmol.cli, fewmol.multitask.datasets as d\n"
        "warnings.warn_explicit('dropped 2 rows', UserWarning, d.__file__, 10)\n"
        "warnings.warn_explicit('elsewhere', UserWarning, '/tmp/other.py', 3)\n"
    )
    err = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stderr
    lines = err.strip().splitlines()
    assert lines[0] == "warning: dropped 2 rows", err
    assert "datasets.py" not in lines[0] and "/tmp/other.py:3: UserWarning: elsewhere" in err
