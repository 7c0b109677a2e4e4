"""Train/valid/test splits: scaffold (pretrain-gnns protocol), random, and user-given."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fewmol.chem.scaffold import scaffolds
from fewmol.errors import InvalidInputError

SPLIT_NAMES = ("train", "valid", "test")
_ALIASES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "val": "valid",
    "validation": "valid",
    "dev": "valid",
    "test": "test",
    "testing": "test",
}


@dataclass
class Split:
    """Indices (into the kept rows of a table) of each part."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    kind: str = "custom"

    def sizes(self) -> dict[str, int]:
        """Number of molecules per part."""
        return {k: int(len(getattr(self, k))) for k in SPLIT_NAMES}

    def check_trainable(self, hint: str) -> None:
        """User error unless the training part gives a batch: it is empty or one molecule.

        A lone training molecule is dropped as a one-item batch (batch norm cannot train on it),
        so nothing would train and no model would be written.
        """
        n = len(self.train)
        if n >= 2:
            return
        what = (
            "is empty"
            if n == 0
            else "holds one molecule, and one molecule cannot be trained on (batch norm needs "
            "two per batch)"
        )
        raise InvalidInputError(f"the training split {what} ({self.sizes()}); {hint}")

    def to_json(self, path: str | Path) -> None:
        """Write the split atomically as JSON lists of indices."""
        path = Path(path)
        payload = {"kind": self.kind, **{k: getattr(self, k).tolist() for k in SPLIT_NAMES}}
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh)
        os.replace(tmp, path)

    @classmethod
    def from_json(cls, path: str | Path) -> Split:
        """Read a split written by :meth:`to_json`."""
        d = json.loads(Path(path).read_text())
        return cls(*(np.asarray(d[k], dtype=np.int64) for k in SPLIT_NAMES), kind=d["kind"])


def _check_fracs(fracs: Sequence[float]) -> None:
    if len(fracs) != 3 or any(f < 0 for f in fracs) or abs(sum(fracs) - 1.0) > 1e-6:
        raise InvalidInputError(
            f"split fractions must be 3 non-negative numbers summing to 1, got {tuple(fracs)}"
        )


def scaffold_split(smiles: Sequence[str], fracs: Sequence[float] = (0.8, 0.1, 0.1)) -> Split:
    """Deterministic Bemis–Murcko scaffold split, largest scaffold groups first (Hu et al.).

    Groups are sorted by (size, first index) descending and each whole group goes to train
    until train would exceed its share, then valid, then test; no scaffold is in two parts.
    """
    _check_fracs(fracs)
    groups: dict[str, list[int]] = {}
    for i, sc in enumerate(scaffolds(smiles)):
        groups.setdefault(sc, []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (len(g), g[0]), reverse=True)
    n = len(smiles)
    train_cut, valid_cut = fracs[0] * n, (fracs[0] + fracs[1]) * n
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for g in ordered:
        if len(parts[0]) + len(g) > train_cut:
            if len(parts[0]) + len(parts[1]) + len(g) > valid_cut:
                parts[2].extend(g)
            else:
                parts[1].extend(g)
        else:
            parts[0].extend(g)
    return Split(*(np.sort(np.asarray(p, dtype=np.int64)) for p in parts), kind="scaffold")


def random_split(n: int, fracs: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """Random split of ``n`` items with a seeded permutation."""
    _check_fracs(fracs)
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(fracs[0] * n))
    n_valid = int(round(fracs[1] * n))
    return Split(
        np.sort(perm[:n_train]),
        np.sort(perm[n_train : n_train + n_valid]),
        np.sort(perm[n_train + n_valid :]),
        kind=f"random(seed={seed})",
    )


def split_from_labels(labels: Sequence[object]) -> Split:
    """Split from one label per item: train/valid/test (also val, validation, dev, testing)."""
    norm = []
    bad = []
    for i, lab in enumerate(labels):
        key = _ALIASES.get(str(lab).strip().lower())
        if key is None:
            bad.append((i, lab))
        norm.append(key)
    if bad:
        shown = ", ".join(f"row {i}: {v!r}" for i, v in bad[:5])
        more = ", ..." if len(bad) > 5 else ""
        raise InvalidInputError(f"{len(bad)} split labels are not train/valid/test ({shown}{more})")
    arr = np.asarray(norm)
    split = Split(*(np.flatnonzero(arr == k) for k in SPLIT_NAMES), kind="custom")
    if len(split.train) == 0:
        raise InvalidInputError("the given split has no training rows")
    return split


