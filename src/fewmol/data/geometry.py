"""Real 3D input: SDF files and the QM9 DFT geometries, mapped onto fewmol's 2D atom order.

A 3D record lists its atoms in any order; fewmol's 2D graph of a molecule lists them in the order
of RDKit's parse of its canonical SMILES. Both readers return coordinates in that canonical
order, so atom i of ``featurize_canonical(smiles)`` and atom i of the geometry are the same atom,
and they write the same :class:`~fewmol.data.conformer_store.ConformerStore` format as generated
conformers (heavy atoms; with ``keep_hs`` the hydrogens follow in ``Chem.AddHs`` order, i.e.
grouped by the canonical index of the heavy atom they are bonded to).

* SDF: the record's hydrogens are removed, ``MolToSmiles`` gives the canonical SMILES and
  ``_smilesAtomOutputOrder`` the record atom behind each canonical atom. Stereo comes from the 3D
  coordinates. Records of the same molecule (same canonical SMILES) become conformers of one
  molecule, in file order.
* QM9: the stored SMILES is the 2D graph. Bonds are perceived from the geometry
  (``rdDetermineBonds``); the heavy-atom connectivity must match the SMILES (else the molecule is
  a failure with its reason) and gives the atom mapping; the full bond orders are compared too
  (a mismatch is a warning, or a failure with ``match="smiles"``). ../shared/data/SOURCES.md §4:
  on 1000 random molecules connectivity matched 950 times, full bond orders 874 times; the
  mismatches are mostly strained cages where the GDB SMILES and the relaxed geometry disagree.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds

from fewmol.chem.conformers import ConformerResult
from fewmol.chem.mol import try_canonical_smiles
from fewmol.data.conformer_store import (
    ConformerStore,
    conformer_key,
    open_if_current,
    write_conformer_store,
)
from fewmol.data.store import cache_root
from fewmol.errors import InvalidInputError

__all__ = ["SdfGeometries", "load_qm9", "read_sdf", "sdf_to_store"]

MATCH_MODES = ("connectivity", "smiles")
SDF_FAILURE_COLUMNS = ["record", "name", "reason"]
_ORIG = "_fewmol_idx"  # atom property that survives RemoveHs: the atom's index in the record


class SdfGeometries(NamedTuple):
    """Molecules of an SDF: canonical SMILES, z [n_atoms], pos [n_confs, n_atoms, 3], failures."""

    smiles: list[str]
    z: list[np.ndarray]
    pos: list[np.ndarray]
    failures: pd.DataFrame  # record, name, reason (records that could not be used)


# ----------------------------------------------------------------------------- atom mapping


def _output_order(mol: Chem.Mol) -> np.ndarray:
    """Atom indices of ``mol`` in the order of the SMILES last written for it."""
    text = mol.GetProp("_smilesAtomOutputOrder")  # e.g. '[4,2,3,1,0,]'
    return np.array(json.loads(text.replace(",]", "]")), dtype=np.int64)


def _hydrogen_order(
    adjacency: np.ndarray, z: np.ndarray, heavy: np.ndarray, expected: np.ndarray
) -> tuple[np.ndarray | None, str | None]:
    """Record indices of the hydrogens in ``Chem.AddHs`` order, or a failure reason.

    ``heavy[i]`` is the record atom behind canonical atom i; ``expected[i]`` its H count in the
    canonical molecule.
    """
    rank = np.full(len(z), -1, dtype=np.int64)
    rank[heavy] = np.arange(len(heavy))
    h = np.setdiff1d(np.flatnonzero(z == 1), heavy)  # hydrogens not part of the 2D graph
    if h.size:
        degree = adjacency[h].sum(axis=1)
        if (degree != 1).any():
            return None, "a hydrogen is not bonded to exactly one atom"
        parent = rank[adjacency[h].argmax(axis=1)]
        if (parent < 0).any():
            return None, "a hydrogen is bonded to an atom outside the 2D graph"
    else:
        parent = np.zeros(0, dtype=np.int64)
    counts = np.bincount(parent, minlength=len(heavy))
    if counts.sum() != expected.sum():
        return None, (
            f"the 3D structure has {int(counts.sum())} hydrogens, the SMILES {int(expected.sum())}"
        )
    if not np.array_equal(counts, expected):
        return None, "the 3D structure has hydrogens on other atoms than the SMILES"
    return h[np.argsort(parent, kind="stable")], None


def _h_counts(mol2d: Chem.Mol) -> np.ndarray:
    return np.fromiter((a.GetTotalNumHs() for a in mol2d.GetAtoms()), np.int64, mol2d.GetNumAtoms())


def _map_sdf_record(
    mol: Chem.Mol, keep_hs: bool
) -> tuple[str | None, np.ndarray | None, np.ndarray | None, str | None]:
    """(canonical SMILES, record atom index per output atom, z, failure) for one SDF record."""
    if mol.GetNumConformers() == 0 or not mol.GetConformer().Is3D():
        return None, None, None, "record has no 3D coordinates"
    for a in mol.GetAtoms():
        a.SetIntProp(_ORIG, a.GetIdx())
    try:
        heavy = Chem.RemoveHs(mol)
        written = Chem.MolToSmiles(heavy)
    except Exception as e:  # RDKit raises assorted types on odd records
        return None, None, None, f"RDKit could not process the record ({type(e).__name__}: {e})"
    canon, why = try_canonical_smiles(written)
    if canon is None:
        return None, None, None, f"its SMILES {written!r} does not parse back ({why})"
    mol2d = Chem.MolFromSmiles(canon)
    if canon == written:
        order = _output_order(heavy)  # canonical atom i is heavy atom order[i]
    else:
        # RDKit canonicalisation is not always idempotent: map the canonical form explicitly
        order = np.array(heavy.GetSubstructMatch(mol2d, useChirality=True), dtype=np.int64)
        if order.size != mol2d.GetNumAtoms():
            return None, None, None, f"cannot map its atoms onto the canonical SMILES {canon!r}"
    props = [heavy.GetAtomWithIdx(int(j)).GetIntProp(_ORIG) for j in order]
    atoms = np.array(props, dtype=np.int64)
    z_all = np.fromiter((a.GetAtomicNum() for a in mol.GetAtoms()), np.int64, mol.GetNumAtoms())
    z2d = np.fromiter((a.GetAtomicNum() for a in mol2d.GetAtoms()), np.int64, len(order))
    if not np.array_equal(z_all[atoms], z2d):
        return None, None, None, f"atom elements do not match the canonical SMILES {canon!r}"
    if keep_hs:
        adjacency = Chem.GetAdjacencyMatrix(mol)
        hs, why = _hydrogen_order(adjacency, z_all, atoms, _h_counts(mol2d))
        if hs is None:
            return None, None, None, why
        atoms = np.concatenate([atoms, hs])
    return canon, atoms, z_all[atoms], None


def _open_sdf(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _read_sdf_records(
    path: str | os.PathLike[str], keep_hs: bool
) -> tuple[SdfGeometries, list[int]]:
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"SDF file '{path}' does not exist; check the path")
    groups: dict[str, int] = {}
    smiles: list[str] = []
    zs: list[np.ndarray] = []
    confs: list[list[np.ndarray]] = []
    first_record: list[int] = []
    failures: list[dict] = []
    with _open_sdf(path) as fh:
        # removeHs=False: hydrogens are dropped by our mapping, which must see them for keep_hs
        supplier = Chem.ForwardSDMolSupplier(fh, sanitize=True, removeHs=False)
        for rec, mol in enumerate(supplier):
            if mol is None:
                failures.append(
                    {"record": rec, "name": "", "reason": "RDKit could not read the record"}
                )
                continue
            name = mol.GetProp("_Name") if mol.HasProp("_Name") else ""
            canon, atoms, z, why = _map_sdf_record(mol, keep_hs)
            if canon is None:
                failures.append({"record": rec, "name": name, "reason": why})
                continue
            pos = mol.GetConformer().GetPositions()[atoms].astype(np.float32)
            g = groups.get(canon)
            if g is None:
                groups[canon] = len(smiles)
                smiles.append(canon)
                zs.append(z)
                confs.append([pos])
                first_record.append(rec)
            elif np.array_equal(zs[g], z):
                confs[g].append(pos)
            else:
                failures.append(
                    {"record": rec, "name": name, "reason": "atoms differ from an earlier record"}
                )
    if not smiles and not failures:
        raise InvalidInputError(f"'{path}' holds no SDF records")
    geoms = SdfGeometries(
        smiles=smiles,
        z=zs,
        pos=[np.stack(c) for c in confs],
        failures=pd.DataFrame(failures, columns=SDF_FAILURE_COLUMNS),
    )
    return geoms, first_record


def read_sdf(path: str | os.PathLike[str], keep_hs: bool = False) -> SdfGeometries:
    """3D molecules of an SDF (.sdf or .sdf.gz) in canonical atom order, conformers grouped."""
    return _read_sdf_records(path, keep_hs)[0]


def sdf_to_store(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    keep_hs: bool = False,
    resume: bool = True,
) -> tuple[ConformerStore, pd.DataFrame]:
    """Write an SDF's geometries as a conformer store; also return the unusable records."""
    geoms, first = _read_sdf_records(path, keep_hs)
    results = [
        ConformerResult(s, z=z, pos=p, energies=np.full(len(p), np.nan))
        for s, z, p in zip(geoms.smiles, geoms.z, geoms.pos)
    ]
    # the file's hash: a resumed store must not keep coordinates of an edited file
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    options = {"file": Path(path).name, "sha256": digest, "keep_hs": keep_hs}
    store = write_conformer_store(
        out_dir, geoms.smiles, results, "sdf", options, source_ids=first, resume=resume
    )
    return store, geoms.failures


