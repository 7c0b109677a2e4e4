"""Pre-training on CPU in one process against N processes under Lightning's DDP: `fewmol
pretrain` end to end on the same conformer store, one torch thread per process, the same
effective batch (per-process batch = batch / N). Reports the command's wall time and the
throughput `fewmol pretrain` prints (molecules/s over its epochs).
Usage: python benchmarks/speed/pretrain_ddp_speed.py [--n 1500] [--epochs 2] [--devices 2]
       [--method graphmvp-c] [--batch-size 32] [--write] [--note TEXT]
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

FEWMOL = str(Path(sys.executable).parent / "fewmol")
ROOT = Path(__file__).resolve().parents[2]


def _smiles(n: int) -> list[str]:
    data = Path(os.environ.get("FEWMOL_DATA", ROOT.parent / "shared" / "data"))
    with gzip.open(data / "unlabeled" / "moses_train.csv.gz", "rt") as fh:
        next(fh)
        return [next(fh).split(",")[0].strip() for _ in range(n)]


def _pretrain(
    store: Path, out: Path, args: argparse.Namespace, devices: int
) -> tuple[float, float]:
    cmd = [FEWMOL, "pretrain", "--method", args.method, "--data", str(store), "--out", str(out)]
    cmd += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size // devices)]
    cmd += ["--num-confs", "1", "--precision", "bf16-mixed", "--seed", "0", "--quiet"]
    if devices > 1:
        cmd += ["--strategy", "ddp", "--devices", str(devices), "--accelerator", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t = time.perf_counter()
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    m = re.search(r"\(([\d.]+) molecules/s\)", res.stdout + res.stderr)
    return wall, float(m.group(1)) if m else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1500, help="MOSES molecules")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--method", default="graphmvp-c")
    ap.add_argument("--batch-size", type=int, default=32, help="effective (all processes)")
    ap.add_argument("--write", action="store_true", help="Write the section of speed.md.")
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        csv = Path(d) / "mols.csv"
        csv.write_text("smiles\n" + "\n".join(_smiles(args.n)) + "\n")
        store = Path(d) / "confs"
        cmd = [FEWMOL, "conformers", str(csv), "--num-confs", "1", "--out", str(store)]
        subprocess.run(cmd, check=True, capture_output=True)
        for devices in (1, args.devices):
            wall, rate = _pretrain(store, Path(d) / f"pre{devices}", args, devices)
            rows.append((devices, wall, rate))
            print(f"{devices} process(es): {wall:.1f} s, {rate:.1f} molecules/s", flush=True)
    base = rows[0][2]
    lines = [
        "## Pre-training under DDP on CPU processes (`benchmarks/speed/pretrain_ddp_speed.py`)",
        "",
        f"`fewmol pretrain --method {args.method}` on {args.n:,} MOSES molecules x 1 conformer, "
        f"{args.epochs} epochs, bf16-mixed, effective batch {args.batch_size}, one torch thread "
        "per process: one process against Lightning's DDP over CPU processes "
        "(`--strategy ddp --devices N --accelerator cpu`, per-process batch "
        f"{args.batch_size}/N). Throughput is what `fewmol pretrain` prints (its epochs); the "
        "wall time includes start-up and, for DDP, process spawning.",
        "",
        "| processes | wall s | molecules/s | speed-up (molecules/s) |",
        "|---|---|---|---|",
    ]
    for devices, wall, rate in rows:
        lines.append(f"| {devices} | {wall:.1f} | {rate:.1f} | {rate / base:.2f}x |")
    lines += ["", args.note, ""] if args.note else [""]
    lines.append(provenance(("python benchmarks/speed/pretrain_ddp_speed.py " + shlex.join(
        sys.argv[1:])).strip()))  # fmt: skip
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("pretrain-ddp", body)


if __name__ == "__main__":
    main()
