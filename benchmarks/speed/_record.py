"""Write one benchmark's section into benchmarks/results/speed.md (between its own markers)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parents[1] / "results" / "speed.md"
HEADER = (
    "# Speed benchmarks\n\n"
    "Each section is written by the script it names (`make bench-speed` runs them all) and "
    "records the command, commit, hardware and time of its run. This machine: repeat runs vary "
    "20-40 %, so compare numbers taken in the same run.\n"
)


def provenance(command: str) -> str:
    """One line of provenance for a section."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=RESULTS.parent,
        ).stdout.strip()
    except OSError:
        commit = "?"
    cpu = platform.processor() or platform.machine()
    return (
        f"Command: `{command}`; commit `{commit}`; {os.cpu_count()} CPU cores ({cpu}), "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"{'GPU ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}; "
        f"run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
    )


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of speed.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
