"""On-disk cache of featurised graphs, computed in parallel processes and written atomically.

A set of molecules is keyed by a hash of (featuriser name + version, the canonical SMILES in
order). Work is split into chunks; each finished chunk is written with an atomic rename, so a
killed job resumes from the chunks already on disk and a half-written file is never read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from fewmol.chem.featurize import featurize_many, get_featurizer
from fewmol.chem.motifs import FUNCTIONAL_GROUPS, motif_labels, motif_source
from fewmol.data.collate import GraphSet

CHUNK = 4096
# what np.load raises on a truncated, empty or garbled .npz: treat as a cache miss
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def cache_root() -> Path:
    """Cache directory: ``$FEWMOL_CACHE`` or ``~/.cache/fewmol``."""
    return Path(os.environ.get("FEWMOL_CACHE", Path.home() / ".cache" / "fewmol"))


def features_key(smiles: Sequence[str], featurizer: str) -> str:
    """Hash of featuriser version and the ordered canonical SMILES."""
    h = hashlib.sha256(get_featurizer(featurizer).key.encode())
    for s in smiles:
        h.update(b"\n")
        h.update(s.encode())
    return h.hexdigest()[:32]


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed .npz through a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_graphset(path: Path) -> GraphSet:
    """Read a GraphSet written by :func:`save_npz_atomic` (no pickle allowed)."""
    with np.load(path, allow_pickle=False) as z:
        return GraphSet(z["x"], z["edge_index"], z["edge_attr"], z["atom_ptr"], z["edge_ptr"])


def _featurize_chunk(args: tuple[list[str], str]) -> GraphSet:
    smiles, featurizer = args
    spec = get_featurizer(featurizer)
    return GraphSet.from_graphs(
        featurize_many(smiles, featurizer), len(spec.atom_dims), len(spec.bond_dims)
    )


def featurize_to_graphset(
    smiles: Sequence[str],
    featurizer: str = "hu2019",
    workers: int = 1,
    cache: bool = True,
    cache_dir: Path | None = None,
) -> GraphSet:
    """Featurise canonical SMILES into one GraphSet, using and filling the on-disk cache."""
    smiles = list(smiles)
    key = features_key(smiles, featurizer)
    root = (cache_dir or cache_root() / "features") / featurizer
    final = root / f"{key}.npz"
    if cache and final.exists():
        try:
            return load_graphset(final)
        except _UNREADABLE:
            final.unlink(missing_ok=True)  # corrupt cache entry: rebuild it
    chunks = [smiles[i : i + CHUNK] for i in range(0, len(smiles), CHUNK)]
    parts_dir = root / f"{key}.parts"
    parts: list[GraphSet | None] = [None] * len(chunks)
    todo = []
    for k in range(len(chunks)):
        p = parts_dir / f"{k:06d}.npz"
        if cache and p.exists():
            try:
                parts[k] = load_graphset(p)
                continue
            except _UNREADABLE:
                p.unlink(missing_ok=True)
        todo.append(k)
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(_featurize_chunk, [(chunks[k], featurizer) for k in todo])
            for k, gs in zip(todo, results):
                parts[k] = gs
                if cache and len(chunks) > 1:
                    save_npz_atomic(parts_dir / f"{k:06d}.npz", gs.arrays())
    else:
        for k in todo:
            parts[k] = _featurize_chunk((chunks[k], featurizer))
            if cache and len(chunks) > 1:
                save_npz_atomic(parts_dir / f"{k:06d}.npz", parts[k].arrays())
    spec = get_featurizer(featurizer)
    gs = (
        GraphSet.concat(parts)
        if parts
        else GraphSet.from_graphs([], len(spec.atom_dims), len(spec.bond_dims))
    )
    if cache:
        save_npz_atomic(final, gs.arrays())
        shutil.rmtree(parts_dir, ignore_errors=True)
    return gs


def motifs_key(smiles: Sequence[str]) -> str:
    """Hash of the functional-group pattern set (RDKit version) and the ordered SMILES."""
    h = hashlib.sha256(motif_source().encode())
    for s in smiles:
        h.update(b"\n")
        h.update(s.encode())
    return h.hexdigest()[:32]


def _motif_chunk(smiles: list[str]) -> np.ndarray:
    return motif_labels(smiles)


def motif_labels_cached(
    smiles: Sequence[str], workers: int = 1, cache: bool = True, cache_dir: Path | None = None
) -> np.ndarray:
    """(n, 85) uint8 functional-group labels of canonical SMILES, computed once and cached.

    Cached beside the features (``$FEWMOL_CACHE/motifs/<key>.npz``, atomic write), keyed by
    the SMILES and the RDKit version; ``workers`` processes compute chunks of ``CHUNK``.
    """
    smiles = list(smiles)
    final = (cache_dir or cache_root() / "motifs") / f"{motifs_key(smiles)}.npz"
    if cache and final.exists():
        try:
            with np.load(final, allow_pickle=False) as z:
                return z["labels"]
        except _UNREADABLE:
            final.unlink(missing_ok=True)
    chunks = [smiles[i : i + CHUNK] for i in range(0, len(smiles), CHUNK)]
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_motif_chunk, chunks))
    else:
        parts = [_motif_chunk(c) for c in chunks]
    labels = np.concatenate(parts) if parts else np.zeros((0, len(FUNCTIONAL_GROUPS)), np.uint8)
    if cache:
        save_npz_atomic(final, {"labels": labels})
    return labels
