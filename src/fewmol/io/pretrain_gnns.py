"""Import published pretrain-gnns (Hu et al. 2019) / GraphMVP GIN weights as a fewmol encoder dir.

Those projects save PyTorch state dicts (``torch.save(model.state_dict(), "x.pth")``), e.g.
pretrain-gnns' ``chem/model_gin/{masking,contextpred,infomax,edgepred,supervised_*}.pth``.
They are read with ``torch.load(weights_only=True)`` only: PyTorch's restricted unpickler
accepts tensors and plain containers and refuses any other pickled object, so reading a file
never runs code from it. The tensors are renamed to :class:`~fewmol.models.gin.GINEncoder`'s
parameters and written as ``encoder.safetensors`` + ``config.json``, which
``fewmol finetune --init DIR`` loads like any pre-trained encoder.

Key mapping (vocabularies are the ``hu2019`` featuriser's, which is pretrain-gnns' own:
atoms 120 x chirality 3, bonds 6 x directions 3; ``L`` layers and the width are read from the
shapes):

* ``x_embedding{1,2}.weight`` -> ``atom_embedding.embeddings.{0,1}.weight``
* ``gnns.{i}.mlp.{0,2}.{weight,bias}`` -> ``layers.{i}.mlp.{0,2}.{weight,bias}``
* ``gnns.{i}.edge_embedding{1,2}.weight`` -> ``layers.{i}.edge_embedding.embeddings.{0,1}.weight``
* ``batch_norms.{i}.*`` -> ``batch_norms.{i}.*`` (``num_batches_tracked`` 0 where absent)

Both GIN layers compute ``MLP(h_i + e_self + sum_j (h_j + e_ji))`` with the self-loop bond
type 4 (DESIGN §5), so the converted encoder computes the same function. A state dict of a
whole model is accepted too: keys under ``gnn.`` (pretrain-gnns' ``GNN_graphpred``) or
``molecule_model.`` (GraphMVP), or the GIN inside ``{"model": ...}`` (GraphMVP's
``*_model_complete.pth``); the other keys (prediction heads) are left out and listed.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fewmol.errors import InvalidInputError
from fewmol.io.modeldir import encoder_hparams, save_encoder
from fewmol.models.gin import GINEncoder

SOURCE_FORMAT = "pretrain-gnns"
_PREFIXES = ("", "gnn.", "molecule_model.", "model.", "module.")
_NESTED = ("model", "molecule_model", "state_dict", "gnn")
_LAYER_KEY = re.compile(r"^gnns\.(\d+)\.(.+)$")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a PyTorch weight file, read with ``torch.load(weights_only=True)`` only.

    Raises InvalidInputError for a missing file, a file that is not a PyTorch save, or one
    that holds pickled objects other than tensors and plain containers (never unpickled).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"weight file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        # the restricted unpickler names the global it refused ("... GLOBAL posix.system ...")
        refused = next((ln for ln in lines if "GLOBAL" in ln), None)
        if refused is None:  # not a pickle at all: garbage, truncated, another format
            detail = next((ln for ln in lines if "Unsupported" in ln), lines[0] if lines else "")
            raise InvalidInputError(
                f"{path} is not a readable PyTorch weight file ({detail})"
            ) from None
        raise InvalidInputError(
            f"{path} holds pickled Python objects besides tensors, so fewmol will not load it "
            f"(loading such a file could run code from it): {refused}. Save the plain state "
            "dict instead: torch.save(model.state_dict(), 'weights.pth')"
        ) from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise InvalidInputError(
            f"{path} is not a readable PyTorch weight file ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'no details'})"
        ) from None
    return _find_state_dict(obj, path)


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())
    )


def _find_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The state dict itself, or the one inside ``{"model": ...}`` and similar wrappers."""
    if _is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in _NESTED:
            if _is_state_dict(obj.get(key)):
                return dict(obj[key])
        keys = ", ".join(map(str, list(obj)[:8]))
        raise InvalidInputError(f"{path} holds no state dict of tensors (top-level keys: {keys})")
    raise InvalidInputError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors")


