"""The CLI's allocator setting: freed large blocks stay mapped for reuse (glibc on Linux)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from fewmol.allocator import tune_allocator

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="glibc's mallopt",
)

# RSS growth (MiB) that survives freeing a 256 MiB tensor, in a fresh process
PROBE = textwrap.dedent(
    """
    import sys, torch
    from fewmol.allocator import tune_allocator
    applied = tune_allocator()
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
    before = rss()
    x = torch.ones(64 * 2**20)  # 256 MiB
    del x
    print(applied, round(rss() - before))
    """
)


def _probe(setting: str) -> tuple[str, int]:
    env = dict(os.environ, FEWMOL_MALLOC_TUNING=setting, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    applied, kept = out.stdout.split()
    return applied, int(kept)


def test_tuned_process_keeps_freed_large_blocks_and_the_default_returns_them() -> None:
    applied, kept = _probe("1")
    assert applied == "True" and kept > 200  # pages stay mapped for the next step's tensors
    applied, kept = _probe("0")
    assert applied == "False" and kept < 50  # glibc's default: mmap'd, unmapped on free


def test_the_setting_can_be_turned_off(monkeypatch) -> None:
    monkeypatch.setenv("FEWMOL_MALLOC_TUNING", "0")
    assert tune_allocator() is False
