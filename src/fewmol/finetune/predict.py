"""Predictions and embeddings for new molecules from a model dir (one output row per input row).

A *predictor* is a model dir, or a dir of ``seed*/`` model dirs (an ensemble, averaged). Per
task it gives the prediction, its spread (``_std``: ensemble and/or MC-dropout), the
calibrated interval (``_lower``/``_upper``, regression) or probability (``_prob_cal``,
classification) when the dir holds ``calibration.json``, and applicability-domain columns
when it holds ``applicability.json``. Input hygiene recorded in config.json is re-applied.

Files are streamed: :func:`predict_file` / :func:`embed_file` read the input in chunks, write
each chunk's rows to ``OUT.parts/`` as soon as they are ready and join the parts at the end,
so memory stays constant and a killed run resumes at its first unfinished chunk. The rows
equal those of the in-memory :func:`predict_table` / :func:`embed_table`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fewmol.chem.featurize import featurize_many, get_featurizer
from fewmol.chem.fingerprints import morgan_packed
from fewmol.chem.mol import Hygiene
from fewmol.data.collate import GraphSet
from fewmol.data.tables import SmilesStream, Table, open_smiles_stream, read_smiles
from fewmol.errors import InvalidInputError, ModelFileError
from fewmol.finetune.applicability import Applicability
from fewmol.finetune.calibration import apply_calibration, load_calibration
from fewmol.finetune.defaults import DEFAULT_CHUNK_ROWS
from fewmol.finetune.inference import BATCH_ROWS, load_module, run_inference
from fewmol.finetune.module import FinetuneModule
from fewmol.io.checkpoint import read_json, write_json
from fewmol.io.modeldir import (
    check_not_stl,
    encoder_source_kind,
    is_model_dir,
    load_pretrained_encoder,
    resolve_init,
    shipped_checkpoint,
    shipped_checkpoints,
)
from fewmol.models.heads import GraphPropertyModel, NoHead
from fewmol.training import check_precision

__all__ = [
    "Predictor",
    "embed_file",
    "embed_table",
    "load_module",
    "model_members",
    "predict_file",
    "predict_table",
]


def model_members(path: str | Path) -> list[Path]:
    """The model dirs behind ``path``: itself, or its ``seed*/`` or ``fold*/`` runs (averaged).

    A cross-validation dir (``finetune --folds``) predicts with the mean of its fold models.
    """
    path = Path(path)
    if is_model_dir(path):
        return [path]
    ens = path / "ensemble.json"
    if ens.exists():
        members = [path / m for m in read_json(ens, "ensemble").get("members", [])]
        missing = [m.name for m in members if not is_model_dir(m)]
        if missing or not members:
            raise ModelFileError(
                f"{path} is an ensemble dir but its members {', '.join(missing) or '(none)'} "
                "are missing or incomplete"
            )
        return members
    for prefix in ("seed", "fold"):
        runs = [p for p in path.glob(f"{prefix}*") if p.name[len(prefix) :].isdigit()]
        members = sorted(
            (p for p in runs if is_model_dir(p)), key=lambda p: int(p.name[len(prefix) :])
        )
        if members:
            break
    if not members:
        raise ModelFileError(
            f"{path} is not a fewmol model dir (no config.json + model.safetensors) and has no "
            "seed*/ or fold*/ model dirs; point at the --out of `fewmol finetune`"
        )
    return members


@dataclass
class Predictor:
    """Everything ``fewmol predict`` needs from a model dir, loaded once."""

    path: Path
    member_names: list[str]
    modules: list[FinetuneModule]
    config: dict[str, Any]
    calibration: dict[str, Any] | None
    applicability: Applicability | None
    hygiene: Hygiene
    mc_dropout: int
    seed: int
    precision: str = "32-true"

    @classmethod
    def load(
        cls, path: str | Path, embed_only: bool = False, precision: str = "32-true"
    ) -> Predictor:
        """Load the members (only the first for ``embed_only``), calibration and AD files.

        ``precision`` (a training precision name) sets the autocast dtype of inference.
        """
        check_precision(precision)
        path = Path(path)
        if encoder_source_kind(path) == "encoder" or (
            not path.exists() and shipped_checkpoint(str(path)) is not None
        ):
            raise ModelFileError(
                f"{path} is a pre-trained encoder, with no task to predict: fine-tune it "
                f"(`fewmol finetune DATA --init {path}`) or embed molecules with it "
                f"(`fewmol embed {path} INPUT --out emb.parquet`)"
            )
        members = model_members(path)
        if embed_only:
            members = members[:1]
        loaded = [load_module(m) for m in members]
        cfg = loaded[0][1]
        for m, (_, c) in zip(members[1:], loaded[1:]):
            for key in ("featurizer", "target_names", "task_type", "hygiene"):
                if c.get(key) != cfg.get(key):
                    raise ModelFileError(
                        f"ensemble members disagree on {key}: {members[0]} and {m}; "
                        "predict with one member dir"
                    )
        training = cfg.get("training", {})
        single = is_model_dir(path)
        ad = None
        if not embed_only:
            # seeds on different splits have no ensemble-level AD; member 0's matches the
            # embeddings used (member 0's encoder)
            ad = Applicability.load(path) or Applicability.load(members[0])
        return cls(
            path=path,
            member_names=[m.name if not single else "model" for m in members],
            modules=[mod for mod, _ in loaded],
            config=cfg,
            calibration=None if embed_only else load_calibration(path),
            applicability=ad,
            hygiene=Hygiene.from_dict(cfg.get("hygiene")),
            mc_dropout=0 if embed_only else int(training.get("mc_dropout", 0) or 0),
            seed=int(training.get("seed", 0) or 0),
            precision=precision,
        )

    @classmethod
    def load_embedder(
        cls, source: str | Path, precision: str = "32-true", hygiene: Hygiene | None = None
    ) -> Predictor:
        """The GIN encoder that ``fewmol embed`` reads from ``source``.

        ``source``: a fine-tuned model dir (an ensemble: its first member), a pre-trained encoder
        dir (``fewmol pretrain`` / ``import-weights``), a ``multitask`` or ``dta`` model dir, or
        a shipped checkpoint name (``graphmvp``).

        Embeddings are the encoder's pooled output, as its fine-tuning reads them (a pre-trained
        encoder: mean pooling). ``hygiene`` cleans the input of an encoder source; a fine-tuned
        model re-applies the clean-up of its training.
        """
        check_precision(precision)
        path = Path(source)
        if path.is_dir():
            check_not_stl(path)
        if path.exists() and encoder_source_kind(path) is None:
            try:
                pred = cls.load(path, embed_only=True, precision=precision)
            except ModelFileError as e:
                raise ModelFileError(
                    f"{e}, or at a pre-trained encoder dir (config.json + encoder.safetensors: "
                    "the --out of `fewmol pretrain` or `fewmol import-weights`)"
                ) from None
            if hygiene is not None and hygiene != Hygiene():
                raise InvalidInputError(
                    "the input clean-up flags apply to encoder sources only: a fine-tuned model "
                    f"re-applies the clean-up it was trained with ({pred.hygiene.describe()})"
                )
            return pred
        if not path.exists() and shipped_checkpoint(str(source)) is None:
            raise ModelFileError(
                f"{source} not found: give a model or encoder dir, or a checkpoint shipped with "
                f"fewmol ({', '.join(shipped_checkpoints()) or 'none in this version'})"
            )
        encoder_dir = resolve_init(str(source))
        encoder, cfg = load_pretrained_encoder(encoder_dir)
        pooling = cfg.get("pooling", "mean")
        model = GraphPropertyModel(encoder, NoHead(encoder.out_dim), pooling)
        info = {
            k: cfg[k] for k in ("kind", "method", "epochs", "epochs_done", "complete") if k in cfg
        }
        return cls(
            path=encoder_dir,
            member_names=["encoder"],
            # the module only carries the model to inference; with no task its type is moot
            modules=[FinetuneModule(model, "regression").eval()],
            config={"featurizer": cfg.get("featurizer", "hu2019"), "target_names": [], **info},
            calibration=None,
            applicability=None,
            hygiene=hygiene or Hygiene(),
            mc_dropout=0,
            seed=0,
            precision=precision,
        )

    def embed_notes(self) -> list[str]:
        """What a user should know about the embeddings (printed by the CLI)."""
        cfg = self.config
        if cfg.get("kind") == "encoder" and cfg.get("complete") is False:
            return [
                f"{self.path}: pre-training has not finished (epoch {cfg.get('epochs_done')} of "
                f"{cfg.get('epochs')}); these are the encoder's latest weights"
            ]
        return []

    @property
    def target_names(self) -> list[str]:
        """Task names, in output order."""
        return list(self.config["target_names"])

    @property
    def featurizer(self) -> str:
        """Featuriser the members were trained with."""
        return self.config["featurizer"]

    def notes(self) -> list[str]:
        """What this predictor cannot give (printed by the CLI)."""
        out = []
        if self.calibration is None:
            out.append(
                "no calibration.json in this model dir (an older fewmol, no validation split, "
                "or seeds / folds trained on different splits: use --ensemble): no calibrated "
                "columns"
            )
        if self.applicability is None:
            out.append(
                "no applicability.json in this model dir (an older fewmol): no "
                "applicability-domain columns"
            )
        elif not self.applicability.has_thresholds:
            out.append("no in-domain thresholds (no validation split): no ad_in_domain column")
        return out

    # ------------------------------------------------------------------ one chunk
    def prepare(self, table: Table) -> tuple[GraphSet, np.ndarray | None]:
        """Graphs (and packed fingerprints when AD is stored) of a table's kept molecules."""
        return _featurize(table.smiles, self.featurizer, self.applicability is not None)

    def predict(
        self, table: Table, prepared: tuple[GraphSet, np.ndarray | None] | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(predictions, members' predictions) for every input row of a (chunk) table."""
        graphs, fps = prepared if prepared is not None else self.prepare(table)
        ad = self.applicability
        keys = table.offset + table.rows
        inf = run_inference(
            self.modules,
            graphs,
            keys,
            self.mc_dropout,
            self.seed,
            embed=ad is not None,
            precision=self.precision,
        )
        df = _frame(table)
        rows = table.rows
        calibrated = (
            apply_calibration(self.calibration, self.target_names, inf.mean, inf.std)
            if self.calibration
            else {}
        )
        for t, name in enumerate(self.target_names):
            df[f"{name}_pred"] = _scatter(table.n_input, rows, inf.mean[:, t])
            if inf.std is not None:
                df[f"{name}_std"] = _scatter(table.n_input, rows, inf.std[:, t])
            for suffix, values in calibrated.items():
                df[f"{name}_{suffix}"] = _scatter(table.n_input, rows, values[:, t])
        if ad is not None:
            sim, dist, flag = ad.score(fps, inf.embedding)
            df["ad_max_tanimoto"] = _scatter(table.n_input, rows, sim)
            df["ad_nearest_distance"] = _scatter(table.n_input, rows, dist)
            if flag is not None:
                col = pd.array([pd.NA] * table.n_input, dtype="boolean")
                col[rows] = flag
                df["ad_in_domain"] = col
        members = pd.DataFrame({"row": table.offset + np.arange(table.n_input)})
        for m, member in enumerate(self.member_names):
            for t, name in enumerate(self.target_names):
                members[f"{name}_{member}"] = _scatter(table.n_input, rows, inf.members[m, :, t])
        return df, members

    def embed(
        self, table: Table, prepared: tuple[GraphSet, np.ndarray | None] | None = None
    ) -> pd.DataFrame:
        """``row, smiles, valid, error, emb_*`` for every input row (NaN where invalid)."""
        graphs, _ = prepared if prepared is not None else self.prepare(table)
        inf = run_inference(
            self.modules[:1],
            graphs,
            table.offset + table.rows,
            embed=True,
            precision=self.precision,
        )
        emb = inf.embedding
        full = np.full((table.n_input, emb.shape[1]), np.nan, dtype=np.float32)
        full[table.rows] = emb
        df = _frame(table)[["row", "valid", "error"]]
        smiles = table.raw[table.smiles_col].to_numpy() if table.raw is not None else ""
        df.insert(1, "smiles", smiles)
        emb_df = pd.DataFrame(full, columns=[f"emb_{i}" for i in range(full.shape[1])])
        return pd.concat([df.reset_index(drop=True), emb_df], axis=1)


def _featurize(
    smiles: list[str], featurizer: str, fingerprints: bool
) -> tuple[GraphSet, np.ndarray | None]:
    """Graphs without the disk cache (a library of new molecules is read once) and fingerprints."""
    spec = get_featurizer(featurizer)
    graphs = GraphSet.from_graphs(
        featurize_many(smiles, featurizer), len(spec.atom_dims), len(spec.bond_dims)
    )
    return graphs, morgan_packed(smiles) if fingerprints else None


def _scatter(n: int, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values of the kept rows at their positions among ``n`` input rows (NaN elsewhere)."""
    col = np.full(n, np.nan)
    col[rows] = values
    return col


def _frame(table: Table) -> pd.DataFrame:
    """Input rows in order with validity flags (all input columns passed through)."""
    if table.raw is not None:
        df = table.raw.copy()
    else:
        df = pd.DataFrame(index=range(table.n_input))
    df.insert(0, "row", table.offset + np.arange(table.n_input))
    valid = table.kept_mask()
    reasons = (
        table.bad_rows.groupby("row")["reason"].agg("; ".join)
        if len(table.bad_rows)
        else pd.Series(dtype=str)
    )
    df["valid"] = valid
    df["error"] = [reasons.get(i, "") for i in range(table.n_input)]
    return df


def _reread(table: Table, hygiene: Hygiene) -> Table:
    """The table canonicalised with the model's hygiene (if it was read with other settings)."""
    if table.hygiene == hygiene:
        return table
    if table.raw is None:
        raise InvalidInputError(
            f"this model cleans input ({hygiene.describe()}); read the table with "
            "read_smiles(..., hygiene=...) or pass the file"
        )
    return read_smiles(table.raw, table.smiles_col, hygiene=hygiene)


# ---------------------------------------------------------------------- in memory


def predict_table(
    model_path: str | Path,
    table: Table,
    workers: int = 1,
    members: bool = False,
    precision: str = "32-true",
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Per-task predictions for every input row (NaN where the row is invalid), in memory.

    Classification ``_pred`` columns hold P(label = 1) (the members' mean); regression columns
    are in the training units. Several members add ``_std``; calibration and AD columns come
    when the model dir holds them. ``members=True`` also returns the members' predictions.
    ``workers`` is accepted for compatibility; streaming (:func:`predict_file`) uses it.
    ``precision`` ``bf16-mixed`` runs the networks under bfloat16 autocast.
    """
    pred = Predictor.load(model_path, precision=precision)
    table = _reread(table, pred.hygiene)
    df, mem = pred.predict(table)
    return (df, mem) if members else df


def embed_table(
    model_path: str | Path,
    table: Table,
    workers: int = 1,
    precision: str = "32-true",
    hygiene: Hygiene | None = None,
) -> pd.DataFrame:
    """Pooled encoder embeddings (``emb_0`` ...) for every input row (NaN where invalid).

    ``model_path``: anything :meth:`Predictor.load_embedder` reads (``hygiene``: see there).
    """
    pred = Predictor.load_embedder(model_path, precision=precision, hygiene=hygiene)
    return pred.embed(_reread(table, pred.hygiene))


# ---------------------------------------------------------------------- streaming


class ChunkedOutput:
    """Output files written chunk by chunk into ``OUT.parts/`` and joined at the end.

    Each part is written to a temporary name and renamed; ``manifest.json`` lists the finished
    parts (first and end input row) and what produced them, so ``resume`` continues after the
    last finished part and refuses parts made from another input, model or settings.
    """

    def __init__(
        self, outputs: dict[str, Path], identity: dict[str, Any], resume: bool, force: bool
    ):
        self.outputs = {k: Path(v) for k, v in outputs.items()}
        main = self.outputs["main"]
        self.dir = main.with_name(main.name + ".parts")
        self.manifest_path = self.dir / "manifest.json"
        self.identity = json_roundtrip(identity)
        self.parts: list[list[int]] = []
        if self.dir.exists() and force:
            shutil.rmtree(self.dir)
        elif self.dir.exists():
            man = None
            if self.manifest_path.exists():
                man = read_json(self.manifest_path, "partial output manifest")
            done = [list(p) for p in (man or {}).get("parts", [])]
            if done and not resume:
                raise InvalidInputError(
                    f"{self.dir} holds {len(done)} finished chunks of an interrupted run; pass "
                    "--resume to continue it or --force to start over"
                )
            old = (man or {}).get("identity", {})
            if done and old != self.identity:
                diff = sorted(
                    k for k in set(old) | set(self.identity) if old.get(k) != self.identity.get(k)
                )
                raise InvalidInputError(
                    f"the unfinished output in {self.dir} was made with a different "
                    f"{', '.join(diff)}; pass --force to start over"
                )
            self.parts = done
        self.dir.mkdir(parents=True, exist_ok=True)
        self._save_manifest()

    @property
    def start_row(self) -> int:
        """First input row that no finished part covers."""
        return self.parts[-1][1] if self.parts else 0

    def _save_manifest(self) -> None:
        write_json(self.manifest_path, {"identity": self.identity, "parts": self.parts})

    def _part(self, key: str, start: int) -> Path:
        suffix = self.outputs[key].suffix
        return self.dir / f"{key}-{start:012d}{suffix}"

    def write(self, start: int, end: int, frames: dict[str, pd.DataFrame]) -> None:
        """Write one chunk's frames (rows ``start`` .. ``end`` - 1) and record it."""
        for key, df in frames.items():
            path = self._part(key, start)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            if path.suffix == ".parquet":
                df.to_parquet(tmp, index=False)
            else:
                df.to_csv(tmp, index=False)
            os.replace(tmp, path)
        self.parts.append([start, end])
        self._save_manifest()

    def finish(self) -> None:
        """Join the parts of every output into its final file (atomically) and clean up."""
        for key, out in self.outputs.items():
            parts = [self._part(key, p[0]) for p in self.parts]
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
            try:
                if out.suffix == ".parquet":
                    _join_parquet(parts, tmp)
                else:
                    _join_csv(parts, tmp)
                os.replace(tmp, out)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        shutil.rmtree(self.dir, ignore_errors=True)


def json_roundtrip(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(obj))


def _join_csv(parts: list[Path], out: Path) -> None:
    """Concatenate CSV parts, keeping the first header only (streamed, constant memory)."""
    with open(out, "wb") as dst:
        for i, p in enumerate(parts):
            with open(p, "rb") as src:
                header = src.readline()
                if i == 0:
                    dst.write(header)
                shutil.copyfileobj(src, dst, 1 << 20)


def _join_parquet(parts: list[Path], out: Path) -> None:
    """Concatenate parquet parts as row groups of one file (streamed, constant memory)."""
    import pyarrow.parquet as pq

    writer = None
    try:
        for p in parts:
            tab = pq.read_table(p)
            if writer is None:
                writer = pq.ParquetWriter(out, tab.schema)
            writer.write_table(tab.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise InvalidInputError("nothing to write: the input had no rows")


def _prepare_chunk(
    args: tuple[SmilesStream, pd.DataFrame, np.ndarray, int, Hygiene, str, bool],
) -> tuple[Table, tuple[GraphSet, np.ndarray | None]]:
    """Validate, canonicalise and featurise one chunk (runs in a worker process)."""
    stream, df, blank, start, hygiene, featurizer, fps = args
    table = stream.make_table(df, blank, start, hygiene)
    return table, _featurize(table.smiles, featurizer, fps)


def _prepared_chunks(
    stream: SmilesStream,
    chunk_rows: int,
    start_row: int,
    hygiene: Hygiene,
    featurizer: str,
    fingerprints: bool,
    workers: int,
) -> Iterator[tuple[Table, tuple[GraphSet, np.ndarray | None]]]:
    """Chunks in order, validated and featurised by ``workers`` processes (bounded look-ahead)."""
    raw = stream.raw_chunks(chunk_rows, start_row)
    jobs = (
        (stream, df, blank, start, hygiene, featurizer, fingerprints) for df, blank, start in raw
    )
    if workers <= 1:
        for job in jobs:
            yield _prepare_chunk(job)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future] = deque()
        for job in jobs:
            pending.append(pool.submit(_prepare_chunk, job))
            # at most workers + 1 chunks in flight: memory stays bounded
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass
class StreamStats:
    """What a streamed run did (for the CLI summary and the speed benchmark)."""

    rows: int = 0
    valid: int = 0
    resumed_from: int = 0
    seconds: float = 0.0


def _identity(
    kind: str, model: Path, input: Path, chunk_rows: int, smiles_col: str, extra: dict[str, Any]
) -> dict[str, Any]:
    st = input.stat()
    has_config = is_model_dir(model) or (model / "encoder.safetensors").is_file()
    cfg = model / "config.json" if has_config else model
    return {
        "kind": kind,
        "input": str(input.resolve()),
        "input_size": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
        "model": str(model.resolve()),
        "model_mtime_ns": cfg.stat().st_mtime_ns,
        "chunk_rows": chunk_rows,
        "smiles_col": smiles_col,
        **extra,
    }


def _stream(
    kind: str,
    model_path: str | Path,
    input: str | Path,
    outputs: dict[str, Path],
    smiles_col: str | None,
    chunk_rows: int,
    workers: int,
    resume: bool,
    force: bool,
    progress: bool,
    on_note: Callable[[str], None] | None,
    precision: str,
    hygiene: Hygiene | None = None,
) -> StreamStats:
    t0 = time.time()
    if chunk_rows < 1:
        raise InvalidInputError(f"--chunk-size must be at least 1, got {chunk_rows}")
    # whole inference batches per chunk keep MC-dropout masks independent of the chunking
    chunk_rows = -(-chunk_rows // BATCH_ROWS) * BATCH_ROWS
    if kind == "embed":
        pred = Predictor.load_embedder(model_path, precision=precision, hygiene=hygiene)
    else:
        pred = Predictor.load(model_path, precision=precision)
    if on_note:
        for note in pred.notes() if kind == "predict" else pred.embed_notes():
            on_note(note)
    stream = open_smiles_stream(input, smiles_col)
    identity = _identity(
        kind,
        pred.path,
        Path(input),
        chunk_rows,
        stream.smiles_col,
        {"outputs": {k: str(v) for k, v in outputs.items()}},
    )
    if precision != "32-true":
        # chunks made under another precision differ in the last digits: never mix them (the
        # key is absent for float32, so runs interrupted before it existed still resume)
        identity["precision"] = precision
    out = ChunkedOutput(outputs, identity, resume, force)
    stats = StreamStats(resumed_from=out.start_row)
    if stats.resumed_from and on_note:
        on_note(f"resuming at input row {stats.resumed_from} ({len(out.parts)} chunks done)")
    total = stream.count_rows() if progress else None
    chunks = _prepared_chunks(
        stream,
        chunk_rows,
        out.start_row,
        pred.hygiene,
        pred.featurizer,
        kind == "predict" and pred.applicability is not None,
        workers,
    )
    with _progress(progress, total, out.start_row, kind) as advance:
        for table, prepared in chunks:
            if kind == "predict":
                df, mem = pred.predict(table, prepared)
                frames = {"main": df}
                if "members" in outputs:
                    frames["members"] = mem
            else:
                frames = {"main": pred.embed(table, prepared)}
            out.write(table.offset, table.offset + table.n_input, frames)
            stats.rows += table.n_input
            stats.valid += table.n_kept
            advance(table.n_input)
    if not out.parts:
        shutil.rmtree(out.dir, ignore_errors=True)
        raise InvalidInputError(f"{stream.where} has no data rows; add one row per molecule")
    out.finish()
    stats.seconds = time.time() - t0
    return stats


class _progress:
    """A rich progress bar over input rows (or a no-op), as a context manager."""

    def __init__(self, enabled: bool, total: int | None, done: int, kind: str):
        self.enabled, self.total, self.done, self.kind = enabled, total, done, kind
        self.bar = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn(f"{self.kind}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.bar.__enter__()
        task = self.bar.add_task(self.kind, total=self.total, completed=self.done)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def predict_file(
    model_path: str | Path,
    input: str | Path,
    out: str | Path,
    smiles_col: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    workers: int = 1,
    members_out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    on_note: Callable[[str], None] | None = None,
    precision: str = "32-true",
) -> StreamStats:
    """Stream ``input`` through the predictor into ``out`` (CSV); see the module docstring.

    ``members_out`` also writes each member's predictions (``row``, ``<task>_<member>``).
    ``precision`` ``bf16-mixed`` runs the networks under bfloat16 autocast (faster on CPUs with
    AVX512-BF16 or AMX; on BBBP, probabilities moved by at most 0.005 from float32: speed.md).
    """
    outputs = {"main": Path(out)}
    if members_out is not None:
        outputs["members"] = Path(members_out)
    for key, path in outputs.items():
        if path.suffix.lower() != ".csv":
            flag = "--out" if key == "main" else "--members-out"
            raise InvalidInputError(f"{flag} must end in .csv, got {path.name}")
    return _stream(
        "predict",
        model_path,
        input,
        outputs,
        smiles_col,
        chunk_rows,
        workers,
        resume,
        force,
        progress,
        on_note,
        precision,
    )


def embed_file(
    model_path: str | Path,
    input: str | Path,
    out: str | Path,
    smiles_col: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    workers: int = 1,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    precision: str = "32-true",
    hygiene: Hygiene | None = None,
    on_note: Callable[[str], None] | None = None,
) -> StreamStats:
    """Stream ``input`` into pooled embeddings in ``out`` (.parquet or .csv).

    ``model_path``: anything :meth:`Predictor.load_embedder` reads (``hygiene``: see there).
    """
    out = Path(out)
    if out.suffix not in (".parquet", ".csv"):
        raise InvalidInputError(f"--out must end in .parquet or .csv, got {out.name}")
    return _stream(
        "embed",
        model_path,
        input,
        {"main": out},
        smiles_col,
        chunk_rows,
        workers,
        resume,
        force,
        progress,
        on_note,
        precision,
        hygiene,
    )