def convert_state_dict(
    state: Mapping[str, torch.Tensor], where: str = "the state dict"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Rename a pretrain-gnns GIN state dict to :class:`GINEncoder` keys.

    Returns ``(tensors, info)``; ``info`` has ``num_layers``, ``dim``, the ``prefix`` the GIN
    was found under and the ``ignored`` keys outside it. Raises InvalidInputError when the
    tensors are not a pretrain-gnns GIN with the ``hu2019`` vocabularies.
    """
    prefix = next((p for p in _PREFIXES if f"{p}x_embedding1.weight" in state), None)
    if prefix is None:
        raise InvalidInputError(
            f"{where} is not a pretrain-gnns GNN: no 'x_embedding1.weight' "
            f"(first keys: {', '.join(list(state)[:5])})"
        )
    ours = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    ignored = sorted(k for k in state if not k.startswith(prefix))
    if any(k.endswith(".att") or "weight_linear" in k for k in ours):
        raise InvalidInputError(
            f"{where} holds GAT weights (gnns.*.att); only GIN weights (model_gin/*.pth) can be "
            "imported: fewmol's encoder is the GIN"
        )
    layers = sorted({int(m.group(1)) for k in ours if (m := _LAYER_KEY.match(k))})
    if not layers or layers != list(range(len(layers))):
        raise InvalidInputError(f"{where}: no contiguous gnns.0..gnns.L-1 layers found")
    dim = int(ours["x_embedding1.weight"].shape[1])
    num_layers = len(layers)
    hp = encoder_hparams("hu2019", num_layers=num_layers, dim=dim, dropout=0.0, jk="last")
    (n_atom, n_chiral), (n_bond, n_dir) = hp["atom_dims"], hp["bond_dims"]
    # (their key, our key, expected shape)
    plan = [
        ("x_embedding1.weight", "atom_embedding.embeddings.0.weight", (n_atom, dim)),
        ("x_embedding2.weight", "atom_embedding.embeddings.1.weight", (n_chiral, dim)),
    ]
    for i in layers:
        plan += [
            (f"gnns.{i}.mlp.0.weight", f"layers.{i}.mlp.0.weight", (2 * dim, dim)),
            (f"gnns.{i}.mlp.0.bias", f"layers.{i}.mlp.0.bias", (2 * dim,)),
            (f"gnns.{i}.mlp.2.weight", f"layers.{i}.mlp.2.weight", (dim, 2 * dim)),
            (f"gnns.{i}.mlp.2.bias", f"layers.{i}.mlp.2.bias", (dim,)),
            (
                f"gnns.{i}.edge_embedding1.weight",
                f"layers.{i}.edge_embedding.embeddings.0.weight",
                (n_bond, dim),
            ),
            (
                f"gnns.{i}.edge_embedding2.weight",
                f"layers.{i}.edge_embedding.embeddings.1.weight",
                (n_dir, dim),
            ),
        ]
        plan += [
            (f"batch_norms.{i}.{p}", f"batch_norms.{i}.{p}", (dim,))
            for p in ("weight", "bias", "running_mean", "running_var")
        ]
    out: dict[str, torch.Tensor] = {}
    for theirs, mine, shape in plan:
        if theirs not in ours:
            raise InvalidInputError(f"{where} lacks {prefix}{theirs}: not a pretrain-gnns GIN")
        t = ours.pop(theirs)
        if tuple(t.shape) != shape:
            raise InvalidInputError(
                f"{where}: {prefix}{theirs} has shape {tuple(t.shape)}, expected {shape} for a "
                f"{num_layers}-layer, {dim}-wide GIN with pretrain-gnns' (hu2019) vocabularies"
            )
        out[mine] = t.detach().to(torch.float32).contiguous()
    for i in layers:
        # saved before PyTorch 0.4.1, batch norms have no counter: start it at 0
        tracked = ours.pop(f"batch_norms.{i}.num_batches_tracked", torch.tensor(0))
        out[f"batch_norms.{i}.num_batches_tracked"] = tracked.to(torch.long).reshape(())
    if ours:
        raise InvalidInputError(
            f"{where} has keys a pretrain-gnns GIN does not: {', '.join(sorted(ours)[:6])}"
        )
    return out, {"num_layers": num_layers, "dim": dim, "prefix": prefix, "ignored": ignored}


def build_converted_encoder(
    tensors: Mapping[str, torch.Tensor], info: Mapping[str, Any]
) -> GINEncoder:
    """A :class:`GINEncoder` (hu2019, JK last, no dropout) holding converted tensors."""
    hp = encoder_hparams("hu2019", info["num_layers"], info["dim"], dropout=0.0, jk="last")
    encoder = GINEncoder(**hp)
    encoder.load_state_dict(dict(tensors), strict=True)
    return encoder.eval()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (recorded so an imported encoder names its exact source)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_pretrain_gnns(path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Convert a pretrain-gnns GIN weight file into the encoder dir ``out_dir``.

    Returns what config.json records about the import (source file, sha256, sizes, ignored
    keys). The dir is what ``fewmol pretrain`` writes: ``fewmol finetune --init out_dir``.
    """
    path = Path(path)
    tensors, info = convert_state_dict(read_state_dict(path), str(path))
    encoder = build_converted_encoder(tensors, info)
    record = {
        "method": f"imported ({SOURCE_FORMAT})",
        "complete": True,
        "imported_from": {
            "format": SOURCE_FORMAT,
            "file": str(path.resolve()),
            "name": path.name,
            "sha256": file_sha256(path),
            "key_prefix": info["prefix"],
            "ignored_keys": info["ignored"],
            "loader": "torch.load(weights_only=True)",
        },
    }
    save_encoder(out_dir, encoder, "hu2019", **record)
    return {**record, "num_layers": info["num_layers"], "dim": info["dim"]}
