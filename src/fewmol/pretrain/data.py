"""Pre-training data: 2D graph sets, and 2D graphs aligned with their 3D conformers.

* :func:`resolve_pretrain_data` turns DATA (a conformer store dir, a CSV of SMILES, a dataset
  name such as ``moses``, or ``qm9``) into a :class:`PretrainData`. GraphMVP methods need
  conformers: for SMILES input they are generated once into
  ``$FEWMOL_CACHE/conformers/etkdg-<key>`` (``build_conformer_store``) and reused by every
  later run on the same molecules and settings.
* 3D sets keep only the molecules of the store that have conformers (``ok_mask``) and whose
  stored atoms are the 2D graph's atoms (atomic numbers compared atom by atom); every other
  molecule is listed in :attr:`PretrainData.excluded` with its reason.
* :class:`ConformerSampler` decides which conformer each molecule contributes in an epoch, and
  :class:`Collate3D` batches a molecule's 2D graph with that conformer (:class:`Batch3D`).

Conformer sampling and GraphMVP. GraphMVP's GEOM set stores every (molecule, conformer) pair as
its own item, so one epoch visits each of the C conformers once (C x 50k items per epoch). Our
default (``cycle``) keeps one item per molecule per epoch: molecule m uses conformer
``(o_m + epoch) mod C_m``, with a random offset ``o_m`` drawn once from the run's seed. Every
conformer is used once in any C consecutive epochs, an epoch costs 1/C of GraphMVP's, and the
choice depends only on (seed, epoch), so a resumed or multi-GPU run sees the same pairs.
``all`` reproduces GraphMVP's epoch of every pair.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from fewmol.chem.conformers import ConformerSettings
from fewmol.data import registry
from fewmol.data.collate import GraphBatch, GraphSet
from fewmol.data.conformer_store import (
    ConformerStore,
    build_conformer_store,
    conformer_key,
    is_store,
    open_if_current,
)
from fewmol.data.store import cache_root, features_key, featurize_to_graphset
from fewmol.data.tables import Table, read_table
from fewmol.errors import InvalidInputError

__all__ = [
    "CONF_SAMPLING",
    "DEFAULT_MAX_MOLECULES",
    "METHODS_2D",
    "METHODS_3D",
    "PRETRAIN_METHODS",
    "Batch3D",
    "Collate3D",
    "ConformerSampler",
    "PretrainData",
    "atoms_match",
    "resolve_pretrain_data",
    "sample_indices",
]

METHODS_3D = ("graphmvp", "graphmvp-g", "graphmvp-c")
METHODS_2D = (
    "attrmask",
    "contextpred",
    "edgepred",
    "infograph",
    "gpt-gnn",
    "graphlog",
    "g-contextual",
    "g-motif",
    "graphcl",
    "joao",
)
PRETRAIN_METHODS = METHODS_3D + METHODS_2D
CONF_SAMPLING = ("cycle", "all")
DEFAULT_MAX_MOLECULES = 50_000
DATA_SEED = 0  # the molecule sample is fixed, whatever the training --seed
_OFFSET_STREAM = 7_919  # second seed word of the per-molecule conformer offsets
EXCLUDED_COLUMNS = ["index", "smiles", "reason"]


# ----------------------------------------------------------------------------- the data set


@dataclass
class PretrainData:
    """Molecules to pre-train on: 2D graphs and, for GraphMVP, their conformers.

    ``graphs[i]`` is molecule ``smiles[i]``; with a store, its conformers are store molecule
    ``store_index[i]`` (C_i = ``store.n_confs[store_index[i]]``).
    """

    graphs: GraphSet
    smiles: list[str]
    info: dict[str, Any]
    """JSON-ready description (source, counts, exclusions, cache keys) for config.json"""
    store: ConformerStore | None = None
    store_index: np.ndarray | None = None
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EXCLUDED_COLUMNS))
    """store molecules left out: index (in the store), smiles, reason"""
    table: Table | None = field(default=None, repr=False)
    """the input table when DATA was a CSV or a dataset (for bad_rows.csv)"""
    graph_labels: np.ndarray | None = field(default=None, repr=False)
    """per-molecule targets a 2D method trains on (G-Motif's functional groups), (n, k)"""

    def __len__(self) -> int:
        return len(self.smiles)

    @property
    def is_3d(self) -> bool:
        """Whether conformers are attached."""
        return self.store is not None

    @property
    def n_confs(self) -> np.ndarray:
        """Conformers per molecule, int64 (n,); ones for a 2D set."""
        if self.store is None:
            return np.ones(len(self), np.int64)
        return self.store.n_confs[self.store_index]


def sample_indices(n: int, k: int | None, seed: int = DATA_SEED) -> np.ndarray:
    """``k`` of ``range(n)`` drawn without replacement with ``seed``, in ascending order.

    All of them when ``k`` is None or >= n. Ascending keeps the input order (and the cache key
    of a sample does not depend on how the draw was ordered).
    """
    if k is None or k >= n:
        return np.arange(n, dtype=np.int64)
    if k < 1:
        raise InvalidInputError(f"--max-molecules must be >= 1, got {k}")
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False)).astype(np.int64)


