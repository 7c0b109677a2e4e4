"""fewmol.models.protein: DeepDTA protein CNN with padding-invariant max pooling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fewmol.models.protein import ProteinCNN


def _tokens(lengths: list[int], width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids 1..26 up to each length, 0 (padding) after it."""
    g = torch.Generator().manual_seed(seed)
    tok = torch.randint(1, 27, (len(lengths), width), generator=g)
    lens = torch.tensor(lengths)
    tok[torch.arange(width) >= lens.unsqueeze(1)] = 0
    return tok, lens


def _naive(cnn: ProteinCNN, tok: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Embedding -> convs -> masked max, written out plainly (the reference)."""
    rf = cnn.receptive_field
    if tok.shape[1] < rf:
        tok = nn.functional.pad(tok, (0, rf - tok.shape[1]))
    h = cnn.embedding(tok).transpose(1, 2)
    for conv in cnn.convs:
        h = torch.relu(conv(h))
    keep = torch.arange(h.shape[2]) < (lens - rf + 1).clamp_min(1).unsqueeze(1)
    return h.masked_fill(~keep.unsqueeze(1), 0.0).amax(2)


@pytest.fixture
def cnn() -> ProteinCNN:
    torch.manual_seed(0)
    return ProteinCNN(emb_dim=16, filters=(4, 8, 12), kernel_sizes=(3, 4, 5)).eval()


def test_shapes_and_defaults() -> None:
    deepdta = ProteinCNN()
    assert deepdta.hparams == {
        "vocab_size": 27,
        "emb_dim": 128,
        "filters": [32, 64, 96],
        "kernel_sizes": [8, 8, 8],
    }
    assert deepdta.out_dim == 96 and deepdta.receptive_field == 22
    tok, lens = _tokens([50, 30, 41], 50)
    assert deepdta(tok, lens).shape == (3, 96)


def test_matches_embedding_then_conv(cnn: ProteinCNN) -> None:
    tok, lens = _tokens([60, 9, 33, 2, 60], 60)
    with torch.no_grad():
        ref = _naive(cnn, tok, lens)
        for group in (None, 2):
            torch.testing.assert_close(cnn(tok, lens, group_size=group), ref)


def test_padding_invariance(cnn: ProteinCNN) -> None:
    tok, lens = _tokens([40, 25, 3, 17], 40)
    with torch.no_grad():
        base = cnn(tok, lens)
        padded = cnn(nn.functional.pad(tok, (0, 37)), lens)
        alone = torch.cat([cnn(tok[i : i + 1, : int(lens[i])], lens[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(padded, base)
    torch.testing.assert_close(alone, base)  # each protein as if batched only with itself


def test_grads_reach_weights_but_not_padding_row(cnn: ProteinCNN) -> None:
    tok, lens = _tokens([30, 12], 30)
    cnn.train()
    cnn(tok, lens).sum().backward()
    assert cnn.embedding.weight.grad[1:].abs().sum() > 0
    assert torch.all(cnn.embedding.weight.grad[0] == 0)
    assert all(c.weight.grad.abs().sum() > 0 for c in cnn.convs)


def test_repr_hparams_and_errors(cnn: ProteinCNN) -> None:
    text = repr(cnn)
    assert "filters=[4, 8, 12]" in text and "kernels=[3, 4, 5]" in text and "out=12" in text
    again = ProteinCNN(**cnn.hparams)
    assert again.hparams == cnn.hparams
    before = cnn.convs[0].weight.clone()
    cnn.reset_parameters()
    assert not torch.equal(before, cnn.convs[0].weight)
    assert torch.all(cnn.embedding.weight[0] == 0)
    with pytest.raises(ValueError, match="kernel size"):
        ProteinCNN(filters=(4, 8), kernel_sizes=(3, 3, 3))
