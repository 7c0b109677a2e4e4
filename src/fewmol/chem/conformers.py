"""3D conformers from SMILES: RDKit ETKDGv3 embedding + MMFF94 optimisation (RDKit + numpy only).

``generate_conformers(canonical_smiles, settings)`` returns up to ``num_confs`` conformers,
lowest force-field energy first, or a failure reason; it never raises for a bad molecule.

Atom order. ``z`` and ``pos`` follow RDKit's parse of the SMILES string given, which is the order
fewmol's 2D featuriser uses for the same canonical SMILES, so atom i of the 2D graph and atom i of
the 3D conformers are the same atom. Hydrogens are added for embedding (``Chem.AddHs`` appends
them after the heavy atoms, so heavy-atom indices do not move) and dropped from the output unless
``keep_hs``; with ``keep_hs`` they follow the heavy atoms in ``AddHs`` order.

Seeds. Every molecule is embedded with the same seed and ``enableSequentialRandomSeeds`` (conformer
k uses seed + k), so results do not depend on chunking or on the number of workers. Without the
sequential seeds, RDKit 2026.09 with ``randomSeed=0`` returns C *identical* conformers (measured:
RMSD 0.0 between all five), which would silently turn "5 conformers" into one.

Time limits. RDKit's ETKDG has ``EmbedParameters.timeout``, but it is a whole number of seconds that
applies per conformer and fragment, and force-field minimisation has no timeout at all. So the
limit has two layers:

1. Cooperative, here: the remaining time is passed to ETKDG (rounded up to whole seconds) and the
   deadline is checked between stages and between conformer minimisations. A molecule past its
   deadline fails with "timed out after T s (stage)". This covers ordinary slow molecules
   (measured: a 75-carbon branched alkane needs ~17 s for 5 conformers; with the limit it stops
   after ~1 s) without losing a worker process.
2. Hard, in :mod:`fewmol.data.conformer_store`: each worker process publishes in shared memory which
   molecule it is on and since when, and the parent kills (SIGKILL) a worker that has spent more
   than :func:`kill_after_s` on one molecule (e.g. stuck inside a single C++ call), records the
   molecule as failed and restarts the pool for the unfinished chunks. A signal handler cannot
   interrupt C++ code and a thread cannot be killed, so a separate killable process is the only
   bound that holds whatever RDKit does.

Force fields. MMFF94 when it has parameters for every atom; otherwise UFF with the warning "MMFF
parameters missing; used UFF"; otherwise (or with ``mmff=False``) the ETKDG geometries are kept
unoptimised, energies are NaN and the embedding order is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDistGeom
from rdkit.Chem import rdForceFieldHelpers as ffh

from fewmol.chem import mol as _mol  # noqa: F401  (silences RDKit's C++ logging)
from fewmol.errors import InvalidInputError

__all__ = [
    "CONFORMER_VERSION",
    "FORCEFIELDS",
    "ConformerResult",
    "ConformerSettings",
    "generate_conformers",
    "kill_after_s",
]

# bump when the generated coordinates change for the same settings (invalidates stores)
CONFORMER_VERSION = "1"
# force-field codes stored per molecule; index = code
FORCEFIELDS = ("none", "MMFF94", "UFF")


@dataclass(frozen=True)
class ConformerSettings:
    """How conformers are generated; every field is part of a store's cache key."""

    num_confs: int = 5
    seed: int = 42
    max_atoms: int = 100  # heavy atoms
    max_attempts: int = 2  # ETKDG rounds; rounds after the first start from random coordinates
    timeout_s: float = 10.0  # wall clock per molecule (see the module docstring)
    mmff: bool = True  # False: keep the ETKDG geometries unoptimised
    max_iters: int = 200  # force-field minimisation iterations per conformer (RDKit's default)
    prune_rms: float = -1.0  # heavy-atom RMSD (A) below which ETKDG drops a conformer; <0: off
    add_hs: bool = True  # embed with explicit hydrogens (needed for sensible geometries)
    keep_hs: bool = False  # keep the hydrogens in the output (GraphMVP/SchNet use heavy atoms)

    def __post_init__(self) -> None:
        checks = [
            (self.num_confs >= 1, "num_confs must be >= 1"),
            (self.max_atoms >= 1, "max_atoms must be >= 1"),
            (self.max_attempts >= 1, "max_attempts must be >= 1"),
            (self.timeout_s > 0 and math.isfinite(self.timeout_s), "timeout_s must be > 0"),
            (self.max_iters >= 0, "max_iters must be >= 0"),
            (self.seed >= 0, "seed must be >= 0"),
            (self.add_hs or not self.keep_hs, "keep_hs needs add_hs"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInputError(f"invalid conformer settings: {message}")

    def to_dict(self) -> dict:
        """Plain JSON-able dict of the settings."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ConformerSettings:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInputError(f"unknown conformer settings: {', '.join(unknown)}")
        return cls(**data)


def kill_after_s(settings: ConformerSettings) -> float:
    """Seconds after which a worker stuck on one molecule is killed (the hard limit)."""
    return 1.25 * settings.timeout_s + 0.5


@dataclass
class ConformerResult:
    """Conformers of one molecule (lowest energy first), or the reason there are none."""

    smiles: str
    z: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (n_atoms,)
    pos: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 0, 3), np.float32)
    )  # (n_confs, n_atoms, 3), Angstrom
    energies: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_confs,), kcal/mol
    forcefield: str = "none"
    failure: str | None = None
    warning: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when there is at least one conformer."""
        return self.failure is None

    @property
    def n_confs(self) -> int:
        """Number of conformers kept."""
        return int(self.pos.shape[0])

    @property
    def n_atoms(self) -> int:
        """Number of atoms per conformer."""
        return int(self.z.shape[0])


def _failed(smiles: str, reason: str, t0: float) -> ConformerResult:
    return ConformerResult(smiles, failure=reason, seconds=time.perf_counter() - t0)


def _embed(
    molh: Chem.Mol, settings: ConformerSettings, deadline: float
) -> tuple[list[int], str | None]:
    """ETKDGv3 rounds until some conformer is embedded; (conformer ids, failure reason)."""
    last_error = None
    for attempt in range(settings.max_attempts):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return [], f"timed out after {settings.timeout_s:g} s (embedding)"
        params = rdDistGeom.ETKDGv3()
        # conformer k of round r uses seed + r*num_confs + k: reproducible and all different
        params.randomSeed = settings.seed + attempt * settings.num_confs
        params.enableSequentialRandomSeeds = True
        params.numThreads = 1  # parallelism is across molecules, one process per core
        params.pruneRmsThresh = settings.prune_rms
        params.useRandomCoords = attempt > 0  # the usual rescue for large or strained molecules
        params.timeout = max(1, math.ceil(remaining))  # whole seconds only (unsigned int)
        try:
            cids = list(rdDistGeom.EmbedMultipleConfs(molh, settings.num_confs, params))
        except Exception as e:  # RDKit raises assorted types; one molecule must not stop a run
            last_error = f"{type(e).__name__}: {e}"
            cids = []
        if time.perf_counter() > deadline:
            return [], f"timed out after {settings.timeout_s:g} s (embedding)"
        if cids:
            return cids, None
    detail = f" ({last_error})" if last_error else ""
    n = settings.max_attempts
    return [], f"embedding failed after {n} attempt{'s' if n != 1 else ''}{detail}"


def _optimise(
    molh: Chem.Mol, cids: list[int], settings: ConformerSettings, deadline: float
) -> tuple[str, np.ndarray, str | None, str | None]:
    """Minimise each conformer; (force field, energies, warning, failure)."""
    energies = np.full(len(cids), np.nan)
    if not settings.mmff:
        return "none", energies, None, None
    warning = None
    try:
        if ffh.MMFFHasAllMoleculeParams(molh):
            name = "MMFF94"
            props = ffh.MMFFGetMoleculeProperties(molh)

            def make(cid: int):
                return ffh.MMFFGetMoleculeForceField(molh, props, confId=cid)

        elif ffh.UFFHasAllMoleculeParams(molh):
            name, warning = "UFF", "MMFF parameters missing; used UFF"

            def make(cid: int):
                return ffh.UFFGetMoleculeForceField(molh, confId=cid)

        else:
            return "none", energies, "no MMFF or UFF parameters; conformers not optimised", None
        # one force field per conformer, with a deadline check in between: the same result as
        # MMFFOptimizeMoleculeConfs (checked: identical energies) but interruptible
        for k, cid in enumerate(cids):
            if time.perf_counter() > deadline:
                return (
                    name,
                    energies,
                    warning,
                    (f"timed out after {settings.timeout_s:g} s ({name} optimisation)"),
                )
            ff = make(cid)
            if ff is None:
                return name, energies, warning, f"could not set up the {name} force field"
            ff.Minimize(maxIts=settings.max_iters)
            energies[k] = ff.CalcEnergy()
    except Exception as e:  # see _embed
        return (
            "none",
            energies,
            warning,
            f"force-field optimisation failed ({type(e).__name__}: {e})",
        )
    return name, energies, warning, None


def generate_conformers(
    canonical_smiles: str, settings: ConformerSettings | None = None
) -> ConformerResult:
    """Up to ``settings.num_confs`` conformers, lowest energy first; never raises."""
    settings = settings or ConformerSettings()
    t0 = time.perf_counter()
    deadline = t0 + settings.timeout_s
    smiles = canonical_smiles
    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) and smiles.strip() else None
    if mol is None or mol.GetNumAtoms() == 0:
        return _failed(str(smiles), "invalid SMILES (RDKit could not parse it)", t0)
    n_heavy = mol.GetNumHeavyAtoms()
    if n_heavy > settings.max_atoms:
        return _failed(smiles, f"too many heavy atoms ({n_heavy} > {settings.max_atoms})", t0)
    n_out = mol.GetNumAtoms()  # the 2D graph's atoms (explicit [H] in the SMILES included)
    molh = Chem.AddHs(mol) if settings.add_hs else Chem.Mol(mol)
    if settings.keep_hs:
        n_out = molh.GetNumAtoms()

    cids, failure = _embed(molh, settings, deadline)
    if failure:
        return _failed(smiles, failure, t0)
    forcefield, energies, warning, failure = _optimise(molh, cids, settings, deadline)
    if failure:
        return _failed(smiles, failure, t0)

    pos = np.stack([molh.GetConformer(c).GetPositions()[:n_out] for c in cids])
    if np.isfinite(energies).all():
        order = np.argsort(energies, kind="stable")
        pos, energies = pos[order], energies[order]
    z = np.fromiter((a.GetAtomicNum() for a in molh.GetAtoms()), np.int64, molh.GetNumAtoms())
    return ConformerResult(
        smiles=smiles,
        z=z[:n_out],
        pos=pos.astype(np.float32),
        energies=energies,
        forcefield=forcefield,
        warning=warning,
        seconds=time.perf_counter() - t0,
    )