# ----------------------------------------------------------------------------- QM9


def _skeleton(z: np.ndarray, adjacency: np.ndarray, labels: np.ndarray | None = None) -> Chem.Mol:
    """Element-labelled graph with single bonds only: compares connectivity, not bond orders.

    ``labels`` (e.g. H count + 1) go into the isotope field, which both the canonical SMILES and
    substructure matching respect.
    """
    rw = Chem.RWMol()
    for k, zi in enumerate(z):
        atom = Chem.Atom(int(zi))
        atom.SetNoImplicit(True)
        if labels is not None:
            atom.SetIsotope(int(labels[k]))
        rw.AddAtom(atom)
    for i, j in np.argwhere(np.triu(adjacency, 1)):
        rw.AddBond(int(i), int(j), Chem.BondType.SINGLE)
    mol = rw.GetMol()
    mol.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(mol)
    return mol


def _match(skel3d: Chem.Mol, skel2d: Chem.Mol) -> np.ndarray | None:
    """Skeleton atom behind each 2D atom if the two graphs are isomorphic, else None."""
    if Chem.MolToSmiles(skel3d) != Chem.MolToSmiles(skel2d):
        return None
    # same canonical graph, so equal atom and bond counts: a substructure match is an isomorphism
    return np.array(skel3d.GetSubstructMatch(skel2d), dtype=np.int64)