def make_split(
    kind: str,
    smiles: Sequence[str],
    seed: int = 0,
    fracs: Sequence[float] = (0.8, 0.1, 0.1),
    labels: Sequence[object] | None = None,
) -> Split:
    """Build a split by name: ``scaffold``, ``random`` or ``custom`` (from ``labels``)."""
    if kind == "scaffold":
        return scaffold_split(smiles, fracs)
    if kind == "random":
        return random_split(len(smiles), fracs, seed)
    if kind == "custom":
        if labels is None:
            raise InvalidInputError("a custom split needs one train/valid/test label per row")
        return split_from_labels(labels)
    raise InvalidInputError(f"unknown split {kind!r}; expected scaffold, random or a file/column")


def kfold_splits(
    smiles: Sequence[str],
    k: int,
    kind: str = "scaffold",
    seed: int = 0,
    valid_frac: float = 0.1,
) -> list[Split]:
    """K cross-validation splits: every molecule is in exactly one test fold.

    ``scaffold``: whole Bemis–Murcko groups are dealt to folds, largest first, each to the
    fold with the fewest molecules so far (as scikit-learn's GroupKFold), so no scaffold is
    in two folds; deterministic. ``random``: a seeded permutation cut into k near-equal
    folds. In fold i the other folds are split into train and a validation part of about
    ``valid_frac`` of all molecules: the smallest scaffold groups (as :func:`scaffold_split`
    puts them in valid) or a seeded random sample.
    """
    n = len(smiles)
    if k < 2:
        raise InvalidInputError(f"--folds needs at least 2 folds, got {k}")
    if kind not in ("scaffold", "random"):
        raise InvalidInputError(f"--folds works with --split scaffold or random, not {kind!r}")
    if not 0 <= valid_frac < 1 - 1 / k:
        raise InvalidInputError(f"valid fraction {valid_frac} leaves no training molecules")
    if kind == "scaffold":
        by_scaffold: dict[str, list[int]] = {}
        for i, sc in enumerate(scaffolds(smiles)):
            by_scaffold.setdefault(sc, []).append(i)
        groups = sorted(by_scaffold.values(), key=lambda g: (len(g), g[0]), reverse=True)
        if len(groups) < k:
            raise InvalidInputError(
                f"{len(groups)} distinct scaffolds cannot fill {k} scaffold folds; use fewer "
                "--folds or --split random"
            )
        fold_of_group = np.empty(len(groups), dtype=np.int64)
        sizes = np.zeros(k, dtype=np.int64)
        for gi, g in enumerate(groups):
            f = int(np.argmin(sizes))  # first of the lightest folds
            fold_of_group[gi] = f
            sizes[f] += len(g)
        fold = np.empty(n, dtype=np.int64)
        for gi, g in enumerate(groups):
            fold[g] = fold_of_group[gi]
    else:
        if n < k:
            raise InvalidInputError(f"{n} molecules cannot fill {k} folds")
        fold = np.empty(n, dtype=np.int64)
        for f, part in enumerate(np.array_split(np.random.default_rng(seed).permutation(n), k)):
            fold[part] = f
    out = []
    for f in range(k):
        test = np.flatnonzero(fold == f)
        rest = np.flatnonzero(fold != f)
        n_valid = valid_frac * n
        if kind == "scaffold":
            rest_groups = [g for gi, g in enumerate(groups) if fold_of_group[gi] != f]
            train: list[int] = []
            valid: list[int] = []
            for g in rest_groups:  # largest first, so valid gets the rarest scaffolds
                (train if len(train) + len(g) <= len(rest) - n_valid else valid).extend(g)
            tr, va = np.sort(np.asarray(train, np.int64)), np.sort(np.asarray(valid, np.int64))
        else:
            perm = np.random.default_rng([seed, f]).permutation(rest)
            cut = int(round(n_valid))
            tr, va = np.sort(perm[cut:]), np.sort(perm[:cut])
        out.append(Split(tr, va, test, kind=f"{kind}-kfold({f + 1}/{k})"))
    return out
