"""Process-wide memory allocator settings for training on CPU (glibc).

glibc serves a block above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and unmaps
it on ``free``; a training step that builds tensors of that size every step (SGNN-EBM's edge
states: (batch, edges, 2, 2, d), hundreds of MB at KIBA's 1,736 task edges) then pays the
kernel's page faults and zeroing for every one of them, every step. Serving every block from
the heap and never trimming it keeps those pages mapped for reuse: the KIBA-size SGNN-EBM step
ran 1.32x faster, a GIN fine-tuning step 1.07x (ranges overlap), in
``benchmarks/speed/allocator_speed.py``. The cost is that the process keeps its peak memory
until it exits, which training processes reach anyway (peak RSS +3 % for the SGNN-EBM step,
+1 % for the GIN step).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
ENV = "FEWMOL_MALLOC_TUNING"


def tune_allocator() -> bool:
    """Serve large blocks from glibc's heap and keep freed memory (True if applied).

    Off with ``FEWMOL_MALLOC_TUNING=0``; a no-op where the C library has no ``mallopt``
    (macOS, musl, Windows).
    """
    if os.environ.get(ENV, "1").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; the trim threshold is an int: 2 GiB - 1 is "never" here
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
