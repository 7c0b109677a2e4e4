"""fewmol.data.splits: scaffold, random and user-given splits."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fewmol.chem.scaffold import scaffolds
from fewmol.data import splits
from fewmol.data.splits import (
    SPLIT_NAMES,
    Split,
    kfold_splits,
    make_split,
    random_split,
    scaffold_split,
    split_from_labels,
)
from fewmol.errors import InvalidInputError


@pytest.fixture(scope="module")
def bbbp() -> list[str]:
    from fewmol.chem.mol import try_canonical_smiles
    from fewmol.data.registry import load_frame

    out = [try_canonical_smiles(s)[0] for s in load_frame("bbbp")["smiles"]]
    return [s for s in out if s is not None]


@pytest.fixture(scope="module")
def bbbp_scaffolds_and_split(bbbp: list[str]) -> tuple[list[str], Split]:
    """Scaffold split of BBBP, and the scaffolds it used (computed once: RDKit is slow)."""
    seen: list[list[str]] = []

    def recording(smiles):
        seen.append(scaffolds(smiles))
        return seen[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(splits, "scaffolds", recording)
        split = scaffold_split(bbbp)
    assert len(seen) == 1
    return seen[0], split


@pytest.fixture(scope="module")
def bbbp_split(bbbp_scaffolds_and_split) -> Split:
    return bbbp_scaffolds_and_split[1]


def _digest(split: Split) -> str:
    h = hashlib.sha256()
    for k in SPLIT_NAMES:
        h.update(k.encode() + np.asarray(getattr(split, k), dtype=np.int64).tobytes())
    return h.hexdigest()


def _check_partition(split: Split, n: int) -> None:
    parts = [getattr(split, k) for k in SPLIT_NAMES]
    allidx = np.concatenate(parts)
    assert len(allidx) == n
    assert np.array_equal(np.sort(allidx), np.arange(n))
    for p in parts:
        assert p.dtype == np.int64
        assert np.array_equal(p, np.sort(p))


def test_scaffold_split_bbbp_sizes(bbbp: list[str], bbbp_split: Split) -> None:
    n = len(bbbp)
    assert n > 2000
    _check_partition(bbbp_split, n)
    sizes = bbbp_split.sizes()
    assert sizes["train"] <= 0.8 * n
    assert sizes["train"] >= 0.78 * n
    assert sizes["train"] + sizes["valid"] <= 0.9 * n
    assert 0.08 * n <= sizes["valid"] <= 0.12 * n
    assert 0.08 * n <= sizes["test"] <= 0.12 * n
    assert bbbp_split.kind == "scaffold"


def test_scaffold_split_no_scaffold_in_two_parts(bbbp: list[str], bbbp_scaffolds_and_split) -> None:
    sc_list, bbbp_split = bbbp_scaffolds_and_split
    assert len(sc_list) == len(bbbp) and sc_list[:20] == scaffolds(bbbp[:20])
    sc = np.asarray(sc_list, dtype=object)
    seen = [set(sc[getattr(bbbp_split, k)]) for k in SPLIT_NAMES]
    assert not seen[0] & seen[1]
    assert not seen[0] & seen[2]
    assert not seen[1] & seen[2]
    # the largest scaffold group (benzene, and the acyclic '' group) are in train
    values, counts = np.unique(sc, return_counts=True)
    assert values[np.argmax(counts)] in seen[0]


def test_scaffold_split_deterministic(
    bbbp: list[str], bbbp_scaffolds_and_split, monkeypatch
) -> None:
    sc, split = bbbp_scaffolds_and_split
    monkeypatch.setattr(splits, "scaffolds", lambda smiles: list(sc))  # skip RDKit the 2nd time
    assert _digest(scaffold_split(list(bbbp))) == _digest(split)
    monkeypatch.undo()
    small = bbbp[:300]
    assert _digest(scaffold_split(small)) == _digest(scaffold_split(list(small)))


def test_scaffold_split_fills_largest_groups_first() -> None:
    # scaffold groups: benzene x4 (0,1,2,6), pyridine x2 (3,4), cyclohexane x1 (5), '' x3
    smiles = [
        "Cc1ccccc1", "Oc1ccccc1", "Nc1ccccc1", "Cc1ccncc1", "Oc1ccncc1",
        "CC1CCCCC1", "Clc1ccccc1", "CCO", "CCN", "CCC",
    ]  # fmt: skip
    split = scaffold_split(smiles, (0.7, 0.2, 0.1))
    assert split.train.tolist() == [0, 1, 2, 6, 7, 8, 9]  # benzene (4) + acyclic (3)
    assert split.valid.tolist() == [3, 4]
    assert split.test.tolist() == [5]
    _check_partition(split, len(smiles))


def test_scaffold_split_same_across_hash_seeds(bbbp: list[str]) -> None:
    smiles = bbbp[:200]
    code = (
        "import hashlib, json, sys\n"
        "import numpy as np\n"
        "from fewmol.data.splits import scaffold_split\n"
        "s = scaffold_split(json.load(sys.stdin))\n"
        "h = hashlib.sha256()\n"
        "for k in ('train', 'valid', 'test'):\n"
        "    h.update(k.encode() + np.asarray(getattr(s, k), dtype=np.int64).tobytes())\n"
        "print(h.hexdigest())\n"
    )
    procs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        p = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        p.stdin.write(json.dumps(smiles))
        p.stdin.close()
        procs.append(p)
    outs = []
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read()
        outs.append(p.stdout.read().strip())
    assert len(outs[0]) == 64
    assert outs[0] == outs[1] == _digest(scaffold_split(smiles))


@pytest.mark.parametrize(
    "fracs", [(0.8, 0.1), (0.8, 0.1, 0.2), (0.5, 0.2, 0.2), (1.2, -0.1, -0.1), (0.8, 0.1, 0.1, 0)]
)
def test_fractions_must_sum_to_one(fracs) -> None:
    with pytest.raises(InvalidInputError, match="fractions"):
        scaffold_split(["CCO", "c1ccccc1"], fracs)
    with pytest.raises(InvalidInputError, match="fractions"):
        random_split(10, fracs)
    with pytest.raises(InvalidInputError):
        make_split("random", ["C"] * 10, fracs=fracs)


@pytest.mark.parametrize(
    ("n", "fracs", "sizes"),
    [
        (100, (0.8, 0.1, 0.1), (80, 10, 10)),
        (10, (0.8, 0.1, 0.1), (8, 1, 1)),
        (50, (0.6, 0.2, 0.2), (30, 10, 10)),
        (20, (1.0, 0.0, 0.0), (20, 0, 0)),
        (7, (0.5, 0.5, 0.0), (4, 3, 0)),
    ],
)
def test_random_split_sizes(n: int, fracs, sizes) -> None:
    split = random_split(n, fracs, seed=3)
    assert tuple(split.sizes().values()) == sizes
    _check_partition(split, n)
    assert split.kind == "random(seed=3)"


def test_random_split_seeds() -> None:
    a = random_split(200, seed=0)
    b = random_split(200, seed=0)
    c = random_split(200, seed=1)
    assert _digest(a) == _digest(b)
    assert not np.array_equal(a.test, c.test)
    assert a.sizes() == c.sizes()
    # not simply the first 80 %
    assert not np.array_equal(a.train, np.arange(160))


def test_make_split_dispatch() -> None:
    smiles = ["Cc1ccccc1", "CCO", "C1CCCCC1", "CCN"]
    assert _digest(make_split("scaffold", smiles)) == _digest(scaffold_split(smiles))
    assert _digest(make_split("random", smiles, seed=5)) == _digest(random_split(4, seed=5))
    custom = make_split("custom", smiles, labels=["train", "valid", "test", "train"])
    assert custom.train.tolist() == [0, 3]
    with pytest.raises(InvalidInputError, match="label"):
        make_split("custom", smiles)
    with pytest.raises(InvalidInputError, match="unknown split 'stratified'"):
        make_split("stratified", smiles)


def test_split_from_labels_aliases() -> None:
    labels = ["train", "Training", " TRAIN ", "val", "valid", "Validation", "dev", "test",
              "testing", "TEST"]  # fmt: skip
    split = split_from_labels(labels)
    assert split.train.tolist() == [0, 1, 2]
    assert split.valid.tolist() == [3, 4, 5, 6]
    assert split.test.tolist() == [7, 8, 9]
    assert split.kind == "custom"
    _check_partition(split, len(labels))


def test_split_from_labels_names_bad_rows() -> None:
    with pytest.raises(InvalidInputError) as err:
        split_from_labels(["train", "holdout", "valid", float("nan"), "test", ""])
    msg = str(err.value)
    assert msg.startswith("3 split labels")
    assert "row 1: 'holdout'" in msg
    assert "row 3: nan" in msg
    assert "row 5: ''" in msg
    assert "row 0" not in msg and "row 2" not in msg and "row 4" not in msg


def test_split_from_labels_many_bad_rows_are_abbreviated() -> None:
    with pytest.raises(InvalidInputError) as err:
        split_from_labels(["train"] + [f"x{i}" for i in range(8)])
    msg = str(err.value)
    assert msg.startswith("8 split labels")
    assert "row 5: 'x4'" in msg and "row 6" not in msg
    assert msg.endswith(", ...)")


def test_split_from_labels_needs_training_rows() -> None:
    with pytest.raises(InvalidInputError, match="no training rows"):
        split_from_labels(["valid", "test", "test"])


def test_split_json_round_trip(tmp_path: Path) -> None:
    split = random_split(37, (0.7, 0.2, 0.1), seed=4)
    path = tmp_path / "split.json"
    split.to_json(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split.json"]  # no temp file left
    payload = json.loads(path.read_text())
    assert payload["kind"] == "random(seed=4)"
    assert payload["train"] == split.train.tolist()
    back = Split.from_json(path)
    assert back.kind == split.kind
    for k in SPLIT_NAMES:
        got = getattr(back, k)
        assert got.dtype == np.int64
        assert np.array_equal(got, getattr(split, k))
    # empty parts survive too
    empty = split_from_labels(["train", "train"])
    empty.to_json(path)
    back = Split.from_json(path)
    assert back.train.tolist() == [0, 1] and back.valid.dtype == np.int64 and len(back.test) == 0


def test_scaffold_kfold_tests_each_molecule_once_and_never_splits_a_scaffold(
    bbbp: list[str], bbbp_scaffolds_and_split
) -> None:
    sc = np.asarray(bbbp_scaffolds_and_split[0], dtype=object)
    folds = kfold_splits(bbbp, 5, "scaffold")
    assert len(folds) == 5
    tests = np.concatenate([f.test for f in folds])
    assert np.array_equal(np.sort(tests), np.arange(len(bbbp)))  # each molecule tested once
    sizes = [len(f.test) for f in folds]
    assert max(sizes) - min(sizes) <= 1  # balanced (BBBP has many singleton scaffolds)
    for k, f in enumerate(folds):
        _check_partition(f, len(bbbp))
        assert f.kind == f"scaffold-kfold({k + 1}/5)"
        test_sc = set(sc[f.test])
        assert not test_sc & set(sc[f.train]) and not test_sc & set(sc[f.valid])
        assert not set(sc[f.train]) & set(sc[f.valid])
        assert abs(len(f.valid) - 0.1 * len(bbbp)) <= 0.02 * len(bbbp)
    for a in range(5):  # a scaffold lives in one test fold only
        for b in range(a + 1, 5):
            assert not set(sc[folds[a].test]) & set(sc[folds[b].test])
    assert [_digest(f) for f in folds] == [_digest(f) for f in kfold_splits(bbbp, 5)]


def test_random_kfold_is_seeded_and_covers_everything() -> None:
    smiles = ["C"] * 103
    a, b = kfold_splits(smiles, 4, "random", seed=1), kfold_splits(smiles, 4, "random", seed=1)
    c = kfold_splits(smiles, 4, "random", seed=2)
    assert [_digest(f) for f in a] == [_digest(f) for f in b] != [_digest(f) for f in c]
    assert np.array_equal(np.sort(np.concatenate([f.test for f in a])), np.arange(103))
    assert sorted(len(f.test) for f in a) == [25, 26, 26, 26]
    for f in a:
        _check_partition(f, 103)
        assert len(f.valid) == 10


@pytest.mark.parametrize(
    "args, fragment",
    [
        ((["C", "CC", "CCC"], 1, "scaffold"), "at least 2"),
        ((["c1ccccc1", "c1ccccc1C", "CC"], 3, "scaffold"), "2 distinct scaffolds"),
        ((["C", "CC"], 3, "random"), "cannot fill 3 folds"),
        ((["C", "CC", "CCC"], 2, "column:x"), "--split scaffold or random"),
    ],
)
def test_kfold_errors(args, fragment) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        kfold_splits(*args)
