"""`fewmol import-weights`: convert pretrain-gnns GIN weights, then fine-tune from them."""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fewmol.cli import app

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.csv"
runner = CliRunner()


def _weights(path: Path, layers: int = 2, dim: int = 16) -> Path:
    """A pretrain-gnns-layout GIN state dict of plain tensors (like chem/model_gin/*.pth)."""
    g = torch.Generator().manual_seed(0)
    sd = collections.OrderedDict()
    sd["x_embedding1.weight"] = torch.randn(120, dim, generator=g)
    sd["x_embedding2.weight"] = torch.randn(3, dim, generator=g)
    for i in range(layers):
        for name, shape in [("mlp.0.weight", (2 * dim, dim)), ("mlp.0.bias", (2 * dim,)),
                            ("mlp.2.weight", (dim, 2 * dim)), ("mlp.2.bias", (dim,)),
                            ("edge_embedding1.weight", (6, dim)),
                            ("edge_embedding2.weight", (3, dim))]:  # fmt: skip
            sd[f"gnns.{i}.{name}"] = torch.randn(*shape, generator=g) * 0.2
    for i in range(layers):
        sd[f"batch_norms.{i}.weight"] = torch.ones(dim)
        sd[f"batch_norms.{i}.bias"] = torch.zeros(dim)
        sd[f"batch_norms.{i}.running_mean"] = torch.zeros(dim)
        sd[f"batch_norms.{i}.running_var"] = torch.ones(dim)
        sd[f"batch_norms.{i}.num_batches_tracked"] = torch.tensor(0)
    torch.save(sd, path, _use_new_zipfile_serialization=False)  # the published files' format
    return path


def test_import_then_finetune(tmp_path):
    weights = _weights(tmp_path / "contextpred.pth")
    enc = tmp_path / "enc"
    result = runner.invoke(app, ["import-weights", str(weights), "--out", str(enc)])
    assert result.exit_code == 0, result.output
    assert "imported a 2-layer, 16-wide GIN" in result.stdout
    cfg = json.loads((enc / "config.json").read_text())
    assert cfg["kind"] == "encoder" and cfg["imported_from"]["name"] == "contextpred.pth"
    ft = tmp_path / "ft"
    args = ["finetune", str(TINY), "--init", str(enc), "--epochs", "1", "--accelerator", "cpu"]
    result = runner.invoke(app, [*args, "-q", "--out", str(ft)])
    assert result.exit_code == 0, result.output
    assert json.loads((ft / "config.json").read_text())["init_from"] == str(enc)
    # a second import into the same dir needs --force
    result = runner.invoke(app, ["import-weights", str(weights), "--out", str(enc)])
    assert result.exit_code == 2 and "--force" in result.stderr
    result = runner.invoke(app, ["import-weights", str(weights), "--out", str(enc), "--force"])
    assert result.exit_code == 0, result.output


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_objects_and_bad_files_exit_2(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"model": {}, "x": _Payload(marker)}, tmp_path / "evil.pth")
    result = runner.invoke(app, ["import-weights", str(tmp_path / "evil.pth"), "--out",
                                 str(tmp_path / "a")])  # fmt: skip
    assert result.exit_code == 2 and "pickled Python objects" in result.stderr
    assert "Traceback" not in result.output and not marker.exists()
    result = runner.invoke(app, ["import-weights", str(tmp_path / "nope.pth"), "--out",
                                 str(tmp_path / "b")])  # fmt: skip
    assert result.exit_code == 2 and "not found" in result.stderr
