"""`fewmol predict` on a large file: molecules/s and peak memory, streamed in chunks.

The input is the first N MOSES SMILES (the set repeated when N exceeds its 1.58M rows); the
model is a default-size GIN (5 x 300) fine-tuned for one epoch on BBBP, so its dir holds a
calibration and an applicability domain over BBBP's 1,631 training molecules, as a user's
would (throughput does not depend on how well it is trained). The command runs as a child
process; its resident memory (with its worker processes) is sampled every 0.2 s, so the
table shows the peak and the peak over the second half of the run next to the first half's:
constant memory means they agree. A stage breakdown on the first rows says where time goes.

Usage: python benchmarks/speed/predict_speed.py [--n 1000000] [--workers 1] [--model DIR]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MOSES = REPO.parent / "shared" / "data" / "unlabeled" / "moses_train.csv.gz"
FEWMOL = Path(sys.executable).with_name("fewmol")


def write_input(path: Path, n: int, source: Path) -> None:
    """The first ``n`` SMILES of ``source`` (repeated as needed) as a one-column CSV."""
    written = 0
    with open(path, "w", newline="") as out:
        out.write("smiles\n")
        while written < n:
            with gzip.open(source, "rt") as fh:
                next(fh)  # header
                for line in fh:
                    out.write(line if line.endswith("\n") else line + "\n")
                    written += 1
                    if written == n:
                        break


def make_model(work: Path) -> Path:
    """A default-size model dir (one epoch on BBBP): weights, calibration, AD."""
    out = work / "model"
    cmd = [str(FEWMOL), "finetune", "bbbp", "--epochs", "1", "--out", str(out), "-q"]
    subprocess.run(cmd + ["--accelerator", "cpu", "--force"], check=True)
    return out


def _tree_rss(pid: int) -> int:
    """Resident set size (bytes) of a process and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_measured(cmd: list[str]) -> tuple[float, list[tuple[float, int]]]:
    """Run ``cmd``; return its wall time and (seconds, tree RSS bytes) samples."""
    samples: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter() - t0, _tree_rss(proc.pid)))
            stop.wait(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    output, _ = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{output}")
    print(output.strip().splitlines()[-1])
    return wall, samples


def stage_breakdown(model: Path, smiles: list[str]) -> list[tuple[str, float]]:
    """Molecules/s of each step of one chunk, in this process (one thread)."""
    import pandas as pd
    import torch

    from fewmol.chem.featurize import featurize_many
    from fewmol.chem.fingerprints import morgan_packed
    from fewmol.data.collate import GraphSet
    from fewmol.data.tables import read_smiles
    from fewmol.finetune.inference import run_inference
    from fewmol.finetune.predict import Predictor

    torch.set_num_threads(1)
    pred = Predictor.load(model)
    n = len(smiles)
    rates = []
    t = time.perf_counter()
    table = read_smiles(pd.DataFrame({"smiles": smiles}), "smiles", pred.hygiene)
    rates.append(("read + validate + canonicalise", n / (time.perf_counter() - t)))
    t = time.perf_counter()
    graphs = GraphSet.from_graphs(featurize_many(table.smiles, pred.featurizer))
    rates.append(("featurise (hu2019)", n / (time.perf_counter() - t)))
    t = time.perf_counter()
    fps = morgan_packed(table.smiles)
    rates.append(("ECFP4 fingerprints", n / (time.perf_counter() - t)))
    t = time.perf_counter()
    inf = run_inference(pred.modules, graphs, table.rows, embed=True)
    rates.append(("GIN forward (5 x 300, batch 256) + embedding", n / (time.perf_counter() - t)))
    t = time.perf_counter()
    pred.applicability.score(fps, inf.embedding)
    ad = pred.applicability.train_fps.shape[0]
    rates.append(
        (f"applicability domain vs {ad} training molecules", n / (time.perf_counter() - t))
    )
    t = time.perf_counter()
    df, _ = pred.predict(table, (graphs, fps))
    df.to_csv(os.devnull, index=False)
    rates.append(("whole chunk (predict + CSV) in one call", n / (time.perf_counter() - t)))
    return rates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000, help="input rows")
    ap.add_argument("--chunk-size", type=int, default=10240)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--model", type=Path, help="model dir (default: 1 epoch on BBBP)")
    ap.add_argument("--data", type=Path, default=MOSES)
    ap.add_argument("--threads", type=int, default=1, help="OMP/torch threads of the child")
    ap.add_argument("--breakdown", type=int, default=5000, help="rows for the stage table")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fewmol-predict-speed-") as d:
        work = Path(d)
        model = args.model or make_model(work)
        inp, out = work / "input.csv", work / "preds.csv"
        t = time.perf_counter()
        write_input(inp, args.n, args.data)
        print(f"wrote {args.n} rows in {time.perf_counter() - t:.0f} s")
        env_threads = str(args.threads)
        os.environ["OMP_NUM_THREADS"] = env_threads
        cmd = [str(FEWMOL), "predict", str(model), str(inp), "--out", str(out)]
        cmd += ["--chunk-size", str(args.chunk_size), "--workers", str(args.workers), "-q"]
        wall, samples = run_measured(cmd)
        with open(out, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            vi = header.index("valid")
            rows = valid = 0
            for r in reader:
                rows += 1
                valid += r[vi] == "True"
        out_mb = out.stat().st_size / 2**20
        with open(inp) as fh:
            next(fh)
            head = [next(fh).strip() for _ in range(min(args.breakdown, args.n))]
        stages = stage_breakdown(model, head)
    rss = np.array([s for _, s in samples], dtype=float) / 2**20
    ts = np.array([t for t, _ in samples])
    half = ts >= wall / 2
    first = rss[(ts >= 5) & ~half].max() if ((ts >= 5) & ~half).any() else float("nan")
    body = (
        "## Large-file predict (`benchmarks/speed/predict_speed.py`)\n\n"
        f"`fewmol predict` on the first {args.n:,} MOSES SMILES (one CSV column), chunks of "
        f"{args.chunk_size:,} rows, {args.workers} featurisation worker(s), "
        f"{args.threads} torch thread(s); default-size GIN (5 x 300) with calibration and an "
        "applicability domain; output written chunk by chunk and joined at the end. Memory "
        "is the resident set of the command and its workers, sampled every 0.2 s.\n\n"
        "| rows | valid | wall s | molecules/s | peak RSS MiB | peak RSS, 1st half (after 5 s) "
        "| peak RSS, 2nd half | output MiB |\n|---|---|---|---|---|---|---|---|\n"
        f"| {rows:,} | {valid:,} | {wall:,.0f} | {valid / wall:,.0f} | {rss.max():,.0f} | "
        f"{first:,.0f} | {rss[half].max():,.0f} | {out_mb:,.0f} |\n\n"
        f"Where the time goes (first {len(head):,} rows, in-process, 1 thread; molecules/s):\n\n"
        "| step | molecules/s |\n|---|---|\n"
        + "\n".join(f"| {k} | {v:,.0f} |" for k, v in stages)
        + "\n\n"
        + provenance(
            f"python benchmarks/speed/predict_speed.py --n {args.n} --chunk-size "
            f"{args.chunk_size} --workers {args.workers} --threads {args.threads}"
        )
    )
    print(body)
    write_section("predict", body)


if __name__ == "__main__":
    main()
