"""On-disk store of 3D conformers: chunked, parallel, atomic, resumable, failures per molecule.

Layout of a store directory::

    manifest.json          format, CONFORMER_VERSION, settings (or the source's options), the
                           cache key, chunk_size, n_molecules, complete flag, counts
    smiles.json            the molecules, in order (canonical SMILES)
    chunks/chunk_000012.json  failures and warnings of molecules [start, stop) of chunk 12
    chunks/chunk_000012.npz   their conformers (CSR layout, below); written last, with an
                              atomic rename, so its presence means "chunk finished"
    failures.csv / warnings.csv   index, smiles, reason (written when the store is complete)

Chunk arrays (``m`` molecules; a failed molecule has ``n_atoms = n_confs = 0``)::

    n_atoms   int32 [m]      atoms per conformer
    n_confs   int32 [m]      conformers kept (lowest energy first)
    forcefield int8 [m]      index into FORCEFIELDS (-1: failed)
    source_id int64 [m]      global index (generated), QM9 ``Index`` or SDF record number
    z         uint8 [sum n_atoms]
    pos       float32 [sum n_atoms * n_confs, 3]   molecule-major, then conformer, then atom
    energy    float64 [sum n_confs]                kcal/mol (NaN when not optimised)

The cache key hashes CONFORMER_VERSION, the settings and the ordered SMILES; it does not depend on
the number of workers or the chunk size. Rerunning with the same inputs skips finished chunks (so
a killed run resumes), and a run with other settings or molecules into the same directory is an
error unless ``resume=False``, which rebuilds it.

Generation runs in worker processes (``concurrent.futures.ProcessPoolExecutor``) so that the
parent can enforce the hard per-molecule time limit; see :mod:`fewmol.chem.conformers`.

Runs that build the same store at once (two pre-trainings of one data set, two nodes on a shared
file system) split it between them: a run claims a chunk (an exclusive ``flock`` on
``chunks/chunk_K.lock``, held while it generates that chunk, dropped by the kernel if the run
dies) and skips chunks other runs hold; once it has nothing left to claim it waits for those,
takes over any whose run died, and finishes the store. Opening and finishing the store happen
under ``.lock`` in the store directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing as mp
import os
import signal
import sys
import time
import zipfile
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so concurrent runs do not share a store
    fcntl = None  # type: ignore[assignment]

from fewmol.chem.conformers import (
    CONFORMER_VERSION,
    FORCEFIELDS,
    ConformerResult,
    ConformerSettings,
    generate_conformers,
    kill_after_s,
)
from fewmol.data.store import save_npz_atomic
from fewmol.errors import InvalidInputError

__all__ = [
    "STORE_FORMAT",
    "ConformerStore",
    "build_conformer_store",
    "conformer_key",
    "is_store",
    "open_if_current",
    "write_conformer_store",
]

STORE_FORMAT = "fewmol-conformers"
MANIFEST = "manifest.json"
SMILES_FILE = "smiles.json"
CHUNKS = "chunks"
REPORT_COLUMNS = ["index", "smiles", "reason"]
_POLL_S = 0.2  # how often the parent checks workers (bounds the overshoot of the hard limit)
_SLOT = 4  # shared-memory doubles per worker: pid, molecule index, start time, done in chunk
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
_FF_CODE = {name: i for i, name in enumerate(FORCEFIELDS)}

Progress = Callable[[int, int], None]


# ----------------------------------------------------------------------------- small helpers


def conformer_key(smiles: Sequence[str], source: str, options: dict) -> str:
    """Hash of CONFORMER_VERSION, the source ('rdkit-etkdg', 'sdf', 'qm9'), its options/settings
    and the ordered SMILES (not workers or chunk size: they do not change the result)."""
    h = hashlib.sha256(CONFORMER_VERSION.encode())
    h.update(json.dumps({"source": source, "options": options}, sort_keys=True).encode())
    for s in smiles:
        h.update(b"\n")
        h.update(s.encode())
    return h.hexdigest()[:32]


def _write_text_atomic(path: Path, text: str) -> None:
    """Write a text file through a temporary name and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_csv_atomic(path: Path, df: pd.DataFrame) -> None:
    _write_text_atomic(path, df.to_csv(index=False))


