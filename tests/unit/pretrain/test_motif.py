"""fewmol.pretrain.methods.motif (G-Motif) and its cached labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewmol.chem.motifs import motif_labels
from fewmol.data.store import motif_labels_cached, motifs_key
from fewmol.errors import InvalidInputError
from fewmol.pretrain.methods import METHODS, GMotif


def test_labels_are_cached_and_a_corrupt_cache_is_rebuilt(bbbp_smiles, tmp_path) -> None:
    smiles = bbbp_smiles[:10]
    y = motif_labels_cached(smiles, cache_dir=tmp_path)
    assert np.array_equal(y, motif_labels(smiles))
    path = tmp_path / f"{motifs_key(smiles)}.npz"
    assert path.is_file()
    path.write_bytes(b"not an npz")
    assert np.array_equal(motif_labels_cached(smiles, cache_dir=tmp_path), y)
    assert motifs_key(smiles) != motifs_key(smiles[::-1])


def test_loss_decreases(bbbp_smiles, bbbp_batch, tiny_encoder) -> None:
    y = motif_labels(bbbp_smiles)
    b = bbbp_batch
    b.y = torch.from_numpy(y.astype(np.float32))
    enc = tiny_encoder()
    m = METHODS["g-motif"](dim=16)
    assert isinstance(m, GMotif) and m.head.out_features == 85
    opt = torch.optim.Adam([*enc.parameters(), *m.parameters()], lr=1e-2)
    losses = []
    for _ in range(40):
        loss, logs = m.loss(enc, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses
    assert logs["acc"] > 1 - y.mean()  # beats predicting "absent" everywhere
    assert logs["positive_rate"] == pytest.approx(float(y.mean()), abs=1e-6)


def test_missing_labels_are_a_clear_error(small_batch, tiny_encoder) -> None:
    with pytest.raises(InvalidInputError, match="motif labels"):
        GMotif(dim=16).loss(tiny_encoder(), small_batch())
