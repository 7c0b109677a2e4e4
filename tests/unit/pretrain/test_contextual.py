"""fewmol.pretrain.methods.contextual: GROVER's atom-context labels on a GIN (G-Contextual)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from rdkit import Chem

from fewmol.chem.mol import canonical_smiles
from fewmol.data.store import featurize_to_graphset
from fewmol.pretrain.methods import METHODS, GContextual
from fewmol.pretrain.methods.contextual import (
    OTHER,
    build_context_vocab,
    context_labels,
    context_rows,
    context_string,
    parse_context,
)

MOLS = ["CC(=O)O", "c1ccncc1C#N", "[Na+].[Cl-]", "F/C=C/Cl", "C[C@H](N)C(=O)[O-]",
        "O=S(=O)(N)c1ccc(Br)cc1", "C1CC1[N+](C)(C)C", "P(=O)(O)(O)OCC"]  # fmt: skip


def grover_atom_to_vocab(mol: Chem.Mol, atom: Chem.Atom) -> str:
    """GROVER's ``atom_to_vocab``, written out (the reference the labels must equal)."""
    nei: Counter[str] = Counter()
    for a in atom.GetNeighbors():
        bond = mol.GetBondBetweenAtoms(atom.GetIdx(), a.GetIdx())
        nei[str(a.GetSymbol()) + "-" + str(bond.GetBondType())] += 1
    out = atom.GetSymbol()
    for k in sorted(nei):
        out = f"{out}_{k}{nei[k]}"
    return out


@pytest.mark.parametrize("featurizer", ["hu2019", "ogb"])
def test_context_strings_equal_grovers(small_batch, featurizer) -> None:
    smiles = [canonical_smiles(s) for s in MOLS]
    b = small_batch(smiles, featurizer)
    rows = context_rows(b, 6)
    ours = [context_string(r, 6) for r in rows.tolist()]
    ref = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        ref += [grover_atom_to_vocab(mol, a) for a in mol.GetAtoms()]
    assert ours == ref
    assert all(parse_context(w, 6) == [t for t in r if t >= 0] for w, r in zip(ours, rows.tolist()))


def test_vocab_and_labels(bbbp_smiles, small_batch) -> None:
    gs = featurize_to_graphset(bbbp_smiles, "hu2019", cache=False)
    vocab = build_context_vocab(gs)
    assert vocab[0] == OTHER and len(set(vocab)) == len(vocab)
    b = gs.collate(np.arange(len(gs)))
    strings = [context_string(r, 6) for r in context_rows(b, 6).tolist()]
    freq = Counter(strings)
    # most frequent first, ties alphabetical (GROVER's TorchVocab), every context present
    assert vocab[1:] == sorted(freq, key=lambda w: (-freq[w], w))
    m = GContextual(dim=16, vocab=vocab)
    labels = m.labels(b)
    assert labels.min() >= 1 and labels.max() < len(vocab)
    assert [vocab[i] for i in labels.tolist()] == strings
    # a context never seen in the vocabulary's molecules is <other> (0)
    assert "Xe" not in vocab and "Au" not in vocab
    assert m.labels(small_batch(["[Xe].[Au]", "CCO"])).tolist()[:2] == [0, 0]
    # capped vocabulary: rarer contexts become <other>
    small = build_context_vocab(gs, max_size=3)
    assert small == vocab[:4]
    lab = GContextual(dim=16, vocab=small).labels(b)
    assert int((lab == 0).sum()) == sum(freq[w] for w in vocab[4:])
    # extra padding on either side changes nothing
    rows = context_rows(b, 6)
    wide = torch.cat([rows, torch.full((rows.shape[0], 3), -1)], dim=1)
    assert torch.equal(context_labels(wide, m.vocab_rows), labels)


def test_loss_decreases_and_hparams_rebuild(bbbp_smiles, tiny_encoder) -> None:
    gs = featurize_to_graphset(bbbp_smiles, "hu2019", cache=False)
    b = gs.collate(np.arange(len(gs)))
    m = METHODS["g-contextual"](dim=16, vocab=build_context_vocab(gs))
    again = GContextual(**m.hparams)
    assert torch.equal(again.labels(b), m.labels(b))
    assert "vocab_rows" not in m.state_dict()  # rebuilt from the vocabulary, never saved
    enc = tiny_encoder()
    opt = torch.optim.Adam([*enc.parameters(), *m.parameters()], lr=3e-3)
    losses = []
    for _ in range(30):
        loss, logs = m.loss(enc, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    assert logs["acc"] > 0.4 and logs["other_rate"] == 0.0
    with pytest.raises(ValueError, match="<other>"):
        GContextual(dim=16, vocab=["C"])