def _qm9_molecule(
    z: np.ndarray, pos: np.ndarray, canon: str, keep_hs: bool, match: str
) -> ConformerResult:
    """Map one QM9 geometry (xyz order, with H) onto the atoms of its canonical SMILES."""
    mol2d = Chem.MolFromSmiles(canon)
    rw = Chem.RWMol()
    for zi in z:
        rw.AddAtom(Chem.Atom(int(zi)))
    conf = Chem.Conformer(len(z))
    conf.SetPositions(pos.astype(np.float64))
    conf.Set3D(True)
    rw.AddConformer(conf, assignId=True)
    mol3d = rw.GetMol()
    try:
        rdDetermineBonds.DetermineConnectivity(mol3d)
    except Exception as e:  # RDKit raises assorted types
        return ConformerResult(canon, failure=f"bond perception failed ({type(e).__name__}: {e})")
    adjacency = Chem.GetAdjacencyMatrix(mol3d)
    heavy3d = np.flatnonzero(z > 1)
    adj3d = adjacency[np.ix_(heavy3d, heavy3d)]
    h3d = adjacency[np.ix_(heavy3d, np.flatnonzero(z == 1))].sum(axis=1)
    z2d = np.fromiter((a.GetAtomicNum() for a in mol2d.GetAtoms()), np.int64, mol2d.GetNumAtoms())
    adj2d, h2d = Chem.GetAdjacencyMatrix(mol2d), _h_counts(mol2d)
    # heavy atoms labelled with their H count first, so that symmetric-looking atoms (the two N
    # of CC(=N)N) are matched the way the hydrogens say
    found = _match(_skeleton(z[heavy3d], adj3d, h3d + 1), _skeleton(z2d, adj2d, h2d + 1))
    warning = None
    if found is None:
        skel3d, skel2d = _skeleton(z[heavy3d], adj3d), _skeleton(z2d, adj2d)
        found = _match(skel3d, skel2d)
        if found is None:
            return ConformerResult(
                canon,
                failure=f"heavy-atom connectivity of the geometry ({Chem.MolToSmiles(skel3d)}) "
                f"differs from the SMILES ({Chem.MolToSmiles(skel2d)})",
            )
        warning = "the geometry has hydrogens on other atoms than the SMILES (another tautomer)"
        if keep_hs or match == "smiles":
            return ConformerResult(canon, failure=warning)
    atoms = heavy3d[found]
    if warning is None:
        try:
            ordered = Chem.Mol(mol3d)
            rdDetermineBonds.DetermineBondOrders(ordered, charge=0)
            got = Chem.MolToSmiles(Chem.RemoveAllHs(ordered), isomericSmiles=False)
            want = Chem.MolToSmiles(mol2d, isomericSmiles=False)
            if got != want:
                warning = f"bond orders perceived from the geometry ({got}) differ from the SMILES"
        except Exception as e:  # see above
            warning = f"bond orders could not be perceived from the geometry ({type(e).__name__})"
        if warning and match == "smiles":
            return ConformerResult(canon, failure=warning)
    if keep_hs:
        hs, why = _hydrogen_order(adjacency, z, atoms, h2d)
        if hs is None:
            return ConformerResult(canon, failure=why)
        atoms = np.concatenate([atoms, hs])
    return ConformerResult(
        canon,
        z=z[atoms].astype(np.int64),
        pos=pos[atoms][None].astype(np.float32),
        energies=np.full(1, np.nan),
        warning=warning,
    )


