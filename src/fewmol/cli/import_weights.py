"""`fewmol import-weights`: published pretrain-gnns GIN weights -> a fewmol encoder dir."""

from __future__ import annotations

from pathlib import Path

import typer

from fewmol.cli.common import console, user_errors
from fewmol.errors import InvalidInputError
from fewmol.io.pretrain_gnns import import_pretrain_gnns

# files the import writes into --out (what --force may replace)
_FILES = ("config.json", "encoder.safetensors")


def import_weights(
    weights: Path = typer.Argument(..., help="pretrain-gnns / GraphMVP GIN weights (.pth)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output encoder directory."),
    force: bool = typer.Option(False, help="Overwrite an existing encoder in --out."),
) -> None:
    """Convert published pretrain-gnns GIN weights (e.g. chem/model_gin/contextpred.pth) into an
    encoder dir for `fewmol finetune DATA --init DIR`.

    The file is read with torch.load(weights_only=True): tensors only, a file holding any other
    pickled object is refused. Featuriser hu2019 (pretrain-gnns' own); layers and width are
    read from the weights.
    """
    with user_errors():
        if out.exists() and not out.is_dir():
            raise InvalidInputError(f"--out {out} is a file; give a directory")
        if out.is_dir() and any(out.iterdir()) and not force:
            raise InvalidInputError(f"{out} is not empty; pass --force to overwrite it")
        if force:
            for name in _FILES:
                (out / name).unlink(missing_ok=True)
        info = import_pretrain_gnns(weights, out)
        ignored = info["imported_from"]["ignored_keys"]
        note = (
            f"; left out {len(ignored)} non-GIN keys ({', '.join(ignored[:3])})" if ignored else ""
        )
        console.print(
            f"imported a {info['num_layers']}-layer, {info['dim']}-wide GIN from {weights} "
            f"(sha256 {info['imported_from']['sha256'][:12]}){note}; encoder dir: {out} "
            f"(use `fewmol finetune DATA --init {out}`)",
            markup=False,
        )
