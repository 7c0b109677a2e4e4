"""Model directories: build models from config.json, save/load weights, pre-trained encoders.

A fine-tuned model dir holds ``model.safetensors`` (keys ``encoder.*``, ``head.*``) and
``config.json``; a pre-trained encoder dir holds ``encoder.safetensors`` and ``config.json``
with ``"kind": "encoder"``. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import torch

from fewmol.chem.featurize import get_featurizer
from fewmol.errors import InvalidInputError, ModelFileError
from fewmol.io.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    check_format_version,
    load_state_into,
    load_tensors,
    read_json,
    save_tensors,
    write_json,
)
from fewmol.models.gin import GINEncoder
from fewmol.models.heads import GraphPropertyModel, LinearHead, MLPHead

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "checkpoints"
#: short names for shipped checkpoints: ``--init graphmvp`` is the shipped GraphMVP-C encoder
#: on OGB features (``graphmvp-c`` is the earlier one on hu2019 features, kept for its rows)
SHIPPED_ALIASES = {"graphmvp": "graphmvp-c-ogb"}


def git_commit() -> str | None:
    """Commit of the fewmol checkout, if it is one (recorded for provenance)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


#: Paths that runs write into (benchmark records, pages, plots): changes there are outputs of
#: other runs of a grid, not changes to the code, so they do not make a checkout dirty.
OUTPUT_PATHS = ("benchmarks/results",)


def git_dirty(where: str | Path | None = None) -> bool | None:
    """Whether tracked files outside :data:`OUTPUT_PATHS` differ from the commit.

    ``where``: a directory inside the checkout (default: this package's). None outside a
    checkout.
    """
    excludes = [f":(top,exclude){p}" for p in OUTPUT_PATHS]
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)", *excludes],
            cwd=Path(where) if where is not None else Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def encoder_hparams(
    featurizer: str, num_layers: int = 5, dim: int = 300, dropout: float = 0.5, jk: str = "last"
) -> dict[str, Any]:
    """GIN hyper-parameters for a featuriser (vocabulary sizes come from the featuriser)."""
    spec = get_featurizer(featurizer)
    return {
        "atom_dims": list(spec.atom_dims),
        "bond_dims": list(spec.bond_dims),
        "self_loop_bond": list(spec.self_loop_bond),
        "num_layers": num_layers,
        "dim": dim,
        "dropout": dropout,
        "jk": jk,
    }


def build_encoder(hp: dict[str, Any]) -> GINEncoder:
    """A GINEncoder from its hparams dict."""
    try:
        return GINEncoder(**hp)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"encoder config {hp} is not one this fewmol can build: {e}") from None


def build_model(config: dict[str, Any]) -> GraphPropertyModel:
    """A GraphPropertyModel from a model config (``encoder``, ``head``, ``pooling``)."""
    enc = build_encoder(config["encoder"])
    head_cfg = config["head"]
    n_tasks = len(config["target_names"])
    if head_cfg.get("type", "linear") == "linear":
        head = LinearHead(enc.out_dim, n_tasks)
    else:
        head = MLPHead(
            enc.out_dim, n_tasks, head_cfg.get("hidden", 300), head_cfg.get("dropout", 0)
        )
    return GraphPropertyModel(enc, head, config.get("pooling", "mean"))


#: the keys each kind of model config must hold (the loaders index them)
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "property_model": ("featurizer", "encoder", "head", "target_names", "task_type"),
    "multitask": ("featurizer", "encoder"),
}


def read_model_config(model_dir: str | Path) -> dict[str, Any]:
    """config.json of a model dir, checked to be a fewmol model of a readable version."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelFileError(f"model directory not found: {model_dir}")
    cfg = read_json(model_dir / "config.json", "model config")
    if cfg.get("format") != FORMAT:
        raise ModelFileError(f"{model_dir / 'config.json'} is not a fewmol model config")
    check_format_version(cfg.get("format_version"), str(model_dir / "config.json"))
    missing = [k for k in REQUIRED_KEYS.get(cfg.get("kind", ""), ()) if k not in cfg]
    if missing:
        raise ModelFileError(
            f"{model_dir / 'config.json'} lacks {', '.join(map(repr, missing))}: it was edited "
            "or cut short; write the model dir again"
        )
    return cfg


def load_model(model_dir: str | Path) -> tuple[GraphPropertyModel, dict[str, Any]]:
    """Rebuild a fine-tuned model from its dir and load its (best-validation) weights."""
    model_dir = Path(model_dir)
    cfg = read_model_config(model_dir)
    if cfg.get("kind") != "property_model":
        raise ModelFileError(
            f"{model_dir} holds a {cfg.get('kind', 'unknown')!r}, not a fine-tuned model; "
            "use it with `fewmol finetune --init`"
        )
    model = build_model(cfg)
    path = model_dir / "model.safetensors"
    load_state_into(model, load_tensors(path), str(path))
    model.eval()
    return model, cfg


def shipped_checkpoints() -> list[str]:
    """How to name the pre-trained checkpoints inside the package (``alias (= name)`` first)."""
    dirs = sorted(d.name for d in ASSETS.iterdir() if d.is_dir()) if ASSETS.is_dir() else []
    aliases = [f"{a} (= {t})" for a, t in sorted(SHIPPED_ALIASES.items()) if t in dirs]
    return aliases + dirs


def shipped_checkpoint(name: str) -> Path | None:
    """The dir of the shipped checkpoint ``name`` (or of its alias, e.g. graphmvp), else None."""
    for n in (name, SHIPPED_ALIASES.get(name)):
        if n and "/" not in n and (ASSETS / n).is_dir():
            return ASSETS / n
    return None


def resolve_init(init: str) -> Path:
    """Path of a pre-trained encoder: a directory, or the name of a checkpoint shipped."""
    p = Path(init)
    if p.exists():
        return p
    shipped = shipped_checkpoint(init)
    if shipped is not None:
        return shipped
    names = shipped_checkpoints()
    raise ModelFileError(
        f"--init {init!r} is neither a directory nor a checkpoint shipped with fewmol "
        f"(shipped: {', '.join(names) if names else 'none in this version'})"
    )


def init_featurizer(init: str | None, default: str = "hu2019") -> str:
    """The featuriser a run starting from ``init`` must use: the encoder's (else ``default``)."""
    if init is None:
        return default
    d = resolve_init(init)
    cfg = read_model_config(d)
    check_not_stl(d, cfg)  # early: before the data is read
    return str(cfg.get("featurizer", "hu2019"))


