"""G-Contextual: GROVER's contextual property prediction on a GIN, as GraphMVP's
``pretrain_Contextual.py``.

Each atom's label is its k = 1 context: its own element and the multiset of (neighbour
element, bond type) pairs, written GROVER's way (``atom_to_vocab``), e.g. a carbonyl carbon
bonded to a methyl and an OH is ``C_C-SINGLE1_O-DOUBLE1_O-SINGLE1``. The vocabulary is every
context of the pre-training set, most frequent first (ties alphabetical), plus ``<other>``
(index 0) for contexts it has never seen; it is built once per run
(:func:`build_context_vocab`) and kept in the run's config.json (``modules.method_2d.vocab``).
A linear head on the node embeddings predicts the label (cross-entropy), as GraphMVP.

Labels are computed from the batch tensors, vectorised (:func:`context_rows`: each atom's
sorted neighbour tokens; :func:`context_labels`: one ``torch.unique`` over the batch's rows and
the vocabulary's), so nothing is cached per molecule. Elements and bond types come from the
graph's features (atomic number, bond type column), which equal RDKit's ``GetSymbol()`` and
``GetBondType()`` on heavy-atom graphs; only bonds that the featuriser maps to "single" for
want of a category (dative, ...) read ``SINGLE`` where GROVER writes their RDKit name.
GROVER also builds a bond-context vocabulary; GraphMVP's G-Contextual trains on atoms only,
and so does this.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from rdkit import Chem
from torch import nn
from torch.nn import functional as F

from fewmol.chem.featurize import FeaturizerSpec, get_featurizer
from fewmol.data.collate import GraphBatch, GraphSet
from fewmol.pretrain.methods._common import Method2D, accuracy

OTHER = "<other>"
BOND_NAMES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC", "OTHER", "MASK")
_PERIODIC = Chem.GetPeriodicTable()
_TOKEN = re.compile(r"^(?P<sym>[^-]+)-(?P<bond>[A-Z]+)(?P<count>\d+)$")


def atom_symbol(atom_type: int) -> str:
    """Element symbol of atom-type index ``Z - 1``; ``#<index>`` for unknown / mask tokens."""
    if 0 <= atom_type < 118:
        return _PERIODIC.GetElementSymbol(atom_type + 1)
    return f"#{atom_type}"


def atom_type_of(symbol: str) -> int:
    """Inverse of :func:`atom_symbol`."""
    if symbol.startswith("#"):
        return int(symbol[1:])
    try:
        return int(_PERIODIC.GetAtomicNumber(symbol)) - 1
    except RuntimeError:
        raise ValueError(f"unknown element symbol {symbol!r} in a context string") from None


def context_rows(batch: GraphBatch, num_bond_types: int) -> torch.Tensor:
    """Each atom's context as an integer row: ``[type, sorted neighbour tokens..., -1 pad]``.

    Token of a neighbour = ``neighbour type * num_bond_types + bond type``; the row width is
    1 + the largest degree in the batch. Shapes: -> (n_atoms, 1 + max_degree) int64.
    """
    x, (src, dst) = batch.x, batch.edge_index
    n = x.shape[0]
    device = x.device
    token = x[dst, 0] * num_bond_types + batch.edge_attr[:, 0]
    # sort edges by (atom, token): a stable sort on token, then a stable sort on atom
    order = torch.argsort(token, stable=True)
    order = order[torch.argsort(src[order], stable=True)]
    degree = torch.bincount(src, minlength=n)
    width = int(degree.max()) if n and src.numel() else 0
    starts = torch.cumsum(degree, 0) - degree
    atom = src[order]
    slot = torch.arange(order.numel(), device=device) - starts[atom]
    rows = torch.full((n, 1 + width), -1, dtype=torch.long, device=device)
    rows[:, 0] = x[:, 0]
    rows[atom, 1 + slot] = token[order]
    return rows


def context_string(row: Sequence[int], num_bond_types: int) -> str:
    """GROVER's ``atom_to_vocab`` string of one context row."""
    counts = Counter(int(t) for t in row[1:] if t >= 0)
    parts = {
        f"{atom_symbol(t // num_bond_types)}-{BOND_NAMES[t % num_bond_types]}": c
        for t, c in counts.items()
    }
    return atom_symbol(int(row[0])) + "".join(f"_{k}{parts[k]}" for k in sorted(parts))


def parse_context(text: str, num_bond_types: int) -> list[int]:
    """Inverse of :func:`context_string`: ``[type, sorted tokens...]`` (no padding)."""
    symbol, *rest = text.split("_")
    tokens: list[int] = []
    for part in rest:
        m = _TOKEN.match(part)
        if m is None or m["bond"] not in BOND_NAMES:
            raise ValueError(f"cannot parse context {text!r} (at {part!r})")
        token = atom_type_of(m["sym"]) * num_bond_types + BOND_NAMES.index(m["bond"])
        tokens += [token] * int(m["count"])
    return [atom_type_of(symbol), *sorted(tokens)]


