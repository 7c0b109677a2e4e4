"""Model files: safetensors weights + JSON sidecars, written atomically, loaded without pickle."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fewmol.errors import ModelFileError

FORMAT = "fewmol-model"
FORMAT_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename over ``path`` so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def json_safe(o: Any) -> Any:
    """Replace NaN/inf floats by None so the JSON is standard."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: json_safe(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [json_safe(v) for v in o]
    return o


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (NaN written as null)."""
    text = json.dumps(json_safe(obj), indent=2, default=_json_default, allow_nan=False)
    _atomic(Path(path), lambda tmp: Path(tmp).write_text(text + "\n"))


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    _atomic(Path(path), lambda tmp: Path(tmp).write_text(text))


def read_json(path: str | Path, what: str = "file") -> dict[str, Any]:
    """Read a JSON object, turning any failure into a ModelFileError naming the file."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{what} not found: {path}")
    try:
        obj = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path} is not valid JSON ({e}); is it a fewmol {what}?") from None
    if not isinstance(obj, dict):
        raise ModelFileError(f"{path} should hold a JSON object, got {type(obj).__name__}")
    return obj


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict | None = None):
    """Save tensors to safetensors atomically; ``meta`` (str -> str) goes in the header."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), **(meta or {})}
    _atomic(Path(path), lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file written by fewmol; clear error if missing, corrupt or foreign."""
    return load_tensors_with_meta(path)[0]


def load_tensors_with_meta(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Like :func:`load_tensors`, also returning the header metadata (str -> str)."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"weights file not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFileError(
            f"{path} is not a readable safetensors file ({e}); it may be corrupted or "
            "not written by fewmol (pickle .pt/.ckpt files are never loaded)"
        ) from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} was not written by fewmol (no '{FORMAT}' header)")
    check_format_version(meta.get("format_version"), str(path))
    return tensors, meta


def check_format_version(version: object, where: str) -> None:
    """Raise ModelFileError unless ``version`` is an integer this fewmol can read."""
    try:
        v = int(str(version))
    except ValueError:
        raise ModelFileError(f"{where} has an unreadable format version {version!r}") from None
    if v > FORMAT_VERSION:
        raise ModelFileError(
            f"{where} has format version {v}; this fewmol reads up to {FORMAT_VERSION}; "
            "upgrade fewmol"
        )


def load_state_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor], path: str = ""):
    """Load a state dict strictly, turning shape/key mismatches into ModelFileError."""
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        msg = str(e).splitlines()[0]
        raise ModelFileError(f"weights {path} do not fit the model in its config: {msg}") from None


def flatten_optimizer(opt_state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into tensors (for safetensors) and JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in opt_state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{k}"] = v
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    """Inverse of :func:`flatten_optimizer`."""
    state: dict[int, dict[str, Any]] = {}
    for name, v in tensors.items():
        if name.startswith("optim."):
            _, pid, k = name.split(".", 2)
            # a fresh allocation: the fused Adam kernel's rounding depends on the alignment of
            # its buffers, and a loaded tensor may sit anywhere in the file's buffer
            state.setdefault(int(pid), {})[k] = v.clone()
    for pid, d in rest.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(d)
    return {"state": state, "param_groups": rest["param_groups"]}


def save_training_state(
    path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> None:
    """Write a resumable checkpoint: weights, optimiser, RNG and the JSON ``state`` in one file.

    One file holds weights and counters together, so a stop can never pair the weights of one
    epoch with the counters of another. A readable copy of ``state`` goes to ``<path>.json``.
    """
    path = Path(path)
    opt_tensors, opt_rest = flatten_optimizer(optimizer.state_dict())
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    full = {**state, "optimizer": opt_rest}
    save_tensors(path, tensors, {"state": json.dumps(json_safe(full))})
    write_json(path.with_suffix(".json"), full)


def load_training_state(path: str | Path, model: torch.nn.Module) -> tuple[dict, dict]:
    """Load weights of a :func:`save_training_state` file into ``model``, restore the RNG.

    Returns (optimizer state_dict to load once the optimiser exists, the JSON state).
    """
    path = Path(path)
    tensors, meta = load_tensors_with_meta(path)
    if "state" in meta:
        try:
            state = json.loads(meta["state"])
        except json.JSONDecodeError:
            raise ModelFileError(f"{path} has a corrupt training state header") from None
    else:  # checkpoints of fewmol <= 0.1.0 dev kept the counters only in the .json copy
        state = read_json(path.with_suffix(".json"), "checkpoint")
    model_sd = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    load_state_into(model, model_sd, str(path))
    torch.set_rng_state(tensors["rng.torch"])
    return unflatten_optimizer(tensors, state["optimizer"]), state
