"""DeepDTA's protein sequence encoder: embedding, three 1D convolutions, global max pooling.

Öztürk et al. 2018 (DeepDTA), ``build_combined_categorical`` in its ``run_experiments.py``:
embedding 128, Conv1D with 32 / 64 / 96 filters, ``padding='valid'``, ReLU, then global max
pooling. DeepDTA's code uses *one* kernel size for all three protein layers, picked by grid
search (paper: {4, 8, 12}; released ``go.sh``: {8, 12}); the per-layer schedule 4/8/12 that
some re-implementations use (DeepPurpose's CNN) is a reading of that grid, not DeepDTA's code.
We default to 8 for every layer and accept one size per layer.

Unlike DeepDTA (which pads every sequence to 1000 and max-pools over the padding too), output
positions whose receptive field reaches past a sequence's end are left out of the max, so the
embedding does not depend on how far a batch is padded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# 25 amino-acid letters + unknown + padding (fewmol.data.dta.PROTEIN_VOCAB_SIZE)
DEFAULT_VOCAB_SIZE = 27


class ProteinCNN(nn.Module):
    """Embedding -> [Conv1d (valid) + ReLU] x 3 -> masked global max pool.

    Args:
        vocab_size: token ids 0..vocab_size-1, 0 = padding (its embedding is zero).
        emb_dim: embedding width (DeepDTA: 128).
        filters: output channels per conv layer (DeepDTA: 32, 64, 96).
        kernel_sizes: one kernel size per layer, or one int for all (DeepDTA-style: 8).

    Shapes: tokens (P, L) int64, lengths (P,) -> (P, filters[-1]).
    """

    def __init__(
        self,
        vocab_size: int = DEFAULT_VOCAB_SIZE,
        emb_dim: int = 128,
        filters: Sequence[int] = (32, 64, 96),
        kernel_sizes: int | Sequence[int] = 8,
    ):
        super().__init__()
        filters = [int(f) for f in filters]
        if isinstance(kernel_sizes, int):
            kernel_sizes = [kernel_sizes] * len(filters)
        kernel_sizes = [int(k) for k in kernel_sizes]
        if not filters or len(kernel_sizes) != len(filters) or min(kernel_sizes) < 1:
            raise ValueError(
                f"need one kernel size >= 1 per conv layer, got {kernel_sizes} for {filters}"
            )
        self.hparams = {
            "vocab_size": int(vocab_size),
            "emb_dim": int(emb_dim),
            "filters": filters,
            "kernel_sizes": kernel_sizes,
        }
        self.filters, self.kernel_sizes = filters, kernel_sizes
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        widths = [emb_dim, *filters]
        self.convs = nn.ModuleList(
            nn.Conv1d(widths[i], widths[i + 1], kernel_sizes[i]) for i in range(len(filters))
        )
        self.reset_parameters()

    @property
    def out_dim(self) -> int:
        """Width of the protein embedding."""
        return self.filters[-1]

    @property
    def receptive_field(self) -> int:
        """Input positions one output position sees (valid convolutions shrink by k-1 each)."""
        return sum(k - 1 for k in self.kernel_sizes) + 1

    def reset_parameters(self) -> None:
        """Re-initialise the embedding (padding row zero) and the convolutions."""
        self.embedding.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    def forward(
        self, tokens: torch.Tensor, lengths: torch.Tensor, group_size: int | None = 32
    ) -> torch.Tensor:
        """Protein embeddings; positions at or past ``lengths`` never reach the output.

        Proteins are encoded in groups of ``group_size`` of similar length, each group cut to
        its own longest sequence: padding then costs ~25% less compute than padding every
        protein of a batch to the longest (the output is the same; None = one group).
        """
        n = tokens.shape[0]
        if group_size is None or n <= group_size:
            return self._encode(tokens, lengths)
        order = torch.argsort(lengths)
        parts = []
        for start in range(0, n, group_size):
            idx = order[start : start + group_size]
            width = int(lengths[idx].max())
            parts.append(self._encode(tokens[idx, :width], lengths[idx]))
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(n, device=order.device)
        return torch.cat(parts).index_select(0, inverse)

    def _encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Convolutions and masked max pool over one (P, L) block of tokens."""
        rf = self.receptive_field
        if tokens.shape[1] < rf:  # too short for one valid output: pad (masked below anyway)
            tokens = nn.functional.pad(tokens, (0, rf - tokens.shape[1]))
        # Embedding then a linear conv equals a conv over one-hot tokens with the weight
        # W'[o, v, k] = sum_c W[o, c, k] E[v, c]: vocab (26) input channels instead of emb_dim
        # (128) make the first layer ~4.7x cheaper, and no (P, L, emb) tensor is built. The
        # padding id gets no channel, so its embedding stays zero and untrained (padding_idx).
        first = self.convs[0]
        weight = torch.einsum("ock,vc->ovk", first.weight, self.embedding.weight[1:])
        onehot = torch.zeros(
            tokens.shape[0],
            weight.shape[1],
            tokens.shape[1],
            device=tokens.device,
            dtype=weight.dtype,
        ).scatter_(
            1, (tokens - 1).clamp_min(0).unsqueeze(1), (tokens > 0).unsqueeze(1).to(weight.dtype)
        )
        h = torch.relu(nn.functional.conv1d(onehot, weight, first.bias))
        for conv in self.convs[1:]:
            h = torch.relu(conv(h))
        # output t sees inputs t .. t+rf-1: keep t where that window ends inside the sequence;
        # a sequence shorter than rf keeps t = 0 (its window is the sequence plus padding ids,
        # which do not change however far the batch is padded)
        n_valid = (lengths.to(h.device) - rf + 1).clamp_min(1)
        keep = torch.arange(h.shape[2], device=h.device) < n_valid.unsqueeze(1)
        # ReLU outputs are >= 0, so filling dropped positions with 0 leaves the max unchanged
        return h.masked_fill(~keep.unsqueeze(1), 0.0).amax(dim=2)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab={self.hparams['vocab_size']}, "
            f"emb={self.hparams['emb_dim']}, filters={self.filters}, "
            f"kernels={self.kernel_sizes}, out={self.out_dim})"
        )
