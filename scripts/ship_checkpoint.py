"""Copy a finished `fewmol pretrain` dir into the package as a named checkpoint with its card.

    python scripts/ship_checkpoint.py RUN_DIR NAME --command "the pretrain command"

writes src/fewmol/assets/checkpoints/NAME/ (encoder.safetensors, config.json, pretrain_log.csv,
loss_curve.png, README.md); `fewmol finetune DATA --init NAME` then uses it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fewmol.io.modeldir import ASSETS
from fewmol.pretrain.card import ship_checkpoint


def main() -> None:
    """Parse the arguments and ship the checkpoint."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("name")
    ap.add_argument("--command", required=True, help="the command that produced RUN_DIR")
    args = ap.parse_args()
    out = ship_checkpoint(args.run_dir, ASSETS / args.name, args.command)
    print(f"shipped {args.run_dir} as {out}")


if __name__ == "__main__":
    main()