def _chunk_path(root: Path, k: int, suffix: str) -> Path:
    return root / CHUNKS / f"chunk_{k:06d}{suffix}"


def is_store(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` holds a conformer store manifest (complete or not)."""
    try:
        return json.loads((Path(path) / MANIFEST).read_text()).get("format") == STORE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _pack(results: Sequence[ConformerResult], source_ids: Sequence[int], start: int) -> dict:
    """Chunk arrays + failure/warning records for results of molecules start, start+1, ..."""
    n_atoms = np.array([r.n_atoms if r.ok else 0 for r in results], np.int32)
    n_confs = np.array([r.n_confs if r.ok else 0 for r in results], np.int32)
    ok = [r for r in results if r.ok]
    arrays = {
        "n_atoms": n_atoms,
        "n_confs": n_confs,
        "forcefield": np.array([_FF_CODE[r.forcefield] if r.ok else -1 for r in results], np.int8),
        "source_id": np.asarray(source_ids, np.int64),
        "z": np.concatenate([r.z for r in ok]).astype(np.uint8) if ok else np.zeros(0, np.uint8),
        "pos": np.concatenate([r.pos.reshape(-1, 3) for r in ok]).astype(np.float32)
        if ok
        else np.zeros((0, 3), np.float32),
        "energy": np.concatenate([r.energies for r in ok]).astype(np.float64)
        if ok
        else np.zeros(0),
    }
    failures = [
        {"index": start + i, "smiles": r.smiles, "reason": r.failure}
        for i, r in enumerate(results)
        if not r.ok
    ]
    warnings = [
        {"index": start + i, "smiles": r.smiles, "reason": r.warning}
        for i, r in enumerate(results)
        if r.ok and r.warning
    ]
    return {"arrays": arrays, "failures": failures, "warnings": warnings}


def _save_chunk(root: Path, k: int, start: int, stop: int, packed: dict) -> None:
    """Report first, arrays last: the .npz appearing is what marks the chunk finished."""
    report = {
        "chunk": k,
        "start": start,
        "stop": stop,
        "failures": packed["failures"],
        "warnings": packed["warnings"],
        "seconds": packed.get("seconds"),
    }
    _write_text_atomic(_chunk_path(root, k, ".json"), json.dumps(report))
    save_npz_atomic(_chunk_path(root, k, ".npz"), packed["arrays"])


def _chunk_done(root: Path, k: int, size: int) -> bool:
    """A finished, readable chunk of the expected size is on disk."""
    npz, js = _chunk_path(root, k, ".npz"), _chunk_path(root, k, ".json")
    if not (npz.is_file() and js.is_file()):
        return False
    try:
        with np.load(npz, allow_pickle=False) as f:
            n = f["n_atoms"].shape[0]
        json.loads(js.read_text())
    except _UNREADABLE:
        return False
    return n == size


def _chunk_bounds(n: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]


# ----------------------------------------------------------------------------- directory state


def _describe_mismatch(
    old: dict, new: dict, old_smiles: list[str] | None, smiles: list[str]
) -> str:
    if old.get("version") != new["version"]:
        return f"it was written by conformer version {old.get('version')}, not {new['version']}"
    if old.get("source") != new["source"]:
        return f"it was built from {old.get('source')!r}, not {new['source']!r}"
    if old.get("settings") != new["settings"]:
        a, b = old.get("settings") or {}, new["settings"]
        keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        diff = [f"{k}={a.get(k)!r} (now {b.get(k)!r})" for k in keys]
        return "it was built with other settings: " + ", ".join(diff)
    if old_smiles is not None and len(old_smiles) != len(smiles):
        return f"it holds {len(old_smiles)} molecules, not these {len(smiles)}"
    if old_smiles is not None:
        i = next((i for i, (a, b) in enumerate(zip(old_smiles, smiles)) if a != b), None)
        if i is not None:
            return f"it holds other molecules (first difference at index {i}: {old_smiles[i]!r})"
    return "its cache key differs"


def _clear(root: Path) -> None:
    """Remove this store's own files (never anything else in the directory)."""
    chunks = root / CHUNKS
    if chunks.is_dir():
        for p in chunks.iterdir():
            if p.name.startswith(("chunk_", ".chunk_")):
                p.unlink(missing_ok=True)
    for name in (MANIFEST, SMILES_FILE, "failures.csv", "warnings.csv"):
        (root / name).unlink(missing_ok=True)


def _prepare(
    root: Path, smiles: list[str], source: str, options: dict, chunk_size: int, resume: bool
) -> tuple[dict, list[tuple[int, int]]]:
    """Open or start the store in ``root``; return its manifest and chunk bounds.

    Under the store's lock: a run beside this one may be opening the same store.
    """
    if root.exists() and not root.is_dir():
        raise InvalidInputError(f"--out {root} is a file; give a directory for the store")
    with _store_lock(root):
        return _open_or_start(root, smiles, source, options, chunk_size, resume)


def _open_or_start(
    root: Path, smiles: list[str], source: str, options: dict, chunk_size: int, resume: bool
) -> tuple[dict, list[tuple[int, int]]]:
    key = conformer_key(smiles, source, options)
    new = {
        "format": STORE_FORMAT,
        "version": CONFORMER_VERSION,
        "key": key,
        "source": source,
        "settings": options,
        "n_molecules": len(smiles),
        "chunk_size": chunk_size,
        "complete": False,
    }
    manifest_path = root / MANIFEST
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text())
        except ValueError:
            old = {}
        if old.get("format") != STORE_FORMAT:
            raise InvalidInputError(
                f"{root} has a {MANIFEST} that is not a fewmol conformer store; "
                "choose another output directory"
            )
        if resume and old.get("key") == key:
            old["complete"] = False  # until every chunk is verified again
            bounds = _chunk_bounds(len(smiles), int(old["chunk_size"]))
            return old, bounds
        if resume:
            try:
                old_smiles = json.loads((root / SMILES_FILE).read_text())
            except (OSError, ValueError):
                old_smiles = None
            raise InvalidInputError(
                f"{root} already holds a different conformer store: "
                f"{_describe_mismatch(old, new, old_smiles, smiles)}; write to another "
                "directory, or pass --no-resume (resume=False) to rebuild it"
            )
    _clear(root)  # a fresh build: drop chunks left without a manifest or from another store
    (root / CHUNKS).mkdir(parents=True, exist_ok=True)
    _write_text_atomic(root / SMILES_FILE, json.dumps(smiles))
    _write_text_atomic(manifest_path, json.dumps(new, indent=1))
    return new, _chunk_bounds(len(smiles), chunk_size)


@dataclass
class _Chunk:
    k: int
    start: int
    stop: int


@contextmanager
def _store_lock(root: Path) -> Iterator[None]:
    """Hold the store directory's lock (opening or finishing it) against concurrent runs."""
    if fcntl is None:
        yield
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network mounts): build alone
            pass
        yield  # closing the file releases the lock


# Descriptors of the chunk claims this process holds. A flock belongs to the open file
# description, which fork() shares with the child: a pool worker forked while the parent holds
# claims would keep them locked after the parent lets go. Forked children close their copies.
_CLAIM_FDS: set[int] = set()


def _close_claims_in_child() -> None:
    for fd in _CLAIM_FDS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _CLAIM_FDS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_claims_in_child)


class _ChunkQueue:
    """Unfinished chunks, claimed one at a time so that concurrent runs split them."""

    def __init__(self, root: Path, chunks: list[_Chunk], on_skip: Callable[[_Chunk], None]):
        self.root, self.on_skip = root, on_skip
        self.pending: deque[_Chunk] = deque(chunks)
        self.busy: deque[_Chunk] = deque()  # held by another run when we tried
        self.held: dict[int, int] = {}  # chunk -> lock file descriptor

    def __len__(self) -> int:
        return len(self.pending) + len(self.busy)

    def take(self) -> _Chunk | None:
        """The next chunk no run holds, now claimed by this one (None: none left free)."""
        while self.pending:
            c = self.pending.popleft()
            claimed = self._claim(c, block=False)
            if claimed is None:
                self.busy.append(c)
            elif claimed:
                return c
        return None

    def wait(self) -> _Chunk | None:
        """Wait for chunks other runs hold; the first one they left unfinished is ours."""
        while self.busy:
            c = self.busy.popleft()
            if self._claim(c, block=True):
                return c
        return None

    def _claim(self, c: _Chunk, block: bool) -> bool | None:
        """True: ours to generate; False: finished (by another run); None: held elsewhere."""
        if c.k in self.held or fcntl is None:
            return True
        fd = os.open(_chunk_path(self.root, c.k, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError:  # a file system without locks: generate it, as a lone run would
            pass
        except BaseException:
            os.close(fd)
            raise
        if _chunk_done(self.root, c.k, c.stop - c.start):
            os.close(fd)
            self.on_skip(c)
            return False
        self.held[c.k] = fd
        _CLAIM_FDS.add(fd)
        # temporaries of this chunk left by a killed run (a live run's are under its claim)
        for p in (self.root / CHUNKS).glob(f"*chunk_{c.k:06d}.*.tmp"):
            p.unlink(missing_ok=True)
        return True

    def release(self, c: _Chunk) -> None:
        """Drop the claim on a chunk (after its files are written)."""
        fd = self.held.pop(c.k, None)
        if fd is not None:
            _CLAIM_FDS.discard(fd)
            os.close(fd)

    def close(self) -> None:
        """Drop every claim (a stopped run's chunks become free for the others)."""
        for fd in self.held.values():
            _CLAIM_FDS.discard(fd)
            os.close(fd)
        self.held.clear()


def _finish(root: Path, manifest: dict, seconds: float | None) -> ConformerStore:
    """Check every chunk, write failures.csv/warnings.csv and mark the manifest complete."""
    with _store_lock(root):  # runs that built the store together finish it one at a time
        return _write_finish(root, manifest, seconds)


def _write_finish(root: Path, manifest: dict, seconds: float | None) -> ConformerStore:
    manifest = dict(manifest, complete=True)
    store = ConformerStore(root, _manifest=manifest)
    _write_csv_atomic(root / "failures.csv", store.failures)
    _write_csv_atomic(root / "warnings.csv", store.warnings)
    manifest["counts"] = {
        "molecules": len(store),
        "ok": int(store.ok_mask.sum()),
        "failed": int((~store.ok_mask).sum()),
        "warnings": len(store.warnings),
        "conformers": int(store.n_confs.sum()),
    }
    if seconds is not None:
        manifest["seconds_last_run"] = round(seconds, 3)
    _write_text_atomic(root / MANIFEST, json.dumps(manifest, indent=1))
    store.manifest = manifest
    return store


# ----------------------------------------------------------------------------- workers

_slots = None  # this worker's view of the shared array
_slot = -1  # and its slot number


def _init_worker(slots, lock) -> None:
    """Pool initializer: claim a slot in the shared array that the parent watches."""
    global _slots, _slot
    _slots = slots
    with lock:
        for s in range(len(slots) // _SLOT):
            if slots[s * _SLOT] == 0:
                slots[s * _SLOT] = os.getpid()
                slots[s * _SLOT + 1] = -1
                _slot = s
                break
    # the parent handles Ctrl-C; workers die with the pool instead of printing tracebacks
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _conformer_chunk(smiles: list[str], start: int, settings: dict, skip: dict[int, str]) -> dict:
    """Generate one chunk (runs in a worker, or in-process when workers=0)."""
    st = ConformerSettings.from_dict(settings)
    t0 = time.perf_counter()
    base = _slot * _SLOT if _slots is not None and _slot >= 0 else None
    if base is not None:
        _slots[base + 3] = 0
    results = []
    for j, s in enumerate(smiles):
        i = start + j
        if i in skip:
            results.append(ConformerResult(s, failure=skip[i]))
            continue
        if base is not None:
            _slots[base + 1] = -1  # no molecule while the start time changes
            _slots[base + 2] = time.time()
            _slots[base + 1] = i
        results.append(generate_conformers(s, st))
        if base is not None:
            _slots[base + 1] = -1
            _slots[base + 3] += 1
    packed = _pack(results, range(start, start + len(smiles)), start)
    packed["seconds"] = round(time.perf_counter() - t0, 3)
    return packed


def _in_flight(slots, n: int) -> list[tuple[int, int, float]]:
    """(pid, molecule index, start time) of every worker busy on a molecule."""
    out = []
    for s in range(n):
        b = s * _SLOT
        # read the index before the time: the worker clears the index while it sets the time
        pid, idx, t = int(slots[b]), int(slots[b + 1]), slots[b + 2]
        if pid and idx >= 0:
            out.append((pid, idx, t))
    return out


def _run_pool(
    queue: _ChunkQueue,
    smiles: list[str],
    settings: ConformerSettings,
    workers: int,
    on_done: Callable[[_Chunk, dict], None],
    tick: Callable[[int], None],
) -> None:
    """Run claimed chunks in worker processes, killing any worker stuck on one molecule too long.

    Chunks are claimed from ``queue`` as workers need them (two per worker in flight), so a run
    beside this one takes the others.
    """
    limit = kill_after_s(settings)
    skip: dict[int, str] = {}  # molecules that killed or crashed a worker: failed, not retried
    crashes: Counter[int] = Counter()
    todo: dict[int, _Chunk] = {}  # claimed by this run, not finished
    while todo or queue:
        n = max(1, min(workers, len(todo) + len(queue)))
        ctx = mp.get_context()
        slots, lock = ctx.Array("d", n * _SLOT, lock=False), ctx.Lock()
        pool = ProcessPoolExecutor(
            n, mp_context=ctx, initializer=_init_worker, initargs=(slots, lock)
        )
        futures: dict[Future, _Chunk] = {}

        def submit(c: _Chunk, pool: ProcessPoolExecutor = pool, futures: dict = futures) -> None:
            sub = {i: r for i, r in skip.items() if c.start <= i < c.stop}
            fut = pool.submit(
                _conformer_chunk, smiles[c.start : c.stop], c.start, settings.to_dict(), sub
            )
            futures[fut] = c

        killed = False
        try:
            for c in todo.values():  # claimed before a worker was killed
                submit(c)
            while True:
                while len(futures) < 2 * n and (c := queue.take()) is not None:
                    todo[c.k] = c
                    submit(c)
                if not futures:
                    # nothing free: wait for chunks another run holds (it may die: then ours)
                    if (c := queue.wait()) is None:
                        break
                    todo[c.k] = c
                    submit(c)
                done, _ = wait(futures, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                broken = False
                for f in done:
                    c = futures.pop(f)
                    try:
                        packed = f.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    on_done(c, packed)
                    del todo[c.k]
                busy = _in_flight(slots, n)
                if broken:
                    # a worker died without us killing it (a crash inside RDKit, the OOM
                    # killer): a molecule in flight during two such deaths is failed
                    if not busy:
                        raise RuntimeError("conformer worker processes died unexpectedly")
                    for _, idx, _ in busy:
                        crashes[idx] += 1
                        if crashes[idx] >= 2:
                            skip[idx] = "worker process crashed while processing this molecule"
                    break
                now = time.time()
                for pid, idx, t in busy:
                    if now - t > limit:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            continue
                        skip[idx] = (
                            f"timed out after {settings.timeout_s:g} s (worker killed after "
                            f"{now - t:.1f} s)"
                        )
                        killed = True
                if killed:
                    break
                tick(int(sum(slots[s * _SLOT + 3] for s in range(n))))
        except BaseException:
            # Ctrl-C (or a bug here): stop our workers now rather than wait for their chunks;
            # finished chunks are on disk, so rerunning resumes
            for s in range(n):
                pid = int(slots[s * _SLOT])
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        # chunks that finished while the pool was breaking are kept
        for f, c in futures.items():
            if f.done() and not f.cancelled() and f.exception() is None and c.k in todo:
                on_done(c, f.result())
                del todo[c.k]


@contextmanager
def _progress_bar(total: int, progress: bool | Progress) -> Iterator[Progress]:
    """A callback (done, total): the caller's, a rich bar on a terminal, or a no-op."""
    if callable(progress):
        yield progress
        return
    if not progress or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("conformers"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("conformers", total=total)
        yield lambda done, total: bar.update(task, completed=done)


# ----------------------------------------------------------------------------- public API


def build_conformer_store(
    smiles: Sequence[str],
    out_dir: str | os.PathLike[str],
    settings: ConformerSettings | None = None,
    workers: int | None = None,
    chunk_size: int = 256,
    progress: bool | Progress = True,
    resume: bool = True,
) -> ConformerStore:
    """Generate conformers for canonical SMILES into a store directory (parallel, resumable).

    ``workers``: processes (default: all cores); 0 runs in this process, without the hard
    time limit (debugging). ``chunk_size``: most molecules per chunk; smaller for small inputs
    so every worker gets work; a resumed store keeps its own. ``progress``: True for a bar on
    a terminal, or a callback ``(done, total)``. ``resume=False`` rebuilds the directory.
    """
    t0 = time.perf_counter()
    smiles = [str(s) for s in smiles]
    settings = settings or ConformerSettings()
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 0:
        raise InvalidInputError(f"workers must be >= 0, got {workers}")
    if chunk_size < 1:
        raise InvalidInputError(f"chunk_size must be >= 1, got {chunk_size}")
    root = Path(out_dir)
    # at least ~4 chunks per worker, so the last chunks do not leave cores idle
    size = min(chunk_size, max(1, math.ceil(len(smiles) / (4 * max(workers, 1)))))
    manifest, bounds = _prepare(root, smiles, "rdkit-etkdg", settings.to_dict(), size, resume)
    chunks = [_Chunk(k, a, b) for k, (a, b) in enumerate(bounds) if not _chunk_done(root, k, b - a)]
    done_before = len(smiles) - sum(c.stop - c.start for c in chunks)
    with _progress_bar(len(smiles), progress) as report:
        finished = [done_before]
        report(finished[0], len(smiles))

        def count(c: _Chunk) -> None:
            finished[0] += c.stop - c.start
            report(finished[0], len(smiles))

        queue = _ChunkQueue(root, chunks, on_skip=count)

        def on_done(c: _Chunk, packed: dict) -> None:
            _save_chunk(root, c.k, c.start, c.stop, packed)
            queue.release(c)
            count(c)

        try:
            if workers == 0:
                while (c := queue.take() or queue.wait()) is not None:
                    on_done(
                        c,
                        _conformer_chunk(smiles[c.start : c.stop], c.start, settings.to_dict(), {}),
                    )
            elif chunks:
                _run_pool(
                    queue,
                    smiles,
                    settings,
                    workers,
                    on_done,
                    lambda in_chunks: report(
                        min(finished[0] + in_chunks, len(smiles)), len(smiles)
                    ),
                )
        finally:
            queue.close()
    return _finish(root, manifest, time.perf_counter() - t0)


def write_conformer_store(
    out_dir: str | os.PathLike[str],
    smiles: Sequence[str],
    results: Sequence[ConformerResult],
    source: str,
    options: dict,
    source_ids: Sequence[int] | None = None,
    chunk_size: int = 4096,
    resume: bool = True,
) -> ConformerStore:
    """Write already computed conformers (SDF, QM9) as a store (same resume rules as build)."""
    smiles = [str(s) for s in smiles]
    if len(results) != len(smiles):
        raise ValueError("one result per SMILES is needed")
    ids = np.arange(len(smiles)) if source_ids is None else np.asarray(source_ids, np.int64)
    root = Path(out_dir)
    manifest, bounds = _prepare(root, smiles, source, options, chunk_size, resume)
    for k, (a, b) in enumerate(bounds):
        if not _chunk_done(root, k, b - a):
            _save_chunk(root, k, a, b, _pack(results[a:b], ids[a:b], a))
    return _finish(root, manifest, None)


def open_if_current(
    out_dir: str | os.PathLike[str], smiles: Sequence[str], source: str, options: dict
) -> ConformerStore | None:
    """The complete store in ``out_dir`` if it was built from exactly these inputs, else None."""
    try:
        store = ConformerStore(out_dir)
    except InvalidInputError:
        return None
    return store if store.key == conformer_key(list(smiles), source, options) else None


class ConformerStore:
    """A finished conformer store directory, read into memory (flat CSR arrays)."""

    def __init__(self, path: str | os.PathLike[str], *, _manifest: dict | None = None):
        self.path = Path(path)
        if _manifest is None:
            if not is_store(self.path):
                raise InvalidInputError(
                    f"{self.path} is not a conformer store (no {MANIFEST}); build one with "
                    "`fewmol conformers`"
                )
            _manifest = json.loads((self.path / MANIFEST).read_text())
        self.manifest = _manifest
        self.smiles: list[str] = json.loads((self.path / SMILES_FILE).read_text())
        n = len(self.smiles)
        bounds = _chunk_bounds(n, int(_manifest["chunk_size"]))
        missing = [
            k for k, (a, b) in enumerate(bounds) if not _chunk_path(self.path, k, ".npz").is_file()
        ]
        if missing or not _manifest.get("complete"):
            raise InvalidInputError(
                f"conformer store {self.path} is incomplete ({len(missing)} of {len(bounds)} "
                "chunks missing); rerun the same `fewmol conformers` command to resume it"
            )
        parts: dict[str, list[np.ndarray]] = {}
        failures: list[dict] = []
        warnings: list[dict] = []
        for k, (a, b) in enumerate(bounds):
            try:
                with np.load(_chunk_path(self.path, k, ".npz"), allow_pickle=False) as f:
                    for name in f.files:
                        parts.setdefault(name, []).append(f[name])
                report = json.loads(_chunk_path(self.path, k, ".json").read_text())
            except _UNREADABLE as e:
                raise InvalidInputError(
                    f"conformer store {self.path}: chunk {k} is unreadable ({e}); delete it and "
                    "rerun the same command to regenerate it"
                ) from None
            if parts["n_atoms"][-1].shape[0] != b - a:
                raise InvalidInputError(f"conformer store {self.path}: chunk {k} has a wrong size")
            failures += report["failures"]
            warnings += report["warnings"]
        empty = {
            "n_atoms": np.zeros(0, np.int32),
            "n_confs": np.zeros(0, np.int32),
            "forcefield": np.zeros(0, np.int8),
            "source_id": np.zeros(0, np.int64),
            "z": np.zeros(0, np.uint8),
            "pos": np.zeros((0, 3), np.float32),
            "energy": np.zeros(0),
        }
        cat = {
            name: np.concatenate(parts[name]) if name in parts else v for name, v in empty.items()
        }
        self.n_atoms: np.ndarray = cat["n_atoms"].astype(np.int64)
        self.n_confs: np.ndarray = cat["n_confs"].astype(np.int64)
        self.forcefield_code: np.ndarray = cat["forcefield"]
        self.source_id: np.ndarray = cat["source_id"]
        self.z: np.ndarray = cat["z"]
        self.pos: np.ndarray = cat["pos"]
        self.energy: np.ndarray = cat["energy"]
        # CSR offsets: atoms of molecule i are z[atom_ptr[i]:atom_ptr[i+1]], its conformers
        # pos[pos_ptr[i]:pos_ptr[i+1]] (n_confs * n_atoms rows), energies energy[conf_ptr[i]:...]
        self.atom_ptr = np.concatenate([[0], np.cumsum(self.n_atoms)])
        self.pos_ptr = np.concatenate([[0], np.cumsum(self.n_atoms * self.n_confs)])
        self.conf_ptr = np.concatenate([[0], np.cumsum(self.n_confs)])
        self.failures = pd.DataFrame(failures, columns=REPORT_COLUMNS)
        self.warnings = pd.DataFrame(warnings, columns=REPORT_COLUMNS)

    def __len__(self) -> int:
        return len(self.smiles)

    def __repr__(self) -> str:
        return (
            f"ConformerStore({str(self.path)!r}, molecules={len(self)}, "
            f"ok={int(self.ok_mask.sum())}, conformers={int(self.n_confs.sum())})"
        )

    @property
    def key(self) -> str:
        """The cache key the store was built for."""
        return str(self.manifest["key"])

    @property
    def source(self) -> str:
        """Where the conformers come from: 'rdkit-etkdg', 'sdf' or 'qm9'."""
        return str(self.manifest["source"])

    @property
    def options(self) -> dict:
        """Generation settings, or the SDF/QM9 reader's options, as stored in the manifest."""
        return dict(self.manifest["settings"])

    @property
    def settings(self) -> ConformerSettings | None:
        """The ConformerSettings of a generated store (None for SDF/QM9 stores)."""
        if self.source != "rdkit-etkdg":
            return None
        return ConformerSettings.from_dict(self.options)

    @property
    def ok_mask(self) -> np.ndarray:
        """Boolean [n]: True where the molecule has at least one conformer."""
        return self.n_confs > 0

    @property
    def forcefield(self) -> np.ndarray:
        """Force field name per molecule ('MMFF94', 'UFF', 'none'; '' for failed ones)."""
        names = np.array([*FORCEFIELDS, ""], dtype=object)
        return names[self.forcefield_code.astype(np.int64)]  # -1 -> ''

    def reason(self, i: int) -> str | None:
        """Why molecule i has no conformers (None if it has some)."""
        hit = self.failures.loc[self.failures["index"] == i, "reason"]
        return str(hit.iloc[0]) if len(hit) else None

    def _check(self, i: int) -> int:
        if not -len(self) <= i < len(self):
            raise IndexError(f"molecule index {i} out of range for {len(self)} molecules")
        i = int(i) % len(self)
        if not self.ok_mask[i]:
            raise ValueError(f"molecule {i} ({self.smiles[i]}) has no conformers: {self.reason(i)}")
        return i

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(z [n_atoms] int64, pos [n_confs, n_atoms, 3] float32) of molecule i."""
        i = self._check(i)
        na, nc = int(self.n_atoms[i]), int(self.n_confs[i])
        z = self.z[self.atom_ptr[i] : self.atom_ptr[i + 1]].astype(np.int64)
        pos = self.pos[self.pos_ptr[i] : self.pos_ptr[i + 1]].reshape(nc, na, 3)
        return z, pos

    def energies(self, i: int) -> np.ndarray:
        """Force-field energies (kcal/mol, ascending) of molecule i's conformers."""
        i = self._check(i)
        return self.energy[self.conf_ptr[i] : self.conf_ptr[i + 1]]

    def batch(
        self,
        indices: Sequence[int] | np.ndarray,
        conf: int | Sequence[int] | np.ndarray = 0,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat (z [A] int64, pos [A, 3] float32, batch [A] int64) for SchNet, one conformer each.

        ``conf`` (one int or one per molecule) is taken modulo each molecule's conformer count,
        so ``conf=epoch`` cycles through them; with ``rng`` a random conformer is drawn instead.
        Failed molecules (``~ok_mask``) raise ValueError.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"molecule indices out of range for {len(self)} molecules")
        idx = idx % max(len(self), 1)
        nc = self.n_confs[idx]
        bad = idx[nc == 0]
        if bad.size:
            raise ValueError(
                f"{bad.size} molecule(s) without conformers requested (e.g. index {bad[0]}: "
                f"{self.reason(int(bad[0]))}); select molecules with ok_mask"
            )
        if rng is not None:
            c = rng.integers(0, nc)
        else:
            c = np.broadcast_to(np.asarray(conf, dtype=np.int64), idx.shape) % nc
        na = self.n_atoms[idx]
        batch = np.repeat(np.arange(idx.size, dtype=np.int64), na)
        # position of each output atom within its molecule, without a Python loop
        first = np.concatenate([[0], np.cumsum(na)[:-1]])
        within = np.arange(batch.size, dtype=np.int64) - first[batch]
        z = self.z[self.atom_ptr[idx][batch] + within].astype(np.int64)
        rows = (self.pos_ptr[idx] + c * na)[batch] + within
        return z, self.pos[rows], batch
