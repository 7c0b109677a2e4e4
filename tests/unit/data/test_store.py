"""fewmol.data.store: featurised-graph cache (keys, hits, corruption, resume, workers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fewmol.chem.featurize import FEATURIZERS, featurize_many
from fewmol.chem.mol import try_canonical_smiles
from fewmol.data import store
from fewmol.data.collate import GraphSet
from fewmol.data.store import (
    features_key,
    featurize_to_graphset,
    load_graphset,
    save_npz_atomic,
)

SMILES = ["CCO", "c1ccccc1", "[Na+]", "C[C@H](N)C(=O)O", "F/C=C/F", "CC#N", "C", "O=C=O"]


@pytest.fixture(scope="module")
def bbbp300() -> list[str]:
    from fewmol.data.registry import load_frame

    out: list[str] = []
    for s in load_frame("bbbp")["smiles"]:
        c, _ = try_canonical_smiles(s)
        if c is not None:
            out.append(c)
        if len(out) == 300:
            break
    return out


def _equal(a: GraphSet, b: GraphSet) -> None:
    aa, bb = a.arrays(), b.arrays()
    assert aa.keys() == bb.keys()
    for k in aa:
        assert aa[k].dtype == bb[k].dtype, k
        assert np.array_equal(aa[k], bb[k]), k


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("name", sorted(FEATURIZERS))
def test_equals_from_graphs_of_featurize_many(tmp_path: Path, name: str) -> None:
    spec = FEATURIZERS[name]
    gs = featurize_to_graphset(SMILES, name, cache_dir=tmp_path)
    ref = GraphSet.from_graphs(
        featurize_many(SMILES, name), len(spec.atom_dims), len(spec.bond_dims)
    )
    _equal(gs, ref)
    assert len(gs) == len(SMILES)
    # the cache file is where the key says, and nothing else is left behind
    key = features_key(SMILES, name)
    assert _files(tmp_path) == [tmp_path / name / f"{key}.npz"]
    _equal(load_graphset(tmp_path / name / f"{key}.npz"), ref)


def test_default_cache_dir_is_fewmol_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FEWMOL_CACHE", str(tmp_path))
    featurize_to_graphset(SMILES[:2])
    assert (tmp_path / "features" / "hu2019" / f"{features_key(SMILES[:2], 'hu2019')}.npz").exists()


def test_cache_false_writes_nothing(tmp_path: Path) -> None:
    gs = featurize_to_graphset(SMILES, cache=False, cache_dir=tmp_path)
    assert len(gs) == len(SMILES)
    assert _files(tmp_path) == []


def test_empty_input(tmp_path: Path) -> None:
    gs = featurize_to_graphset([], "ogb", cache_dir=tmp_path)
    assert len(gs) == 0
    assert gs.x.shape == (0, len(FEATURIZERS["ogb"].atom_dims))
    assert gs.edge_attr.shape == (0, len(FEATURIZERS["ogb"].bond_dims))


def _boom(args):  # stands in for the featuriser when it must not run
    raise AssertionError(f"_featurize_chunk called for {len(args[0])} molecules")


def test_second_call_hits_cache(tmp_path: Path, monkeypatch) -> None:
    first = featurize_to_graphset(SMILES, cache_dir=tmp_path)
    monkeypatch.setattr(store, "_featurize_chunk", _boom)
    second = featurize_to_graphset(SMILES, cache_dir=tmp_path)
    _equal(first, second)
    # a different set is not served from the cache
    with pytest.raises(AssertionError, match="_featurize_chunk called"):
        featurize_to_graphset(SMILES[::-1], cache_dir=tmp_path)
    # nor is anything when the cache is off
    with pytest.raises(AssertionError, match="_featurize_chunk called"):
        featurize_to_graphset(SMILES, cache=False, cache_dir=tmp_path)


def _corrupt_garbage(data: bytes) -> bytes:
    return b"this is not an npz file at all"


def _corrupt_truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _corrupt_empty(data: bytes) -> bytes:
    return b""


def _corrupt_bitflip(data: bytes) -> bytes:
    i = 200
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


@pytest.mark.parametrize(
    "corrupt",
    [
        _corrupt_garbage,
        _corrupt_truncated,
        _corrupt_empty,
        _corrupt_bitflip,
    ],
)
def test_corrupted_cache_file_is_rebuilt(tmp_path: Path, monkeypatch, corrupt) -> None:
    first = featurize_to_graphset(SMILES, cache_dir=tmp_path)
    (final,) = _files(tmp_path)
    final.write_bytes(corrupt(final.read_bytes()))
    calls = []
    real = store._featurize_chunk

    def spy(args):
        calls.append(args)
        return real(args)

    monkeypatch.setattr(store, "_featurize_chunk", spy)
    again = featurize_to_graphset(SMILES, cache_dir=tmp_path)
    _equal(first, again)
    assert len(calls) == 1
    _equal(load_graphset(final), first)  # the rebuilt file is good


def test_cache_file_with_missing_array_is_rebuilt(tmp_path: Path) -> None:
    first = featurize_to_graphset(SMILES, cache_dir=tmp_path)
    (final,) = _files(tmp_path)
    arrays = first.arrays()
    del arrays["edge_ptr"]
    save_npz_atomic(final, arrays)
    _equal(featurize_to_graphset(SMILES, cache_dir=tmp_path), first)
    _equal(load_graphset(final), first)


def test_resume_computes_only_missing_chunks(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(store, "CHUNK", 2)
    smiles = SMILES + ["CCN", "CCCl"]  # 10 molecules -> 5 chunks of 2
    key = features_key(smiles, "hu2019")
    parts_dir = tmp_path / "hu2019" / f"{key}.parts"
    done = {0, 2, 3}
    for k in done:
        save_npz_atomic(
            parts_dir / f"{k:06d}.npz",
            store._featurize_chunk((smiles[2 * k : 2 * k + 2], "hu2019")).arrays(),
        )
    real = store._featurize_chunk
    computed: list[list[str]] = []

    def spy(args):
        computed.append(list(args[0]))
        return real(args)

    monkeypatch.setattr(store, "_featurize_chunk", spy)
    gs = featurize_to_graphset(smiles, cache_dir=tmp_path)
    assert computed == [smiles[2:4], smiles[8:10]]  # chunks 1 and 4 only
    _equal(gs, GraphSet.from_graphs(featurize_many(smiles)))
    assert not parts_dir.exists()  # parts are removed once the final file is written
    assert _files(tmp_path) == [tmp_path / "hu2019" / f"{key}.npz"]


@pytest.mark.parametrize("corrupt", [_corrupt_garbage, _corrupt_truncated])
def test_resume_uses_part_contents_and_rebuilds_bad_parts(
    tmp_path: Path, monkeypatch, corrupt
) -> None:
    monkeypatch.setattr(store, "CHUNK", 3)
    smiles = SMILES[:6]  # 2 chunks
    key = features_key(smiles, "hu2019")
    parts_dir = tmp_path / "hu2019" / f"{key}.parts"
    parts_dir.mkdir(parents=True)
    good = store._featurize_chunk((smiles[:3], "hu2019"))
    save_npz_atomic(parts_dir / "000000.npz", good.arrays())
    bad = store._featurize_chunk((smiles[3:], "hu2019"))
    save_npz_atomic(parts_dir / "000001.npz", bad.arrays())
    (parts_dir / "000001.npz").write_bytes(corrupt((parts_dir / "000001.npz").read_bytes()))
    computed: list[list[str]] = []
    real = store._featurize_chunk
    monkeypatch.setattr(
        store, "_featurize_chunk", lambda args: computed.append(list(args[0])) or real(args)
    )
    gs = featurize_to_graphset(smiles, cache_dir=tmp_path)
    assert computed == [smiles[3:]]
    _equal(gs, GraphSet.from_graphs(featurize_many(smiles)))


def test_parts_are_written_as_chunks_finish(tmp_path: Path, monkeypatch) -> None:
    """A job killed after some chunks leaves those chunks on disk (and no temp files)."""
    monkeypatch.setattr(store, "CHUNK", 2)
    real = store._featurize_chunk
    n = {"calls": 0}

    def dies_on_third(args):
        n["calls"] += 1
        if n["calls"] == 3:
            raise KeyboardInterrupt
        return real(args)

    monkeypatch.setattr(store, "_featurize_chunk", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        featurize_to_graphset(SMILES, cache_dir=tmp_path)
    key = features_key(SMILES, "hu2019")
    parts_dir = tmp_path / "hu2019" / f"{key}.parts"
    assert [p.name for p in _files(tmp_path)] == ["000000.npz", "000001.npz"]
    assert all(p.parent == parts_dir for p in _files(tmp_path))
    monkeypatch.setattr(store, "_featurize_chunk", real)
    _equal(
        featurize_to_graphset(SMILES, cache_dir=tmp_path),
        GraphSet.from_graphs(featurize_many(SMILES)),
    )


def test_workers_2_equals_workers_1(tmp_path: Path, monkeypatch, bbbp300: list[str]) -> None:
    monkeypatch.setattr(store, "CHUNK", 64)  # 300 molecules -> 5 chunks
    pools: list[int] = []
    real_pool = store.ProcessPoolExecutor

    class RecordingPool(real_pool):
        def __init__(self, max_workers=None, **kwargs):
            pools.append(max_workers)
            super().__init__(max_workers=max_workers, **kwargs)

    monkeypatch.setattr(store, "ProcessPoolExecutor", RecordingPool)
    one = featurize_to_graphset(bbbp300, workers=1, cache=False)
    assert pools == []
    two = featurize_to_graphset(bbbp300, workers=2, cache_dir=tmp_path)
    assert pools == [2]  # the parallel path really ran
    _equal(one, two)
    _equal(one, GraphSet.from_graphs(featurize_many(bbbp300)))
    assert len(two) == 300
    _equal(load_graphset(tmp_path / "hu2019" / f"{features_key(bbbp300, 'hu2019')}.npz"), one)


def test_key_depends_on_featurizer_and_order() -> None:
    k = features_key(SMILES, "hu2019")
    assert len(k) == 32 and all(c in "0123456789abcdef" for c in k)
    assert features_key(list(SMILES), "hu2019") == k  # deterministic
    assert features_key(SMILES, "ogb") != k
    assert features_key(SMILES[::-1], "hu2019") != k
    assert features_key(SMILES[:-1], "hu2019") != k
    assert features_key(["CC", "O"], "hu2019") != features_key(["CCO"], "hu2019")
    assert features_key([], "hu2019") != features_key([""], "hu2019")
    with pytest.raises(ValueError, match="hu2019"):
        features_key(SMILES, "nope")


def test_key_depends_on_featurizer_version(monkeypatch) -> None:
    k = features_key(SMILES, "hu2019")
    spec = FEATURIZERS["hu2019"]
    monkeypatch.setitem(FEATURIZERS, "hu2019", spec._replace(version=spec.version + 1))
    assert features_key(SMILES, "hu2019") != k


def test_save_npz_atomic_leaves_no_temp_file_on_failure(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "sub" / "a.npz"
    save_npz_atomic(path, {"x": np.arange(3)})
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        save_npz_atomic(path, {"x": np.arange(5)})
    assert path.read_bytes() == before
    assert _files(tmp_path) == [path]


def test_load_graphset_refuses_pickled_arrays(tmp_path: Path) -> None:
    path = tmp_path / "p.npz"
    arrays = GraphSet.from_graphs(featurize_many(SMILES[:2])).arrays()
    arrays["x"] = np.array([{"a": 1}], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(ValueError):
        load_graphset(path)