#: weight-name prefix of the GIN encoder in each kind of model dir's model.safetensors
ENCODER_PREFIX = {
    "property_model": "encoder.",
    "multitask": "encoder.",
    "dta_model": "drug_encoder.",
}


def encoder_source_kind(path: str | Path) -> str | None:
    """The kind of a dir whose GIN encoder stands alone (``encoder``, ``multitask``,
    ``dta_model``), else None: fine-tuned property models, ensembles, non-fewmol dirs."""
    p = Path(path)
    if (p / "encoder.safetensors").is_file():
        return "encoder"
    if not is_model_dir(p):
        return None
    try:
        kind = read_json(p / "config.json").get("kind")
    except (ModelFileError, OSError):
        return None
    return kind if kind in ("multitask", "dta_model") else None


def check_not_stl(path: str | Path, cfg: dict[str, Any] | None = None) -> None:
    """Refuse an STL multi-task dir where one shared GIN encoder is wanted (--init, embed)."""
    p = Path(path)
    if cfg is None:
        try:
            cfg = read_json(p / "config.json")
        except (ModelFileError, OSError):
            return
    if cfg.get("kind") == "multitask" and cfg.get("method") == "stl":
        raise ModelFileError(
            f"{p} is an STL run: one GIN per task (tasks/task_<t>.safetensors), no shared "
            "encoder to start from or embed with; use a `fewmol pretrain` dir, a fine-tuned "
            "model or a multitask run of another method"
        )


def load_pretrained_encoder(init: str | Path) -> tuple[GINEncoder, dict[str, Any]]:
    """Load a GIN encoder: an encoder dir's, or that of a fine-tuned, multitask or DTA model."""
    d = resolve_init(str(init))
    cfg = read_model_config(d)
    check_not_stl(d, cfg)
    if "encoder" not in cfg:
        raise ModelFileError(f"{d / 'config.json'} lacks 'encoder' (the GIN's settings)")
    if (d / "encoder.safetensors").exists():
        tensors = load_tensors(d / "encoder.safetensors")
        hp = cfg["encoder"]
    elif (d / "model.safetensors").exists():
        prefix = ENCODER_PREFIX.get(cfg.get("kind", "property_model"), "encoder.")
        tensors = {
            k[len(prefix) :]: v
            for k, v in load_tensors(d / "model.safetensors").items()
            if k.startswith(prefix)
        }
        hp = cfg["encoder"]
    else:
        raise ModelFileError(f"{d} has neither encoder.safetensors nor model.safetensors")
    enc = build_encoder(hp)
    load_state_into(enc, tensors, str(d))
    return enc, cfg


def load_init_encoder(init: str | Path, featurizer: str) -> tuple[GINEncoder, dict[str, Any]]:
    """The --init encoder and its config (plus ``source``); refused unless it reads the
    run's featuriser, since its atom embeddings would then index other features."""
    encoder, cfg = load_pretrained_encoder(init)
    if cfg.get("featurizer", "hu2019") != featurizer:
        raise InvalidInputError(
            f"--init encoder was trained with featurizer {cfg.get('featurizer')!r} "
            f"but this run uses {featurizer!r}; pass --featurizer {cfg.get('featurizer')}"
        )
    return encoder, dict(cfg, source=str(init))


def weights_sha256(init: str | Path) -> str | None:
    """SHA-256 of the weights an --init loads: every tensor's name, dtype, shape and bytes.

    Hashed tensor by tensor in name order rather than as a file: safetensors writes its header
    metadata in varying order, so two saves of the same weights differ byte for byte.
    """
    d = resolve_init(str(init))
    for name in ("encoder.safetensors", "model.safetensors"):
        if (d / name).is_file():
            tensors = load_tensors(d / name)
            h = hashlib.sha256()
            for key in sorted(tensors):
                t = tensors[key].contiguous()
                h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
                h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
            return h.hexdigest()
    return None


def is_model_dir(path: str | Path) -> bool:
    """Whether ``path`` looks like a fine-tuned fewmol model dir."""
    return os.path.isfile(Path(path) / "config.json") and os.path.isfile(
        Path(path) / "model.safetensors"
    )


def save_encoder(out_dir: str | Path, encoder: GINEncoder, featurizer: str, **info: Any) -> Path:
    """Write a pre-trained encoder dir (``encoder.safetensors`` + ``config.json``) for --init.

    ``info`` (method, data, epochs, ...) is stored in the config for provenance.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_tensors(out / "encoder.safetensors", encoder.state_dict())
    write_json(
        out / "config.json",
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": "encoder",
            "featurizer": featurizer,
            "encoder": encoder.hparams,
            "git_commit": git_commit(),
            **info,
        },
    )
    return out