def _short_reason(reason: str) -> str:
    """'timed out after 10 s (worker killed after 12.6 s)' -> 'timed out after 10 s'."""
    return re.sub(r"\s*\(.*$", "", str(reason))


def _reason_counts(excluded: pd.DataFrame) -> dict[str, int]:
    """Excluded molecules per (shortened) reason, most frequent first."""
    counts = Counter(_short_reason(r) for r in excluded["reason"])
    return dict(counts.most_common())


def atoms_match(graphs: GraphSet, store: ConformerStore, store_index: np.ndarray) -> np.ndarray:
    """Per molecule: the store's atoms are the 2D graph's atoms, in the same order.

    Compares ``z`` of the store with ``x[:, 0] + 1`` (both featurisers put the atomic number
    minus one in column 0) over the graph's atoms, all molecules at once. A store with
    hydrogens may have more atoms (the H follow the heavy atoms); otherwise the counts must be
    equal. Shapes: store_index (n,) -> bool (n,).
    """
    idx = np.asarray(store_index, np.int64)
    n2 = graphs.num_atoms()
    n3 = store.n_atoms[idx]
    with_h = bool(store.options.get("keep_hs", False))
    size_ok = n3 >= n2 if with_h else n3 == n2
    n = np.minimum(n2, n3)
    mol = np.repeat(np.arange(len(idx), dtype=np.int64), n)
    within = np.arange(mol.size, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    z3 = store.z[store.atom_ptr[idx][mol] + within].astype(np.int64)
    z2 = graphs.x[graphs.atom_ptr[:-1][mol] + within, 0] + 1
    bad = np.bincount(mol[z3 != z2], minlength=len(idx)) > 0
    return size_ok & ~bad


def _from_store(
    store: ConformerStore,
    featurizer: str,
    workers: int,
    max_molecules: int | None,
    need_3d: bool,
) -> PretrainData:
    """Molecules of a store with conformers (a seeded sample if too many), aligned 2D + 3D."""
    ok = np.flatnonzero(store.ok_mask)
    failed = store.failures.copy()
    keep = ok[sample_indices(len(ok), max_molecules)]
    smiles = [store.smiles[i] for i in keep]
    graphs = featurize_to_graphset(smiles, featurizer, workers=max(workers, 1))
    match = atoms_match(graphs, store, keep)
    if not match.all():
        # an SDF/QM9 store mapped onto other SMILES, or a featuriser change: never pair a
        # molecule's graph with another molecule's coordinates
        bad = keep[~match]
        mismatch = pd.DataFrame(
            {
                "index": bad,
                "smiles": [store.smiles[i] for i in bad],
                "reason": "stored atoms differ from the 2D graph's atoms",
            }
        )
        failed = pd.concat([failed, mismatch], ignore_index=True) if len(failed) else mismatch
        graphs = graphs.subset(np.flatnonzero(match))
        keep = keep[match]
        smiles = [store.smiles[i] for i in keep]
    excluded = failed[EXCLUDED_COLUMNS].sort_values("index", kind="stable").reset_index(drop=True)
    n_confs = store.n_confs[keep]
    info: dict[str, Any] = {
        "store": str(store.path.resolve()),
        "store_key": store.key,
        "conformer_source": store.source,
        "conformer_settings": store.options,
        "n_store_molecules": len(store),
        "n_with_conformers": len(ok),
        "n_excluded": len(excluded),
        "excluded_reasons": _reason_counts(excluded),
        "n_molecules": len(smiles),
        "max_molecules": max_molecules,
        "hydrogens": bool(store.options.get("keep_hs", False)),
        "features_key": features_key(smiles, featurizer),
    }
    if need_3d:
        info.update(
            n_conformers=int(n_confs.sum()),
            conformers_per_molecule={
                "min": int(n_confs.min()) if len(n_confs) else 0,
                "mean": float(n_confs.mean()) if len(n_confs) else 0.0,
                "max": int(n_confs.max()) if len(n_confs) else 0,
            },
        )
        return PretrainData(graphs, smiles, info, store, keep, excluded)
    return PretrainData(graphs, smiles, info, excluded=excluded)


def _generated_store(
    smiles: list[str], num_confs: int, workers: int | None, progress: bool
) -> ConformerStore:
    """The cached ETKDG store of these molecules: reused when complete, else built/resumed."""
    settings = ConformerSettings(num_confs=num_confs)
    key = conformer_key(smiles, "rdkit-etkdg", settings.to_dict())
    out = cache_root() / "conformers" / f"etkdg-{key[:16]}"
    hit = open_if_current(out, smiles, "rdkit-etkdg", settings.to_dict())
    if hit is not None:
        return hit
    # resume=True continues a build that was killed half-way (its chunks are on disk)
    return build_conformer_store(
        smiles, out, settings, workers=workers, progress=progress, resume=True
    )


def _read_smiles_table(
    data: str, smiles_col: str | None, data_dir: Path | None, max_molecules: int | None
) -> tuple[Table, dict[str, Any]]:
    """Canonical, de-duplicated SMILES of a CSV path or a named dataset, sampled to the limit.

    A CSV is validated whole (bad rows keep their file row numbers), then sampled. A named
    dataset is sampled first, on raw rows: canonicalising all 1.6M MOSES rows would take
    minutes to keep 50k of them.
    """
    path = Path(data)
    if path.is_file():
        table = read_table(
            path, smiles_col, None, None, "skip", require_targets=False, duplicates="merge"
        )
        n_rows = table.n_input
        sel = sample_indices(len(table.smiles), max_molecules)
        table.smiles = [table.smiles[i] for i in sel]
        table.rows = table.rows[sel]
        return table, {"source": str(path.resolve()), "n_input_rows": n_rows}
    spec = registry.get_spec(data)
    file = registry.table_path(spec, registry.resolve(spec, data_dir))
    # only the SMILES column: nothing else is needed
    frame = pd.read_csv(file, usecols=[spec.smiles_col], dtype=str, keep_default_na=False)
    n_rows = len(frame)
    frame = frame.iloc[sample_indices(n_rows, max_molecules)].reset_index(drop=True)
    table = read_table(
        frame, spec.smiles_col, None, None, "skip", require_targets=False, duplicates="merge"
    )
    return table, {"source": spec.name, "n_input_rows": n_rows}


def resolve_pretrain_data(
    data: str,
    method: str,
    *,
    featurizer: str = "hu2019",
    max_molecules: int | None = DEFAULT_MAX_MOLECULES,
    num_confs: int = 5,
    workers: int | None = None,
    smiles_col: str | None = None,
    data_dir: Path | None = None,
    progress: bool = True,
) -> PretrainData:
    """Pre-training molecules for ``method`` from DATA.

    DATA: a conformer store directory (``fewmol conformers``), a CSV/TSV of SMILES, a dataset
    name (``moses``: the default pre-training set; any registry set with SMILES), or ``qm9``
    (DFT geometries, one conformer each). ``max_molecules``: a sample of that many molecules
    drawn with a fixed seed (kept in input order); None keeps all. For GraphMVP methods on
    SMILES input, ``num_confs`` conformers per molecule are generated once (``workers``
    processes; 0 = in this process) and cached. A store used by a 2D method contributes the
    molecules that have conformers, so 2D and 3D baselines on one store see the same set.
    """
    if method not in PRETRAIN_METHODS:
        raise InvalidInputError(
            f"unknown pre-training method {method!r}; choose one of {', '.join(PRETRAIN_METHODS)}"
        )
    need_3d = method in METHODS_3D
    path = Path(data)
    n_workers = 1 if workers is None else int(workers)
    if path.is_dir():
        if not is_store(path):
            raise InvalidInputError(
                f"{path} is a directory but not a conformer store; build one with "
                f"`fewmol conformers SMILES.csv --out {path}` or pass a CSV of SMILES"
            )
        out = _from_store(ConformerStore(path), featurizer, n_workers, max_molecules, need_3d)
        out.info.update(source=str(path.resolve()), kind="conformer store")
        return out
    if not path.exists() and data.strip().lower() == "qm9":
        from fewmol.data.geometry import load_qm9  # RDKit bond perception; only needed here

        qm9_dir = registry.resolve("qm9", data_dir, download=False)
        store = load_qm9(qm9_dir, limit=max_molecules, seed=DATA_SEED, workers=max(n_workers, 1))
        # load_qm9 already drew the sample: take every molecule it kept
        out = _from_store(store, featurizer, n_workers, None, need_3d)
        out.info.update(source="qm9", kind="QM9 DFT geometries", max_molecules=max_molecules)
        return out
    if not path.exists() and not registry.is_registered(data):
        raise InvalidInputError(
            f"--data {data!r} is neither a file, a conformer store, 'qm9' nor a known dataset "
            f"(known: {', '.join(registry.names())})"
        )
    table, base = _read_smiles_table(data, smiles_col, data_dir, max_molecules)
    smiles = list(table.smiles)
    base.update(
        kind="SMILES table",
        n_invalid_rows=table.n_invalid,
        sample_seed=DATA_SEED,
    )
    if need_3d:
        store = _generated_store(smiles, num_confs, workers, progress)
        out = _from_store(store, featurizer, n_workers, None, True)
        out.info = {**base, **out.info, "max_molecules": max_molecules}
    else:
        graphs = featurize_to_graphset(smiles, featurizer, workers=max(n_workers, 1))
        info = {
            **base,
            "n_molecules": len(smiles),
            "max_molecules": max_molecules,
            "features_key": features_key(smiles, featurizer),
        }
        out = PretrainData(graphs, smiles, info)
    out.table = table
    return out


# ----------------------------------------------------------------------------- batching


class Batch3D(NamedTuple):
    """A batch of 2D graphs and, row-aligned by molecule, one conformer of each.

    Shapes: ``z`` (n_atoms_3d,) int64 atomic numbers, ``pos`` (n_atoms_3d, 3) float32 Å,
    ``batch`` (n_atoms_3d,) molecule of each 3D atom (same numbering as ``graph.batch``);
    ``conf`` (n_molecules,) which conformer each molecule contributed.
    """

    graph: GraphBatch
    z: torch.Tensor
    pos: torch.Tensor
    batch: torch.Tensor
    conf: torch.Tensor

    @property
    def num_graphs(self) -> int:
        """Molecules in the batch."""
        return self.graph.num_graphs

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch3D:
        """Move every tensor to ``device`` (Lightning calls this)."""
        return Batch3D(
            self.graph.to(device, non_blocking),
            self.z.to(device, non_blocking=non_blocking),
            self.pos.to(device, non_blocking=non_blocking),
            self.batch.to(device, non_blocking=non_blocking),
            self.conf.to(device, non_blocking=non_blocking),
        )


class Collate3D:
    """Picklable collate: (molecule position, conformer) pairs -> :class:`Batch3D`."""

    def __init__(self, data: PretrainData):
        if data.store is None or data.store_index is None:
            raise ValueError("Collate3D needs a PretrainData with conformers")
        self.graphs, self.store, self.store_index = data.graphs, data.store, data.store_index

    def __call__(self, items: Sequence[tuple[int, int]]) -> Batch3D:
        """Batch the 2D graphs of the molecules and the chosen conformer of each."""
        pairs = np.asarray(items, dtype=np.int64).reshape(-1, 2)
        mol, conf = pairs[:, 0], pairs[:, 1]
        graph = self.graphs.collate(mol)
        z, pos, batch = self.store.batch(self.store_index[mol], conf=conf)
        return Batch3D(
            graph,
            torch.from_numpy(z),
            torch.from_numpy(np.ascontiguousarray(pos)),
            torch.from_numpy(batch),
            torch.from_numpy(conf),
        )


class _Items(Dataset):
    """Dataset whose items are what the sampler yields ((molecule, conformer) pairs)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, item: tuple[int, int]) -> tuple[int, int]:
        return item


class ConformerSampler(Sampler[tuple[int, int]]):
    """Shuffled (molecule, conformer) pairs per epoch, seeded by (seed, epoch): resumable.

    ``cycle``: each molecule once per epoch, conformer ``(offset + epoch) mod C`` with
    per-molecule offsets drawn from ``seed``; ``all``: every (molecule, conformer) pair once
    per epoch (GraphMVP's epoch). Molecule order is the same permutation as
    :class:`~fewmol.data.loaders.EpochSeededSampler` with the same seed; ``skip`` leaves out
    the first pairs of that order (a run resumed in the middle of an epoch).
    """

    def __init__(
        self,
        n_confs: np.ndarray,
        seed: int,
        epoch_offset: int = 0,
        mode: str = "cycle",
        skip: int = 0,
    ):
        if mode not in CONF_SAMPLING:
            raise ValueError(f"conformer sampling must be one of {CONF_SAMPLING}, got {mode!r}")
        self.n_confs = np.asarray(n_confs, np.int64)
        if (self.n_confs < 1).any():
            raise ValueError("every molecule needs at least one conformer")
        self.seed, self.epoch, self.epoch_offset, self.mode = seed, 0, epoch_offset, mode
        self.offsets = np.random.default_rng([seed, _OFFSET_STREAM]).integers(0, self.n_confs)
        self.skip = min(max(int(skip), 0), self._full_len())

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def pairs(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(molecule, conformer) arrays of absolute epoch ``epoch``, in visiting order."""
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self.n_confs)
        if self.mode == "cycle":
            mol = rng.permutation(n)
            return mol, (self.offsets[mol] + epoch) % self.n_confs[mol]
        mol = np.repeat(np.arange(n, dtype=np.int64), self.n_confs)
        conf = np.arange(mol.size, dtype=np.int64) - np.repeat(
            np.cumsum(self.n_confs) - self.n_confs, self.n_confs
        )
        perm = rng.permutation(mol.size)
        return mol[perm], conf[perm]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        mol, conf = self.pairs(self.epoch + self.epoch_offset)
        return iter(zip(mol[self.skip :].tolist(), conf[self.skip :].tolist()))

    def _full_len(self) -> int:
        return len(self.n_confs) if self.mode == "cycle" else int(self.n_confs.sum())

    def __len__(self) -> int:
        return self._full_len() - self.skip
