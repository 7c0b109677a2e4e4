"""Inverted dropout whose CPU mask costs a fifth of ``F.dropout``'s.

On CPU, ``F.dropout`` draws its mask with ``bernoulli_``, one generator call per element:
~15 % of a GIN fine-tuning step at batch 32 on one thread (benchmarks/results/speed.md). Here
the mask comes from 64-bit random words cut into four 16-bit slices (one generator call per four
elements), compared against the drop rate quantised to 1/65536, then scaled so the expected
output equals the input, as in ``F.dropout``. The rate differs from ``p`` by at most 7.6e-6 and
the scale matches the quantised rate exactly, so the output stays unbiased. Draws come from
torch's default generator, so ``torch.manual_seed`` and saved RNG states reproduce them.
Other devices use ``F.dropout`` (its CUDA kernel is already fast).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_LEVELS = 1 << 16  # mask resolution: 16-bit slices of random words


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) (train only)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    drop = round(p * _LEVELS)
    if drop == 0:
        return x
    if drop >= _LEVELS:
        return x * 0.0
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    slices = words.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
    keep = slices >= drop - _LEVELS // 2
    return x * (keep.to(x.dtype) * (_LEVELS / (_LEVELS - drop)))


class Dropout(nn.Dropout):
    """``nn.Dropout`` with the fast CPU mask of :func:`dropout` (same flags, same state)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout in train mode, identity in eval mode."""
        return dropout(x, self.p, self.training)
