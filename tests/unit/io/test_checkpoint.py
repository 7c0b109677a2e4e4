"""fewmol.io.checkpoint and fewmol.io.modeldir: safe model files, never unpickled."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from fewmol.errors import FewmolError, ModelFileError
from fewmol.io import checkpoint, modeldir
from fewmol.io.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    flatten_optimizer,
    load_state_into,
    load_tensors,
    read_json,
    save_tensors,
    unflatten_optimizer,
    write_json,
    write_text,
)
from fewmol.io.modeldir import read_model_config, resolve_init


def _tensors() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "w": torch.randn(3, 4),
        "b": torch.arange(5, dtype=torch.int64),
        "scalar": torch.tensor(2.5),
        "half": torch.randn(2).half(),
        "flag": torch.tensor([True, False]),
    }


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything tries to unpickle."""

    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling was attempted")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)


def test_save_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "model.safetensors"
    t = _tensors()
    save_tensors(path, t, {"note": "hello"})
    back = load_tensors(path)
    assert back.keys() == t.keys()
    for k in t:
        assert back[k].dtype == t[k].dtype and back[k].shape == t[k].shape
        assert torch.equal(back[k], t[k]), k
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta == {"format": FORMAT, "format_version": str(FORMAT_VERSION), "note": "hello"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.safetensors"]


def test_save_makes_tensors_contiguous_and_detached(tmp_path: Path) -> None:
    w = torch.randn(3, 4, requires_grad=True)
    save_tensors(tmp_path / "m.safetensors", {"wt": w.t()})
    back = load_tensors(tmp_path / "m.safetensors")
    assert torch.equal(back["wt"], w.detach().t())
    assert not back["wt"].requires_grad


def _truncate(data: bytes) -> bytes:
    return data[: len(data) - 7]


def _truncate_header(data: bytes) -> bytes:
    return data[:20]


def _empty(data: bytes) -> bytes:
    return b""


def _zeros(data: bytes) -> bytes:
    return b"\x00" * len(data)


def _text(data: bytes) -> bytes:
    return b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"


@pytest.mark.parametrize("corrupt", [_truncate, _truncate_header, _empty, _zeros, _text])
def test_corrupted_file_raises_model_file_error(tmp_path: Path, corrupt, no_unpickling) -> None:
    path = tmp_path / "model.safetensors"
    save_tensors(path, _tensors())
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(ModelFileError) as err:
        load_tensors(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "not a readable safetensors file" in msg
    assert "corrupted" in msg


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        load_tensors(tmp_path / "nope.safetensors")


def test_foreign_safetensors_without_header_raises(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelFileError, match=f"not written by fewmol.*{FORMAT}"):
        load_tensors(path)
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="not written by fewmol"):
        load_tensors(path)


def test_pickle_file_renamed_is_rejected_without_unpickling(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "model.safetensors"
    torch.save({"w": torch.ones(3)}, path)  # a real torch pickle (zip) file
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("unpickling was attempted")

    for mod, name in [(pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (torch, "load")]:
        monkeypatch.setattr(mod, name, forbidden)
    with pytest.raises(ModelFileError) as err:
        load_tensors(path)
    assert calls == []
    assert "pickle" in str(err.value) and "never loaded" in str(err.value)
    # a plain (protocol 2) pickle too
    path.write_bytes(b"\x80\x02" + b"}q\x00." + b"\x00" * 16)
    with pytest.raises(ModelFileError):
        load_tensors(path)
    assert calls == []


def test_newer_format_version_raises(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_tensors(path, {"w": torch.zeros(1)}, {"format_version": str(FORMAT_VERSION + 1)})
    with pytest.raises(ModelFileError, match=f"format version {FORMAT_VERSION + 1}.*upgrade"):
        load_tensors(path)
    save_tensors(path, {"w": torch.zeros(1)}, {"format_version": str(FORMAT_VERSION)})
    assert torch.equal(load_tensors(path)["w"], torch.zeros(1))


def test_tampered_format_version_raises_model_file_error(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_tensors(path, {"w": torch.zeros(1)}, {"format_version": "one"})
    with pytest.raises(ModelFileError):
        load_tensors(path)


def test_write_json_nan_as_null_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "d" / "metrics.json"
    obj = {
        "auc": float("nan"),
        "inf": float("inf"),
        "vals": [1.0, float("-inf"), (2, float("nan"))],
        "nested": {"x": float("nan"), "ok": 0.5},
        "tensor": torch.tensor([1.5, 2.0]),
        "path": Path("/a/b"),
    }
    write_json(path, obj)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {
        "auc": None,
        "inf": None,
        "vals": [1.0, None, [2, None]],
        "nested": {"x": None, "ok": 0.5},
        "tensor": [1.5, 2.0],
        "path": "/a/b",
    }
    assert read_json(path) == json.loads(text)
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_write_json_failure_keeps_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "config.json"
    write_json(path, {"v": 1})
    before = path.read_text()

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_json(path, {"v": 2})
    with pytest.raises(OSError, match="disk full"):
        write_text(tmp_path / "log.csv", "a,b\n")
    with pytest.raises(OSError, match="disk full"):
        save_tensors(tmp_path / "m.safetensors", {"w": torch.zeros(1)})
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_write_json_unserialisable_raises_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not JSON serialisable"):
        write_json(tmp_path / "x.json", {"o": object()})
    assert list(tmp_path.iterdir()) == []


def test_read_json_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="checkpoint not found"):
        read_json(tmp_path / "missing.json", "checkpoint")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_json(tmp_path / "bin.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ModelFileError, match="JSON object"):
        read_json(tmp_path / "list.json")


def _adam_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, seed: int, n: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        opt.zero_grad()
        x = torch.randn(8, 4, generator=g)
        loss = (model(x) ** 2).mean()
        loss.backward()
        opt.step()


def test_optimizer_flatten_round_trip_through_files(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-4)
    _adam_steps(model, opt, seed=1, n=3)

    tensors, rest = flatten_optimizer(opt.state_dict())
    assert tensors and all(k.startswith("optim.") for k in tensors)
    save_tensors(tmp_path / "last.safetensors", {**tensors, "model.x": torch.zeros(1)})
    write_json(tmp_path / "last.json", {"optimizer": rest})
    loaded = load_tensors(tmp_path / "last.safetensors")
    state = unflatten_optimizer(loaded, read_json(tmp_path / "last.json")["optimizer"])

    ref = opt.state_dict()
    assert state["state"].keys() == ref["state"].keys()
    for pid, st in ref["state"].items():
        assert state["state"][pid].keys() == st.keys()
        for k, v in st.items():
            got = state["state"][pid][k]
            if torch.is_tensor(v):
                assert got.dtype == v.dtype and torch.equal(got, v), (pid, k)
            else:
                assert got == v, (pid, k)
    assert state["param_groups"][0]["lr"] == 1e-2
    assert tuple(state["param_groups"][0]["betas"]) == (0.8, 0.99)

    # a fresh optimizer restored from it continues exactly like the original
    clone = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    clone.load_state_dict(model.state_dict())
    opt2 = torch.optim.Adam(clone.parameters(), lr=0.5)
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == 1e-2
    _adam_steps(model, opt, seed=2, n=2)
    _adam_steps(clone, opt2, seed=2, n=2)
    for a, b in zip(model.parameters(), clone.parameters()):
        assert torch.equal(a, b)


def test_optimizer_flatten_keeps_non_tensor_state() -> None:
    st = {
        "state": {0: {"step": 3, "buf": torch.ones(2)}, 1: {"momentum_buffer": None}},
        "param_groups": [{"lr": 0.1, "params": [0, 1]}],
    }
    tensors, rest = flatten_optimizer(st)
    assert set(tensors) == {"optim.0.buf"}
    json.dumps(rest)  # JSON-able
    back = unflatten_optimizer(tensors, json.loads(json.dumps(rest)))
    assert back["state"][0]["step"] == 3 and torch.equal(back["state"][0]["buf"], torch.ones(2))
    assert back["state"][1] == {"momentum_buffer": None}
    assert back["param_groups"] == st["param_groups"]


def test_load_state_into_mismatch_raises(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    good = {k: v.clone() for k, v in model.state_dict().items()}
    load_state_into(model, good, "w.safetensors")
    with pytest.raises(ModelFileError, match="w.safetensors do not fit the model"):
        load_state_into(model, {"weight": torch.zeros(2, 3)}, "w.safetensors")  # missing bias
    with pytest.raises(ModelFileError, match="do not fit"):
        load_state_into(model, {**good, "extra": torch.zeros(1)}, "w.safetensors")
    with pytest.raises(ModelFileError, match="do not fit") as err:
        load_state_into(model, {"weight": torch.zeros(4, 3), "bias": torch.zeros(4)}, "w")
    assert "\n" not in str(err.value)
    assert isinstance(err.value, FewmolError)


def _write_config(d: Path, **over) -> None:
    cfg = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "encoder", **over}
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg))


def test_read_model_config(tmp_path: Path) -> None:
    d = tmp_path / "model"
    _write_config(d, extra=1)
    assert read_model_config(d)["extra"] == 1
    with pytest.raises(ModelFileError, match="directory not found"):
        read_model_config(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFileError, match="model config not found"):
        read_model_config(empty)
    (empty / "config.json").write_text("garbage {{{")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_model_config(empty)
    (empty / "config.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ModelFileError):
        read_model_config(empty)
    _write_config(empty, format="something-else")
    with pytest.raises(ModelFileError, match="not a fewmol model config"):
        read_model_config(empty)
    _write_config(empty, format_version=FORMAT_VERSION + 1)
    with pytest.raises(ModelFileError, match="format version"):
        read_model_config(empty)
    # a fine-tuned model's config without the keys its loader indexes
    _write_config(empty, kind="property_model", encoder={}, head={}, target_names=["y"])
    with pytest.raises(ModelFileError, match="lacks 'featurizer', 'task_type'"):
        read_model_config(empty)


def test_resolve_init_directory_and_unknown_name(tmp_path: Path, monkeypatch) -> None:
    d = tmp_path / "enc"
    d.mkdir()
    assert resolve_init(str(d)) == d
    shipped = tmp_path / "assets"
    for name in ("gin_masking", "graphmvp"):
        (shipped / name).mkdir(parents=True)
    monkeypatch.setattr(modeldir, "ASSETS", shipped)
    assert resolve_init("graphmvp") == shipped / "graphmvp"
    with pytest.raises(ModelFileError) as err:
        resolve_init("contextpred")
    msg = str(err.value)
    assert "'contextpred'" in msg
    assert "shipped: gin_masking, graphmvp" in msg


def test_graphmvp_is_a_short_name_of_the_shipped_graphmvp_c(tmp_path: Path, monkeypatch) -> None:
    shipped = tmp_path / "assets"
    for name in ("graphmvp-c", "graphmvp-c-ogb"):
        (shipped / name).mkdir(parents=True)
    monkeypatch.setattr(modeldir, "ASSETS", shipped)
    assert resolve_init("graphmvp") == shipped / "graphmvp-c-ogb"  # the newer, OGB features
    assert resolve_init("graphmvp-c") == shipped / "graphmvp-c"
    (shipped / "graphmvp").mkdir()  # a checkpoint of that very name wins over the alias
    assert resolve_init("graphmvp") == shipped / "graphmvp"


def test_resolve_init_with_nothing_shipped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(modeldir, "ASSETS", tmp_path / "no-assets")
    with pytest.raises(ModelFileError, match="none in this version"):
        resolve_init("gin_masking")


def test_resolve_init_real_assets_message() -> None:
    with pytest.raises(ModelFileError, match="shipped") as err:
        resolve_init("definitely-not-a-checkpoint-xyz")
    if modeldir.ASSETS.is_dir():
        for d in modeldir.ASSETS.iterdir():
            assert d.name in str(err.value)


@pytest.mark.parametrize("version", ["one", None])
def test_tampered_config_format_version_raises_model_file_error(tmp_path: Path, version) -> None:
    _write_config(tmp_path / "m", format_version=version)
    with pytest.raises(ModelFileError):
        read_model_config(tmp_path / "m")
