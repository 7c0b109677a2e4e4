"""fewmol.data.conformer_store: layout, workers, resume, mismatches, hard time limit, batches."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from fewmol.chem.conformers import ConformerSettings, generate_conformers
from fewmol.chem.mol import canonical_smiles
from fewmol.data import conformer_store as cs
from fewmol.data.conformer_store import ConformerStore, build_conformer_store, conformer_key
from fewmol.errors import InvalidInputError

RAW = ["CCO", "c1ccccc1", "C1CC", "CC(=O)Oc1ccccc1C(=O)O", "C" * 20, "CC[Se]CC", "CCN", "O=C=O"]
SMILES = [canonical_smiles(s) if s != "C1CC" else s for s in RAW]  # index 2 stays invalid
ST = ConformerSettings(num_confs=2, max_atoms=15, seed=1)
FAILED = {2: "invalid SMILES", 4: "too many heavy atoms (20 > 15)"}


def _arrays(store: ConformerStore) -> dict[str, np.ndarray]:
    names = ("n_atoms", "n_confs", "z", "pos", "energy", "forcefield_code", "source_id")
    return {n: getattr(store, n) for n in names}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> ConformerStore:
    return build_conformer_store(
        SMILES, tmp_path_factory.mktemp("cs") / "w1", ST, workers=1, progress=False
    )


def test_store_contents_and_failures(built):
    assert len(built) == len(SMILES) and built.smiles == SMILES
    assert built.ok_mask.tolist() == [i not in FAILED for i in range(len(SMILES))]
    assert built.failures["index"].tolist() == sorted(FAILED)
    for i, reason in FAILED.items():
        assert built.reason(i).startswith(reason)
    assert built.warnings["reason"].tolist() == ["MMFF parameters missing; used UFF"]
    assert built.forcefield[5] == "UFF" and built.forcefield[2] == ""
    # the same arrays as calling the generator directly
    for i in np.flatnonzero(built.ok_mask):
        z, pos = built.get(i)
        direct = generate_conformers(SMILES[i], ST)
        assert np.array_equal(z, direct.z) and np.array_equal(pos, direct.pos)
        assert np.allclose(built.energies(i), direct.energies)
    with pytest.raises(ValueError, match="too many heavy atoms"):
        built.get(4)
    files = {p.name for p in built.path.iterdir()}
    assert {"manifest.json", "smiles.json", "chunks", "failures.csv", "warnings.csv"} <= files
    manifest = json.loads((built.path / "manifest.json").read_text())
    assert manifest["complete"] and manifest["counts"]["failed"] == 2
    assert built.settings == ST


def test_workers_give_the_same_arrays(built, tmp_path):
    for workers in (2, 0):
        other = build_conformer_store(SMILES, tmp_path / f"w{workers}", ST, workers=workers)
        for name, arr in _arrays(built).items():
            assert np.array_equal(arr, _arrays(other)[name], equal_nan=True), (workers, name)
        assert other.failures.equals(built.failures)
        assert other.key == built.key  # the key ignores workers and chunk size


def test_batch_is_flat_and_vectorised(built):
    idx = np.flatnonzero(built.ok_mask)[::-1]
    z, pos, batch = built.batch(idx, conf=1)
    parts = [built.get(i) for i in idx]
    assert np.array_equal(z, np.concatenate([p[0] for p in parts]))
    assert np.array_equal(pos, np.concatenate([p[1][1 % len(p[1])] for p in parts]))
    assert np.array_equal(batch, np.repeat(np.arange(len(idx)), [len(p[0]) for p in parts]))
    assert z.dtype == np.int64 and pos.dtype == np.float32
    _, pos_r, _ = built.batch(idx, rng=np.random.default_rng(0))
    assert pos_r.shape == pos.shape
    with pytest.raises(ValueError, match="without conformers"):
        built.batch([0, 4])


def test_resume_skips_finished_chunks(built, tmp_path, monkeypatch):
    out = tmp_path / "resume"
    first = build_conformer_store(SMILES, out, ST, workers=0, chunk_size=2)
    chunks = sorted((out / "chunks").glob("*.npz"))
    assert len(chunks) == 4
    # as if killed: chunk 1 never finished, chunk 3 half written
    chunks[1].unlink()
    chunks[3].write_bytes(chunks[3].read_bytes()[:50])
    redo = set(SMILES[2:4] + SMILES[6:8])
    real = cs.generate_conformers

    def only_unfinished(smiles, settings):
        assert smiles in redo, f"finished chunk recomputed: {smiles}"
        return real(smiles, settings)

    monkeypatch.setattr(cs, "generate_conformers", only_unfinished)
    again = build_conformer_store(SMILES, out, ST, workers=0, chunk_size=256)
    assert again.manifest["chunk_size"] == 2  # a resumed store keeps its own layout
    for name, arr in _arrays(first).items():
        assert np.array_equal(arr, _arrays(again)[name], equal_nan=True), name
    redo.clear()  # nothing left to do: a third run generates nothing
    build_conformer_store(SMILES, out, ST, workers=0)


def test_incomplete_and_mismatched_stores(built, tmp_path):
    out = tmp_path / "s"
    build_conformer_store(SMILES[:3], out, ST, workers=0)
    with pytest.raises(InvalidInputError, match=r"num_confs=2 \(now 3\)"):
        build_conformer_store(SMILES[:3], out, ConformerSettings(num_confs=3), workers=0)
    with pytest.raises(InvalidInputError, match="holds 3 molecules, not these 2"):
        build_conformer_store(SMILES[:2], out, ST, workers=0)
    rebuilt = build_conformer_store(SMILES[:2], out, ST, workers=0, resume=False)
    assert len(rebuilt) == 2
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidInputError, match="incomplete"):
        ConformerStore(out)
    with pytest.raises(InvalidInputError, match="not a conformer store"):
        ConformerStore(tmp_path)


def test_key_and_progress(tmp_path):
    assert conformer_key(["CCO"], "rdkit-etkdg", ST.to_dict()) != conformer_key(
        ["CCO"], "rdkit-etkdg", ConformerSettings(seed=2).to_dict()
    )
    calls: list[tuple[int, int]] = []
    store = build_conformer_store(
        ["CCO", "CCN"], tmp_path / "p", ST, workers=0, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (2, 2) and len(store) == 2
    empty = build_conformer_store([], tmp_path / "e", ST, workers=0)
    assert len(empty) == 0 and empty.batch([])[0].shape == (0,)


@pytest.mark.skipif(mp.get_start_method() != "fork", reason="the patched generator must be forked")
def test_worker_stuck_in_native_code_is_killed(tmp_path, monkeypatch):
    real = cs.generate_conformers

    def hangs_on_propanol(smiles, settings):
        if smiles == "CCCO":
            time.sleep(60)  # like a C++ call that never returns: no cooperative check sees it
        return real(smiles, settings)

    monkeypatch.setattr(cs, "generate_conformers", hangs_on_propanol)
    st = ConformerSettings(num_confs=1, timeout_s=0.2)
    t0 = time.perf_counter()
    store = build_conformer_store(["CCO", "CCN", "CCCO", "CCC", "CC#N"], tmp_path, st, workers=2)
    assert time.perf_counter() - t0 < 20
    assert store.ok_mask.tolist() == [True, True, False, True, True]
    assert store.reason(2).startswith("timed out after 0.2 s (worker killed after")


@pytest.mark.skipif(cs.fcntl is None, reason="chunk claims need fcntl.flock")
def test_concurrent_runs_split_the_chunks(built, tmp_path, monkeypatch):
    real = cs.generate_conformers
    made: list[tuple[str, str]] = []  # (run, smiles): flock claims conflict between threads too

    def slow(smiles, settings):
        made.append((threading.current_thread().name, smiles))
        time.sleep(0.05)  # so that both runs are inside the store at once
        return real(smiles, settings)

    monkeypatch.setattr(cs, "generate_conformers", slow)
    out = tmp_path / "shared"
    stores: dict[str, ConformerStore] = {}

    def run(name: str) -> None:
        stores[name] = build_conformer_store(SMILES, out, ST, workers=0, chunk_size=1)

    threads = [threading.Thread(target=run, args=(n,), name=n) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    generated = [s for _, s in made]
    assert sorted(generated) == sorted(SMILES), "a molecule made twice, or not at all"
    assert {run for run, _ in made} == {"a", "b"}, "one run did all the work"
    for store in stores.values():
        for name, arr in _arrays(built).items():
            assert np.array_equal(arr, _arrays(store)[name], equal_nan=True), name


@pytest.mark.skipif(cs.fcntl is None, reason="chunk claims need fcntl.flock")
def test_chunk_left_by_a_dead_run_is_taken_over(built, tmp_path):
    out = tmp_path / "dead"
    first = build_conformer_store(SMILES, out, ST, workers=0, chunk_size=2)
    (out / "chunks" / "chunk_000001.npz").unlink()  # as if its run died while making it
    fd = os.open(out / "chunks" / "chunk_000001.lock", os.O_RDWR)
    cs.fcntl.flock(fd, cs.fcntl.LOCK_EX)  # ... and still held it when this run starts
    result: list[ConformerStore] = []
    t = threading.Thread(
        target=lambda: result.append(build_conformer_store(SMILES, out, ST, workers=1))
    )
    t.start()
    t.join(1.0)
    assert t.is_alive() and not result, "the run finished without the held chunk"
    os.close(fd)  # the other run dies: the kernel drops its claim
    t.join(60)
    assert result and result[0].manifest["complete"]
    for name, arr in _arrays(first).items():
        assert np.array_equal(arr, _arrays(result[0])[name], equal_nan=True), name


@pytest.mark.skipif(cs.fcntl is None, reason="chunk claims need fcntl.flock")
def test_two_processes_with_worker_pools_share_a_store(built, tmp_path):
    # Pool workers are forked while their parent holds chunk claims: they must not keep the
    # claims locked after the parent lets go (both runs would then wait on each other forever).
    code = (
        "import sys, json; from fewmol.data.conformer_store import build_conformer_store;"
        "from fewmol.chem.conformers import ConformerSettings;"
        "st = ConformerSettings.from_dict(json.loads(sys.argv[2]));"
        "build_conformer_store(json.loads(sys.argv[3]), sys.argv[1], st, workers=1, "
        "chunk_size=1, progress=False)"
    )
    out = tmp_path / "two"
    args = [str(out), json.dumps(ST.to_dict()), json.dumps(SMILES)]
    procs = [subprocess.Popen([sys.executable, "-c", code, *args]) for _ in range(2)]
    try:
        codes = [p.wait(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert codes == [0, 0]
    store = ConformerStore(out)
    for name, arr in _arrays(built).items():
        assert np.array_equal(arr, _arrays(store)[name], equal_nan=True), name


@pytest.mark.skipif(cs.fcntl is None, reason="chunk claims need fcntl.flock")
def test_file_system_without_locks_builds_alone(built, tmp_path, monkeypatch):
    def no_locks(fd, op):
        raise OSError(37, "No locks available")  # ENOLCK, as some network mounts answer

    monkeypatch.setattr(cs.fcntl, "flock", no_locks)
    store = build_conformer_store(SMILES, tmp_path / "nolock", ST, workers=0, chunk_size=3)
    for name, arr in _arrays(built).items():
        assert np.array_equal(arr, _arrays(store)[name], equal_nan=True), name