def _qm9_chunk(args: tuple) -> list[ConformerResult]:
    z, pos, ptr, smiles, keep_hs, match = args
    return [
        _qm9_molecule(z[ptr[i] : ptr[i + 1]], pos[ptr[i] : ptr[i + 1]], s, keep_hs, match)
        if s is not None
        else ConformerResult("", failure="invalid SMILES in qm9_props.csv.gz")
        for i, s in enumerate(smiles)
    ]


def load_qm9(
    qm9_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    keep_hs: bool = False,
    match: str = "connectivity",
    workers: int = 1,
    resume: bool = True,
) -> ConformerStore:
    """QM9 DFT geometries as a conformer store (one conformer each), in canonical atom order.

    ``limit``: a random subset of that many molecules (drawn with ``seed``, kept in QM9 order).
    ``match``: 'connectivity' keeps molecules whose heavy-atom graph matches the SMILES (bond
    order differences become warnings); 'smiles' also requires the bond orders to match.
    ``out_dir`` defaults to ``$FEWMOL_CACHE/conformers/qm9-<key>``; a finished store there with
    the same inputs is reused. ``source_id`` of each molecule is its QM9 ``Index``.
    """
    if match not in MATCH_MODES:
        raise InvalidInputError(f"match must be one of {', '.join(MATCH_MODES)}, not {match!r}")
    root = Path(qm9_dir)
    geom, props = root / "qm9_geom.npz", root / "qm9_props.csv.gz"
    for p in (geom, props):
        if not p.is_file():
            raise InvalidInputError(
                f"QM9 file {p} is missing; expected qm9_geom.npz and qm9_props.csv.gz in {root} "
                "(see ../shared/data/SOURCES.md §4)"
            )
    table = pd.read_csv(props, usecols=["Index", "SMILES"], dtype={"SMILES": str})
    with np.load(geom, allow_pickle=False) as f:
        index, ptr = f["index"].astype(np.int64), f["ptr"].astype(np.int64)
        z_all, pos_all = f["z"], f["pos"]
    if len(table) != len(index) or not np.array_equal(table["Index"].to_numpy(), index):
        raise InvalidInputError(
            f"{props.name} and {geom.name} in {root} do not list the same molecules in the same "
            "order"
        )
    rows = np.arange(len(index))
    if limit is not None and limit < len(rows):
        if limit < 1:
            raise InvalidInputError(f"limit must be >= 1, got {limit}")
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), size=limit, replace=False))
    raw = table["SMILES"].to_numpy(dtype=object)[rows]
    canon = [try_canonical_smiles(s)[0] for s in raw]
    names = [c if c is not None else str(s) for c, s in zip(canon, raw)]
    options = {
        "limit": None if limit is None else int(limit),
        "seed": int(seed) if limit is not None else None,
        "keep_hs": keep_hs,
        "match": match,
        "files": {p.name: p.stat().st_size for p in (geom, props)},
    }
    if out_dir is None:
        out_dir = cache_root() / "conformers" / f"qm9-{conformer_key(names, 'qm9', options)[:16]}"
    if resume:
        hit = open_if_current(out_dir, names, "qm9", options)
        if hit is not None:
            return hit

    # per-molecule slices, re-based so each work item carries only its own atoms
    chunks = []
    step = 2048
    for a in range(0, len(rows), step):
        r = rows[a : a + step]
        counts = ptr[r + 1] - ptr[r]
        starts = np.repeat(ptr[r], counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        take = starts + within
        sub_ptr = np.concatenate([[0], np.cumsum(counts)])
        chunks.append((z_all[take], pos_all[take], sub_ptr, canon[a : a + step], keep_hs, match))
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(min(workers, len(chunks))) as pool:
            parts = list(pool.map(_qm9_chunk, chunks))
    else:
        parts = [_qm9_chunk(c) for c in chunks]
    results = [r for part in parts for r in part]
    for r, name in zip(results, names):
        r.smiles = name
    return write_conformer_store(
        out_dir, names, results, "qm9", options, source_ids=index[rows], resume=resume
    )