def _pad(rows: torch.Tensor, width: int) -> torch.Tensor:
    if rows.shape[1] >= width:
        return rows
    pad = torch.full((rows.shape[0], width - rows.shape[1]), -1, dtype=rows.dtype)
    return torch.cat([rows, pad.to(rows.device)], dim=1)


def context_labels(rows: torch.Tensor, vocab_rows: torch.Tensor) -> torch.Tensor:
    """Vocabulary index of each row (1 + its row in ``vocab_rows``), 0 (``<other>``) if absent.

    One ``torch.unique`` over the vocabulary's rows and the batch's rows together.
    """
    width = max(rows.shape[1], vocab_rows.shape[1])
    rows, vocab_rows = _pad(rows, width), _pad(vocab_rows.to(rows.device), width)
    _, inverse = torch.unique(torch.cat([vocab_rows, rows]), dim=0, return_inverse=True)
    v = vocab_rows.shape[0]
    index = torch.zeros(int(inverse.max()) + 1 if inverse.numel() else 0, dtype=torch.long)
    index = index.to(rows.device)
    index[inverse[:v]] = torch.arange(1, v + 1, device=rows.device)
    return index[inverse[v:]]


def build_context_vocab(
    graphs: GraphSet,
    featurizer: str | FeaturizerSpec = "hu2019",
    min_freq: int = 1,
    max_size: int | None = None,
    chunk: int = 20_000,
) -> list[str]:
    """``["<other>", contexts...]`` of every atom of ``graphs``, most frequent first.

    Ties are broken alphabetically (GROVER's ``TorchVocab``); contexts seen fewer than
    ``min_freq`` times, or beyond ``max_size``, are left out (they become ``<other>``).
    Vectorised per chunk of molecules; only the distinct contexts become strings.
    """
    spec = get_featurizer(featurizer) if isinstance(featurizer, str) else featurizer
    nb = int(spec.bond_dims[0])
    counts: Counter[tuple[int, ...]] = Counter()
    for start in range(0, len(graphs), chunk):
        idx = np.arange(start, min(start + chunk, len(graphs)))
        rows = context_rows(graphs.collate(idx), nb)
        uniq, freq = torch.unique(rows, dim=0, return_counts=True)
        for row, f in zip(uniq.tolist(), freq.tolist()):
            counts[tuple(t for t in row if t >= 0)] += f
    by_string = Counter()
    for row, f in counts.items():
        by_string[context_string(row, nb)] += f
    ranked = sorted(by_string.items(), key=lambda kv: (-kv[1], kv[0]))
    words = [w for w, f in ranked if f >= max(min_freq, 1)]
    return [OTHER, *(words if max_size is None else words[:max_size])]


class GContextual(Method2D):
    """Atom context classification head over a fixed vocabulary.

    Args:
        featurizer: featuriser name (bond-type vocabulary of the tokens).
        dim: width of the encoder's node embeddings.
        vocab: ``["<other>", contexts...]`` from :func:`build_context_vocab`; stored in
            ``hparams`` so config.json keeps it and ``GContextual(**hparams)`` rebuilds it.
    """

    name: ClassVar[str] = "g-contextual"

    def __init__(self, featurizer: str = "hu2019", dim: int = 300, vocab: Sequence[str] = ()):
        super().__init__()
        vocab = list(vocab)
        if not vocab or vocab[0] != OTHER:
            raise ValueError(f"vocab must start with {OTHER!r} (use build_context_vocab)")
        self.spec = get_featurizer(featurizer)
        self.num_bond_types = int(self.spec.bond_dims[0])
        self.hparams: dict[str, Any] = {"featurizer": featurizer, "dim": dim, "vocab": vocab}
        self.vocab = vocab
        rows = [parse_context(w, self.num_bond_types) for w in vocab[1:]]
        width = max((len(r) for r in rows), default=1)
        table = torch.full((len(rows), width), -1, dtype=torch.long)
        for i, r in enumerate(rows):
            table[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        # rebuilt from the vocabulary, never saved: persistent=False
        self.register_buffer("vocab_rows", table, persistent=False)
        self.head = nn.Linear(dim, len(vocab))

    def labels(self, batch: GraphBatch) -> torch.Tensor:
        """Vocabulary index of every atom's context (0 = ``<other>``), (n_atoms,)."""
        return context_labels(context_rows(batch, self.num_bond_types), self.vocab_rows)

    def forward(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Encode and return (context cross-entropy, {"acc", "other_rate"})."""
        h = encoder(batch.x, batch.edge_index, batch.edge_attr)
        target = self.labels(batch)
        logits = self.head(h)
        loss = F.cross_entropy(logits, target)
        logs = {
            "acc": accuracy(logits, target),
            "other_rate": float((target == 0).float().mean().item()),
        }
        return loss, logs

    def extra_repr(self) -> str:
        return f"vocab_size={len(self.vocab)}"
