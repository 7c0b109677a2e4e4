"""Drug–target affinity data (Davis, KIBA) in DeepDTA's layout, and batching of drug–protein pairs.

Files (``DIR/dta/{davis,kiba}/``, see ``shared/data/SOURCES.md`` §2): ``Y.npy`` (drugs ×
proteins), ``ligands_iso.txt`` / ``ligands_can.txt`` (JSON dicts ID → SMILES, in Y row order),
``proteins.txt`` (JSON dict name → sequence, in Y column order) and ``folds/*_setting1.txt``.

**Conventions (DeepDTA).** A pair is a measured entry of Y; pairs are numbered in the order of
``np.where(~np.isnan(Y))`` and the fold files hold these flat positions. Davis ``Y`` holds Kd in
nM (0.016 … 10,000; every entry measured) and is converted to pKd = −log10(Kd / 1e9), giving
5.0 … 10.8 (Kd = 10 µM, the assay ceiling, becomes exactly 5.0); KIBA scores are used as given
(0.0 … 17.2). Setting 1 = the fixed test fold plus five training folds; one training fold
(``valid_fold``) is held out for model selection, the other four are trained on.

**Row/column order of the JSON dicts.** JSON objects are read in file order (Python dicts keep
insertion order, as DeepDTA's ``OrderedDict``). We checked that this order matches Y: (1) for
Davis, the diagonal of DeepDTA's Smith–Waterman matrix correlates with the sequence lengths in
``proteins.txt`` (r = 0.95; shuffled: r ≈ 0), and identical sequences have identical S–W rows;
(2) the pKd of imatinib (CID 5291) is 8.96 on ABL1, 5.0 on its gatekeeper mutant ABL1(T315I)
and on EGFR, 7.9 on KIT, as in Davis et al. 2011; (3) Davis drug–drug 2D similarities follow
RDKit Morgan Tanimoto in the ligand order (r = 0.51; shuffled ≈ 0); (4) for KIBA, the normalised
S–W similarities follow 3-mer Jaccard similarity of the sequences in file order (r = 0.46;
shuffled ≈ 0), the affinity columns of the 200 most similar protein pairs correlate at r = 0.76
(random pairs 0.29) and the rows of stereoisomer drugs at 0.47 (random 0.12). KIBA's drug
order has no independent check beyond that last one and DeepDTA's own statement.

**Counts, and why they differ from the GraphMVP paper's (REFERENCE.md §A2).**
Davis: 68 drugs × 442 proteins = 30,056 pairs here; the paper says 379 proteins with the same
30,056 pairs. Nothing is dropped: 379 is the number of *distinct sequences* (GraphMVP's
``datasets/dti_datasets/davis/preprocess.py`` prints ``len(set(prots))`` → 379 and trains on
all 442 columns). DeepDTA's ``proteins.txt`` gives each of the 442 Davis kinase constructs the
full wild-type sequence, so mutants (ABL1(T315I), EGFR(L858R), ...), phosphorylated forms
(``ABL1p``), and separately assayed domains (JAK1 JH1/JH2, RSK KinDom.1/.2, CDK4 with cyclin D1
or D3) share a sequence: 63 entries in 18 groups duplicate another's. A sequence model cannot
tell them apart, so (drug, sequence) inputs with different labels set an error floor: predicting
each group's mean pKd gives MSE 0.032 over all pairs (0.038 on the test fold).
KIBA: 2,111 drugs × 229 proteins, 118,254 measured pairs; the paper says 2,068 drugs. All 2,111
SMILES parse with RDKit; 2,068 is the number of distinct canonical SMILES from
``ligands_can.txt``, whose strings carry no stereo: 43 ChEMBL IDs are stereoisomers of another
ID (32 groups of 2–8; GraphMVP's ``kiba/preprocess.out``: "2111 drugs 2068 unique drugs"). We
read ``ligands_iso.txt`` by default (``ligands="iso"``), where all 2,111 are distinct graphs
(chirality is an atom feature); ``ligands="can"`` reproduces the paper's input. Two KIBA IDs
differ between the two files by deuterium labels only, which the featurisers do not encode.

**Proteins** are encoded once into a flat ``int8`` array with offsets (25 letters + unknown; 0
is padding). A batch gathers only the distinct proteins of its pairs, padded to the longest of
them or truncated at ``max_len`` (1000, DeepDTA's ``max_seq_len`` for both sets: 26% of Davis
and 19% of KIBA sequences are longer), and indexes them back per pair; drugs likewise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from fewmol.chem.mol import try_canonical_smiles
from fewmol.data import registry
from fewmol.data.collate import GraphBatch, GraphSet
from fewmol.data.loaders import EpochSeededSampler, _Indices
from fewmol.data.splits import Split
from fewmol.data.store import featurize_to_graphset
from fewmol.errors import InvalidInputError

DTA_DATASETS = ("davis", "kiba")
# DeepDTA's 25 protein letters (every capital but J), ids 1..25; 26 = anything else; 0 = padding.
PROTEIN_ALPHABET = "ABCDEFGHIKLMNOPQRSTUVWXYZ"
PAD, UNKNOWN = 0, len(PROTEIN_ALPHABET) + 1
PROTEIN_VOCAB_SIZE = len(PROTEIN_ALPHABET) + 2
MAX_LEN = 1000
UNITS = {"davis": "pKd", "kiba": "KIBA score"}

_LOOKUP = np.full(256, UNKNOWN, dtype=np.int8)
for _i, _c in enumerate(PROTEIN_ALPHABET):
    _LOOKUP[ord(_c)] = _LOOKUP[ord(_c.lower())] = _i + 1


def encode_sequence(seq: str) -> np.ndarray:
    """Amino-acid letters -> int8 ids (1..25, 26 = unknown letter)."""
    raw = np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)
    return _LOOKUP[raw]


@dataclass
class ProteinSet:
    """Protein sequences stored once: ``tokens`` (int8, all sequences end to end) + ``offsets``."""

    names: list[str]
    tokens: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_sequences(cls, names: Sequence[str], sequences: Sequence[str]) -> ProteinSet:
        """Encode sequences (in order) into the flat layout."""
        enc = [encode_sequence(s) for s in sequences]
        lengths = np.array([len(e) for e in enc], dtype=np.int64)
        if len(enc) and lengths.min() == 0:
            bad = [n for n, e in zip(names, enc) if len(e) == 0]
            raise InvalidInputError(f"empty protein sequence(s): {bad[:5]}")
        tokens = np.concatenate(enc) if enc else np.zeros(0, np.int8)
        return cls(list(names), tokens, np.concatenate([[0], np.cumsum(lengths)]))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        """Residues per protein (before truncation)."""
        return np.diff(self.offsets)

    def sequence(self, i: int) -> str:
        """Decoded sequence ``i`` (unknown letters come back as ``X``)."""
        letters = np.frombuffer(("-" + PROTEIN_ALPHABET + "X").encode(), dtype=np.uint8)
        return letters[self.tokens[self.offsets[i] : self.offsets[i + 1]]].tobytes().decode()

    def n_distinct(self) -> int:
        """Number of distinct sequences."""
        return len(
            {self.tokens[a:b].tobytes() for a, b in zip(self.offsets[:-1], self.offsets[1:])}
        )

    def length_sorted_batches(
        self, idx: np.ndarray, batch_size: int, max_len: int = MAX_LEN
    ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
        """(ids, tokens, lengths) of proteins ``idx`` in chunks, similar lengths together so
        little padding is encoded."""
        idx = np.asarray(idx, dtype=np.int64)
        order = idx[np.argsort(self.lengths()[idx], kind="stable")]
        for s in range(0, len(order), batch_size):
            ids = order[s : s + batch_size]
            yield (ids, *self.batch(ids, max_len))

    def batch(self, idx: np.ndarray, max_len: int = MAX_LEN) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens (n, L) int64 of proteins ``idx``, L = longest of them capped at ``max_len``.

        Returns (tokens, lengths after truncation); positions past a length hold 0 (padding).
        """
        idx = np.asarray(idx, dtype=np.int64)
        starts = self.offsets[idx]
        lens = np.minimum(self.offsets[idx + 1] - starts, max_len)
        width = int(lens.max()) if len(idx) else 0
        # flat source positions of every kept residue, and where each lands in the matrix
        row = np.repeat(np.arange(len(idx)), lens)
        col = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        out = np.zeros((len(idx), width), dtype=np.int64)
        out[row, col] = self.tokens[np.repeat(starts, lens) + col]
        return torch.from_numpy(out), torch.from_numpy(lens)


