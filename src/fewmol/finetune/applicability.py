"""Applicability domain: how far a molecule is from what the model was trained on.

Two measures per molecule: the max Tanimoto similarity of its ECFP4 bits (Morgan radius 2,
2048 bits) to any training molecule, and the Euclidean distance from its pooled GIN embedding
to the nearest training embedding. A molecule is *in domain* when its similarity is at least
the validation split's ``1 - q`` quantile and its distance at most the validation ``q``
quantile (q = 0.95 by default): thresholds set on held-out molecules, so that about 9 in 10
validation molecules are in. Stored as ``applicability.safetensors`` (training bits, uint8
packed, and embeddings, float32) plus ``applicability.json`` (thresholds and provenance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fewmol.chem.fingerprints import FP_BITS, FP_RADIUS, max_tanimoto, morgan_packed
from fewmol.errors import ModelFileError
from fewmol.finetune.metrics import evaluate
from fewmol.io.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    load_tensors,
    read_json,
    save_tensors,
    write_json,
)

AD_JSON = "applicability.json"
AD_TENSORS = "applicability.safetensors"
DEFAULT_QUANTILE = 0.95
_BLOCK_BYTES = 32 << 20  # distance blocks: (query rows x training rows) float64 <= 32 MB


def nearest_distance(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row, float32 (m,).

    Computed as sqrt(|q|² + |r|² - 2 q·r) with one matrix product per block of query rows,
    in float64 so that a training molecule's distance to itself is ~0, not rounding noise.
    """
    q = np.asarray(query, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    m, n = len(q), len(r)
    out = np.full(m, np.nan, dtype=np.float32)
    if m == 0 or n == 0:
        return out
    r_sq = np.einsum("ij,ij->i", r, r)
    block = max(1, _BLOCK_BYTES // (8 * n))
    for s in range(0, m, block):
        qb = q[s : s + block]
        d2 = np.einsum("ij,ij->i", qb, qb)[:, None] + r_sq[None, :] - 2.0 * (qb @ r.T)
        out[s : s + block] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


@dataclass
class Applicability:
    """Training fingerprints and embeddings, and the in-domain thresholds."""

    train_fps: np.ndarray  # uint8 (n_train, FP_BITS / 8), packed ECFP4 bits
    train_emb: np.ndarray  # float32 (n_train, d), pooled encoder embeddings
    sim_threshold: float | None = None
    dist_threshold: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def has_thresholds(self) -> bool:
        """Whether an in/out flag can be given (thresholds need a validation split)."""
        return self.sim_threshold is not None and self.dist_threshold is not None

    def score(
        self, fps: np.ndarray, emb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(max Tanimoto to training, nearest training-embedding distance, in-domain flag)."""
        sim, _ = max_tanimoto(fps, self.train_fps)
        dist = nearest_distance(emb, self.train_emb)
        return sim, dist, self.flag(sim, dist)

    def flag(self, sim: np.ndarray, dist: np.ndarray) -> np.ndarray | None:
        """In-domain flag from similarities and distances (None without thresholds)."""
        if not self.has_thresholds:
            return None
        return (sim >= self.sim_threshold) & (dist <= self.dist_threshold)

    def score_with_training_rows(
        self, fps: np.ndarray, emb: np.ndarray, train_rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`score` for rows of which ``train_rows`` are the stored training molecules.

        Each of those is its own nearest training neighbour (similarity 1, or 0 for an empty
        fingerprint, as max_tanimoto gives; distance 0), so only the other rows are compared
        with the training set: all-against-training on HIV's 41k molecules took minutes.
        """
        is_train = np.zeros(len(fps), dtype=bool)
        is_train[train_rows] = True
        other = np.flatnonzero(~is_train)
        sim = np.empty(len(fps), dtype=np.float32)
        dist = np.empty(len(fps), dtype=np.float32)
        sim[other], dist[other], _ = self.score(fps[other], emb[other])
        sim[is_train] = fps[is_train].any(1)
        dist[is_train] = 0.0
        return sim, dist, self.flag(sim, dist)

    def save(self, model_dir: str | Path) -> None:
        """Write ``applicability.safetensors`` and ``applicability.json``."""
        d = Path(model_dir)
        save_tensors(
            d / AD_TENSORS,
            {
                "train_fps": torch.from_numpy(np.ascontiguousarray(self.train_fps, np.uint8)),
                "train_emb": torch.from_numpy(np.ascontiguousarray(self.train_emb, np.float32)),
            },
        )
        write_json(
            d / AD_JSON,
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "kind": "applicability",
                "fingerprint": {"type": "morgan", "radius": FP_RADIUS, "bits": FP_BITS},
                "sim_threshold": self.sim_threshold,
                "dist_threshold": self.dist_threshold,
                **self.info,
            },
        )

    @classmethod
    def load(cls, model_dir: str | Path) -> Applicability | None:
        """Read a model dir's applicability files (None if it has none)."""
        d = Path(model_dir)
        if not (d / AD_JSON).exists():
            return None
        meta = read_json(d / AD_JSON, "applicability domain")
        if meta.get("kind") != "applicability":
            raise ModelFileError(f"{d / AD_JSON} is not a fewmol applicability file")
        fp = meta.get("fingerprint", {})
        if fp.get("radius") != FP_RADIUS or fp.get("bits") != FP_BITS:
            raise ModelFileError(f"{d / AD_JSON} uses fingerprints this fewmol cannot compute")
        tensors = load_tensors(d / AD_TENSORS)
        try:
            fps = tensors["train_fps"].numpy()
            emb = tensors["train_emb"].numpy()
        except KeyError as e:
            raise ModelFileError(f"{d / AD_TENSORS} lacks {e}") from None
        info = {
            k: v
            for k, v in meta.items()
            if k not in ("format", "format_version", "kind", "sim_threshold", "dist_threshold")
        }
        return cls(fps, emb, meta.get("sim_threshold"), meta.get("dist_threshold"), info)


def fit_applicability(
    train_smiles: list[str],
    train_emb: np.ndarray,
    valid_smiles: list[str],
    valid_emb: np.ndarray,
    quantile: float = DEFAULT_QUANTILE,
    embedding_from: str = "model",
) -> Applicability:
    """Store the training set and set the in-domain thresholds on the validation molecules."""
    n_train = len(train_smiles)
    emb = np.concatenate([np.asarray(train_emb), np.asarray(valid_emb)])
    ad, *_ = fit_on_rows(
        morgan_packed(list(train_smiles) + list(valid_smiles)),
        emb,
        np.arange(n_train),
        np.arange(n_train, len(emb)),
        quantile,
        embedding_from,
    )
    return ad


def fit_on_rows(
    fps: np.ndarray,
    emb: np.ndarray,
    train_rows: np.ndarray,
    valid_rows: np.ndarray,
    quantile: float = DEFAULT_QUANTILE,
    embedding_from: str = "model",
) -> tuple[Applicability, np.ndarray, np.ndarray, np.ndarray | None]:
    """Fit on a table's training rows, threshold on its valid rows, and score every row.

    Returns (applicability, similarity, distance, in-domain flag) for all rows of ``fps`` /
    ``emb``; each row is compared with the training set once (training rows not at all: see
    :meth:`Applicability.score_with_training_rows`).
    """
    ad = Applicability(fps[train_rows], np.asarray(emb[train_rows], np.float32))
    ad.info = {
        "n_train": len(train_rows),
        "quantile": quantile,
        "embedding_from": embedding_from,
        "thresholds_from": "valid",
        "n_valid": len(valid_rows),
    }
    sim, dist, _ = ad.score_with_training_rows(fps, emb, train_rows)
    if len(valid_rows):
        ad.sim_threshold = float(np.quantile(sim[valid_rows], 1.0 - quantile))
        ad.dist_threshold = float(np.quantile(dist[valid_rows], quantile))
        ad.info["valid_median_similarity"] = float(np.median(sim[valid_rows]))
        ad.info["valid_median_distance"] = float(np.median(dist[valid_rows]))
    else:
        ad.info["thresholds_from"] = None  # no validation split: scores only, no in/out flag
    return ad, sim, dist, ad.flag(sim, dist)


def domain_report(task_type: str, y: np.ndarray, pred: np.ndarray, flag: np.ndarray) -> dict:
    """Share of molecules in domain and the metrics inside vs outside (does the flag work?)."""
    out: dict[str, Any] = {"n": int(len(y)), "in_domain_fraction": float(flag.mean())}
    for name, m in (("in_domain", flag), ("out_of_domain", ~flag)):
        if m.sum() >= 2:
            out[name] = evaluate(task_type, y[m], pred[m])
    return out
