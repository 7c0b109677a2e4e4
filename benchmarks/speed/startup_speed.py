"""CLI start-up: seconds until `fewmol --help` prints, and until a user error (a missing input
file) exits 2, in fresh processes; optionally against another checkout's Python (an older
fewmol), interleaved so that machine load hits both alike. Also lists which heavy training
libraries `import fewmol.cli` loads.
Usage: python benchmarks/speed/startup_speed.py [--repeats 5]
       [--baseline-python PATH --baseline-name NAME] [--note TEXT]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

HEAVY = ["lightning", "torch_geometric", "scipy.stats", "sklearn.metrics"]
CASES = {
    "fewmol --help": (["--help"], 0),
    "fewmol finetune MISSING.csv (user error)": (["finetune", "MISSING.csv", "--out", "OUT"], 2),
}


def _run(python: str, args: list[str], expect: int, tmp: Path) -> float:
    args = [str(tmp / "nope.csv") if a == "MISSING.csv" else a for a in args]
    args = [str(tmp / "out") if a == "OUT" else a for a in args]
    code = f"import sys; sys.argv = ['fewmol', *{args!r}]; from fewmol.cli import main; main()"
    t = time.perf_counter()
    rc = subprocess.run([python, "-c", code], capture_output=True).returncode
    elapsed = time.perf_counter() - t
    if rc != expect:
        raise SystemExit(f"{python} {args}: exit {rc}, expected {expect}")
    return elapsed


def _heavy_loaded(python: str) -> str:
    code = f"import sys, fewmol.cli; print(*[m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return ", ".join(out.stdout.split()) or "none"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline-python", help="Python of another checkout's venv (older fewmol).")
    ap.add_argument("--baseline-name", default="baseline", help="Its label in the table.")
    ap.add_argument("--note", default="", help="Conditions of the run, printed under the table.")
    args = ap.parse_args()
    pythons = {"this commit": sys.executable}
    if args.baseline_python:
        pythons[args.baseline_name] = args.baseline_python
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(args.repeats):  # interleaved: drift in load hits every version alike
            for label, python in pythons.items():
                for case, (argv, expect) in CASES.items():
                    times.setdefault((label, case), []).append(_run(python, argv, expect, Path(d)))
    lines = []
    for case in CASES:
        for label, python in pythons.items():
            v = times[(label, case)]
            lines.append(
                f"| {case} | {label} | {np.median(v):.2f} | {min(v):.2f}-{max(v):.2f} | "
                f"{_heavy_loaded(python)} |"
            )
    command = "python benchmarks/speed/startup_speed.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    body = (
        "## CLI start-up (`benchmarks/speed/startup_speed.py`)\n\n"
        "Seconds from starting a fresh Python process to `fewmol --help` printing, and to "
        "`fewmol finetune` on a missing file exiting 2 with its error; "
        f"{args.repeats} interleaved repeats (median, range). The last column: which heavy "
        "training libraries `import fewmol.cli` loads (commands now load them when they run "
        "and, for `finetune`, only after the input has been read and checked).\n\n"
        "| command | fewmol | median s | range | loaded at start-up |\n|---|---|---|---|---|\n"
        + "\n".join(lines)
        + "\n\n"
        + (f"{args.note}\n\n" if args.note else "")
        + provenance(command)
    )
    print(body)
    write_section("startup", body)


if __name__ == "__main__":
    main()