@dataclass
class PairBatch:
    """A batch of drug–protein pairs; each distinct drug and protein appears once.

    Shapes: ``drugs`` holds D graphs; ``drug_index`` (B,) in [0, D); ``proteins`` (P, L) int64
    tokens with ``protein_lengths`` (P,); ``protein_index`` (B,) in [0, P); ``y`` (B,) float32;
    ``index`` (B,) pair positions in the dataset.
    """

    drugs: GraphBatch
    drug_index: torch.Tensor
    proteins: torch.Tensor
    protein_lengths: torch.Tensor
    protein_index: torch.Tensor
    y: torch.Tensor | None
    index: torch.Tensor

    @property
    def num_pairs(self) -> int:
        """Number of pairs B."""
        return int(self.index.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PairBatch:
        """Move every tensor to ``device`` (Lightning calls this)."""

        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return PairBatch(
            self.drugs.to(device, non_blocking),
            mv(self.drug_index),
            mv(self.proteins),
            mv(self.protein_lengths),
            mv(self.protein_index),
            mv(self.y),
            mv(self.index),
        )


@dataclass
class PairIds:
    """A batch of pairs as dataset ids only: evaluation looks up embeddings computed once.

    Shapes: ``drug`` (B,) Y rows, ``protein`` (B,) Y columns, ``y`` (B,) float32, ``index`` (B,)
    pair positions in the dataset.
    """

    drug: torch.Tensor
    protein: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor

    @property
    def num_pairs(self) -> int:
        """Number of pairs B."""
        return int(self.index.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PairIds:
        """Move every tensor to ``device`` (Lightning calls this)."""
        return PairIds(
            *(t.to(device, non_blocking=non_blocking) for t in (self.drug, self.protein, self.y)),
            self.index.to(device, non_blocking=non_blocking),
        )


@dataclass
class EvalEntities:
    """The distinct drugs and proteins of some pairs, and where their inputs come from."""

    data: DTAData
    graphs: GraphSet
    drugs: np.ndarray
    """int64 sorted distinct Y rows"""
    proteins: np.ndarray
    """int64 sorted distinct Y columns"""
    max_len: int = MAX_LEN

    @classmethod
    def of_pairs(
        cls, data: DTAData, graphs: GraphSet, pairs: np.ndarray, max_len: int = MAX_LEN
    ) -> EvalEntities:
        """The entities of ``pairs`` (pair positions)."""
        pairs = np.asarray(pairs, dtype=np.int64)
        return cls(
            data, graphs, np.unique(data.drug_idx[pairs]), np.unique(data.prot_idx[pairs]), max_len
        )

    def drug_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, GraphBatch]]:
        """(Y rows, their graphs) in chunks of ``batch_size`` drugs."""
        rows = self.data.graph_rows()
        for s in range(0, len(self.drugs), batch_size):
            ids = self.drugs[s : s + batch_size]
            yield ids, self.graphs.collate(rows[ids])

    def protein_batches(
        self, batch_size: int
    ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
        """(Y columns, tokens, lengths) in chunks of ``batch_size`` proteins, by length."""
        return self.data.proteins.length_sorted_batches(self.proteins, batch_size, self.max_len)


@dataclass
class DTAData:
    """One DTA dataset: drugs (Y rows), proteins (Y columns), measured pairs and the folds."""

    name: str
    drug_ids: list[str]
    smiles: list[str | None]
    """canonical isomeric SMILES per drug (None where RDKit failed; see ``invalid_drugs``)"""
    proteins: ProteinSet
    drug_idx: np.ndarray
    """int64 (n_pairs,): Y row of each pair, pairs in ``np.where(~np.isnan(Y))`` order"""
    prot_idx: np.ndarray
    """int64 (n_pairs,): Y column of each pair"""
    affinity: np.ndarray
    """float64 (n_pairs,): pKd (Davis) or KIBA score"""
    split: Split
    """pair positions of train (4 training folds), valid (1 training fold), test"""
    units: str
    setting: int = 1
    valid_fold: int = 0
    ligands: str = "iso"
    invalid_drugs: list[dict[str, Any]] = field(default_factory=list)
    dropped_pairs: int = 0
    source: str = ""
    pair_rows: np.ndarray | None = None
    """int64 (n_pairs,): input table row of each pair (user tables; None for Davis / KIBA)"""

    @property
    def n_pairs(self) -> int:
        """Measured pairs in Y (including any whose drug failed to parse)."""
        return len(self.affinity)

    def counts(self) -> dict[str, Any]:
        """Drugs, proteins, pairs and split sizes, plus the distinct-structure counts."""
        valid = [s for s in self.smiles if s is not None]
        return {
            "drugs": len(self.drug_ids),
            "proteins": len(self.proteins),
            "pairs": self.n_pairs,
            "distinct_drug_smiles": len(set(valid)),
            "distinct_protein_sequences": self.proteins.n_distinct(),
            "invalid_drugs": len(self.invalid_drugs),
            "dropped_pairs": self.dropped_pairs,
            "proteins_longer_than_max_len": int((self.proteins.lengths() > MAX_LEN).sum()),
            **{f"{k}_pairs": v for k, v in self.split.sizes().items()},
        }

    def graph_rows(self) -> np.ndarray:
        """Row of each drug in :meth:`featurize`'s GraphSet (-1 for drugs that failed to parse)."""
        ok = np.array([s is not None for s in self.smiles])
        rows = np.full(len(self.smiles), -1, dtype=np.int64)
        rows[ok] = np.arange(int(ok.sum()))
        return rows

    def featurize(self, featurizer: str = "hu2019", workers: int = 1) -> GraphSet:
        """Graphs of the parsable drugs, in drug order (cached on disk by SMILES)."""
        return featurize_to_graphset(
            [s for s in self.smiles if s is not None], featurizer, workers=workers
        )

    def collate(
        self,
        graphs: GraphSet,
        pairs: np.ndarray,
        max_len: int = MAX_LEN,
        rows: np.ndarray | None = None,
    ) -> PairBatch:
        """Batch ``pairs``: each distinct drug and protein gathered once, indexed back per pair."""
        pairs = np.asarray(pairs, dtype=np.int64)
        rows = self.graph_rows() if rows is None else rows
        drugs, drug_inv = np.unique(self.drug_idx[pairs], return_inverse=True)
        prots, prot_inv = np.unique(self.prot_idx[pairs], return_inverse=True)
        tokens, lengths = self.proteins.batch(prots, max_len)
        return PairBatch(
            drugs=graphs.collate(rows[drugs]),
            drug_index=torch.from_numpy(drug_inv.astype(np.int64)),
            proteins=tokens,
            protein_lengths=lengths,
            protein_index=torch.from_numpy(prot_inv.astype(np.int64)),
            y=torch.from_numpy(self.affinity[pairs].astype(np.float32)),
            index=torch.from_numpy(pairs.copy()),
        )

    def collate_ids(self, pairs: np.ndarray) -> PairIds:
        """Batch ``pairs`` as ids (no graphs, no tokens)."""
        pairs = np.asarray(pairs, dtype=np.int64)
        return PairIds(
            drug=torch.from_numpy(self.drug_idx[pairs]),
            protein=torch.from_numpy(self.prot_idx[pairs]),
            y=torch.from_numpy(self.affinity[pairs].astype(np.float32)),
            index=torch.from_numpy(pairs.copy()),
        )

    def eval_order(self, pairs: np.ndarray) -> np.ndarray:
        """Pairs sorted by (protein, drug): evaluation batches then hold few distinct proteins."""
        pairs = np.asarray(pairs, dtype=np.int64)
        return pairs[np.lexsort((self.drug_idx[pairs], self.prot_idx[pairs]))]


# ------------------------------------------------------------------------------------ loading
def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInputError(f"cannot read {what} from {path}: {e}") from None


def _affinity_matrix(name: str, root: Path) -> np.ndarray:
    """Y as float64; Davis converted from Kd (nM) to pKd."""
    try:
        y = np.load(root / "Y.npy", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InvalidInputError(
            f"cannot read {root / 'Y.npy'} ({e}); it must be a plain .npy"
        ) from None
    if y.ndim != 2 or not np.issubdtype(y.dtype, np.floating):
        raise InvalidInputError(
            f"{root / 'Y.npy'} should be a 2D float matrix, got {y.dtype} {y.shape}"
        )
    y = y.astype(np.float64)
    if name == "davis":
        kd = y[~np.isnan(y)]
        # pKd values would all be < 15; Kd in nM reaches 10,000 (the assay ceiling)
        if kd.size and (kd.min() <= 0 or kd.max() < 100):
            raise InvalidInputError(
                f"{root / 'Y.npy'} should hold Davis Kd in nM (positive, up to 10,000), got "
                f"{kd.min():g} … {kd.max():g}; is it already in pKd?"
            )
        y = -np.log10(y / 1e9)
    return y


def _folds(root: Path, setting: int, n_pairs: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Test fold and the training folds (flat pair positions), checked for range and overlap."""
    test = _read_json(root / "folds" / f"test_fold_setting{setting}.txt", "the test fold")
    train = _read_json(root / "folds" / f"train_fold_setting{setting}.txt", "the training folds")
    if not isinstance(train, list) or not train or not all(isinstance(f, list) for f in train):
        raise InvalidInputError(
            f"{root}/folds/train_fold_setting{setting}.txt: expected a list of lists"
        )
    parts = [np.asarray(test, dtype=np.int64)] + [np.asarray(f, dtype=np.int64) for f in train]
    flat = np.concatenate(parts)
    if flat.size and (flat.min() < 0 or flat.max() >= n_pairs):
        raise InvalidInputError(
            f"fold indices in {root / 'folds'} fall outside the {n_pairs} pairs"
        )
    if np.bincount(flat, minlength=n_pairs).max(initial=0) > 1:
        raise InvalidInputError(f"the folds in {root / 'folds'} overlap")
    return parts[0], parts[1:]


def load_dta(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    setting: int = 1,
    valid_fold: int = 0,
    ligands: Literal["iso", "can"] = "iso",
) -> DTAData:
    """Load Davis or KIBA with DeepDTA's setting-``setting`` folds (see the module docstring).

    ``valid_fold`` (0..4) is the training fold held out for validation; ``ligands`` picks
    ``ligands_iso.txt`` (stereo kept, the default) or ``ligands_can.txt`` (as DeepDTA/GraphMVP).
    """
    key = str(name).strip().lower()
    spec = registry.get_spec(key)
    if spec.task_type != "dta":
        raise InvalidInputError(
            f"dataset {spec.name!r} is not a drug–target affinity set; use one of {DTA_DATASETS}"
        )
    if ligands not in ("iso", "can"):
        raise InvalidInputError(f"ligands must be iso or can, got {ligands!r}")
    root = registry.resolve(spec, data_dir)
    y = _affinity_matrix(spec.name, root)
    lig_path = root / f"ligands_{ligands}.txt"
    if not lig_path.is_file():
        raise InvalidInputError(f"{lig_path} is missing; pass ligands='can' to use ligands_can.txt")
    lig = _read_json(lig_path, "ligands")
    prot = _read_json(root / "proteins.txt", "protein sequences")
    if not isinstance(lig, dict) or not isinstance(prot, dict):
        raise InvalidInputError(f"{lig_path} and proteins.txt must be JSON objects (ID -> string)")
    if (len(lig), len(prot)) != y.shape:
        raise InvalidInputError(
            f"{root}: {len(lig)} ligands x {len(prot)} proteins do not match Y {y.shape}"
        )

    drug_ids = [str(k) for k in lig]
    smiles: list[str | None] = []
    invalid: list[dict[str, Any]] = []
    for i, (did, smi) in enumerate(lig.items()):
        can, reason = try_canonical_smiles(smi)
        smiles.append(can)
        if can is None:
            invalid.append({"index": i, "id": did, "smiles": smi, "reason": reason})
    proteins = ProteinSet.from_sequences([str(k) for k in prot], [str(v) for v in prot.values()])

    rows, cols = np.where(~np.isnan(y))  # DeepDTA's pair numbering: the fold files index this
    affinity = y[rows, cols]
    test, train_folds = _folds(root, setting, len(affinity))
    if not 0 <= valid_fold < len(train_folds):
        raise InvalidInputError(
            f"valid_fold must be in 0..{len(train_folds) - 1}, got {valid_fold}"
        )
    train = np.concatenate([f for k, f in enumerate(train_folds) if k != valid_fold])
    parts = [train, train_folds[valid_fold], test]
    dropped = 0
    if invalid:  # pairs of drugs RDKit cannot parse have no graph: leave them out of every part
        bad = np.zeros(len(drug_ids), dtype=bool)
        bad[[d["index"] for d in invalid]] = True
        keep = [~bad[rows[p]] for p in parts]
        dropped = int(sum(int((~k).sum()) for k in keep))
        parts = [p[k] for p, k in zip(parts, keep)]
    return DTAData(
        name=spec.name,
        drug_ids=drug_ids,
        smiles=smiles,
        proteins=proteins,
        drug_idx=rows.astype(np.int64),
        prot_idx=cols.astype(np.int64),
        affinity=affinity,
        split=Split(*parts, kind=f"deepdta-setting{setting}(valid_fold={valid_fold})"),
        units=UNITS.get(spec.name, "affinity"),
        setting=setting,
        valid_fold=valid_fold,
        ligands=ligands,
        invalid_drugs=invalid,
        dropped_pairs=dropped,
        source=str(root),
    )


# ------------------------------------------------------------------------------------ loaders
class PairCollate:
    """Picklable collate: pair positions -> PairBatch (workers may run in other processes)."""

    def __init__(self, data: DTAData, graphs: GraphSet, max_len: int = MAX_LEN):
        self.data, self.graphs, self.max_len = data, graphs, max_len
        self.rows = data.graph_rows()

    def __call__(self, idx: list[int]) -> PairBatch:
        return self.data.collate(
            self.graphs, np.asarray(idx, dtype=np.int64), self.max_len, self.rows
        )


class PairIdCollate:
    """Picklable collate: pair positions -> PairIds."""

    def __init__(self, data: DTAData):
        self.data = data

    def __call__(self, idx: list[int]) -> PairIds:
        return self.data.collate_ids(np.asarray(idx, dtype=np.int64))


def make_pair_loader(
    data: DTAData,
    graphs: GraphSet,
    pairs: np.ndarray,
    batch_size: int = 256,
    shuffle: bool = False,
    seed: int = 0,
    epoch_offset: int = 0,
    max_len: int = MAX_LEN,
    drop_last: bool = False,
    ids_only: bool = False,
) -> DataLoader:
    """DataLoader of PairBatch (or PairIds with ``ids_only``) over ``pairs`` (shuffled per
    epoch, or in evaluation order)."""
    pairs = np.asarray(pairs, dtype=np.int64)
    if not shuffle:
        pairs = data.eval_order(pairs)
    sampler = EpochSeededSampler(len(pairs), seed, epoch_offset) if shuffle else None
    return DataLoader(
        _Indices(pairs),
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=PairIdCollate(data) if ids_only else PairCollate(data, graphs, max_len),
        drop_last=drop_last,
    )


def iter_pair_batches(
    data: DTAData,
    graphs: GraphSet,
    pairs: np.ndarray,
    batch_size: int = 256,
    max_len: int = MAX_LEN,
) -> Iterator[PairBatch]:
    """Batches over ``pairs`` in evaluation order (for prediction)."""
    order = data.eval_order(pairs)
    rows = data.graph_rows()
    for start in range(0, len(order), batch_size):
        yield data.collate(graphs, order[start : start + batch_size], max_len, rows)


__all__ = [
    "DTAData",
    "DTA_DATASETS",
    "EvalEntities",
    "MAX_LEN",
    "PROTEIN_ALPHABET",
    "PROTEIN_VOCAB_SIZE",
    "PairBatch",
    "PairIds",
    "ProteinSet",
    "encode_sequence",
    "iter_pair_batches",
    "load_dta",
    "make_pair_loader",
]
