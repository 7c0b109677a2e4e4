"""Run a protocol grid (datasets x methods x seeds), resumable per (dataset, method, seed).

Each finished cell writes ``<results>/<protocol>/<method>/<dataset>/seed<k>.json`` with the
score, budget and provenance (and, for a pre-trained encoder, its pre-training budget); a cell
whose JSON exists with the same budget (epochs, precision; for DTA also the pair subsamples) is
skipped, and an unfinished cell resumes from its own checkpoint in the work dir. Molecule-table
protocols fine-tune through ``fewmol.finetune.run``; the ``dta`` protocol trains through
``fewmol.dta.run`` on DeepDTA's setting-1 folds (validation fold 0), as ``fewmol dta`` does.
The method ``rf`` is the classical baseline of ``fewmol finetune --baseline rf`` (a random
forest on Morgan counts + RDKit descriptors) on the same split and seeds, so its row sits
beside the GNN rows of a molecule-table protocol.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fewmol.bench.protocols import Protocol
from fewmol.chem.featurize import FEATURIZERS
from fewmol.data.dta import load_dta
from fewmol.data.load import load_dataset
from fewmol.data.splits import Split, make_split
from fewmol.errors import InvalidInputError, ModelFileError
from fewmol.finetune.baseline import RF_FEATURES, RF_TREES, rf_baseline, rf_features
from fewmol.finetune.config import FinetuneConfig
from fewmol.io.checkpoint import write_json
from fewmol.io.modeldir import (
    git_commit,
    git_dirty,
    read_model_config,
    resolve_init,
    weights_sha256,
)
from fewmol.training import check_precision, hardware


def result_path(results: Path, protocol: str, method: str, dataset: str, seed: int) -> Path:
    """Where one cell's JSON lives."""
    return Path(results) / protocol / method / dataset / f"seed{seed}.json"


#: what a record written before a field existed ran with
RECORD_DEFAULTS: dict[str, Any] = {"precision": "32-true", "train_size": None}


def _done(path: Path, expect: dict[str, Any]) -> bool:
    """Whether a cell's JSON exists and was run with the budget ``expect`` (epochs, pairs)."""
    if not path.exists():
        return False
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return all(rec.get(k, RECORD_DEFAULTS.get(k)) == v for k, v in expect.items())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def cell_lock(run_dir: Path) -> Iterator[bool]:
    """Claim a grid cell for this process (True), or report that a live process holds it.

    Lets several ``fewmol bench run`` workers share one grid; a lock left by a killed
    process (its PID no longer alive) is taken over.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _pid_alive(pid):
                yield False
                return
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        try:
            yield True
        finally:
            lock.unlink(missing_ok=True)
        return
    yield False


def cell_busy(run_dir: Path) -> bool:
    """Whether another live process holds the cell's lock (it is training that cell now)."""
    try:
        pid = int((Path(run_dir) / ".lock").read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    return bool(pid) and pid != os.getpid() and _pid_alive(pid)


#: grid methods that are not a GIN (no encoder, no epochs): the classical baseline
BASELINE_METHODS = ("rf",)


def init_for(method: str, pretrained: dict[str, str]) -> str | None:
    """Encoder to start from for a method: none, an explicit path, or a shipped checkpoint."""
    if method == "none" or method in BASELINE_METHODS:
        return None
    if method in pretrained:
        return pretrained[method]
    # a shipped checkpoint stands in for a method only when it was pre-trained by that method
    # (``graphmvp`` is also a short name of the shipped GraphMVP-C encoder, not GraphMVP itself)
    trained_by = read_model_config(resolve_init(method)).get("method")
    if trained_by not in (None, method):
        raise ModelFileError(
            f"the checkpoint shipped as {method!r} was pre-trained with {trained_by!r}, "
            f"not {method!r}"
        )
    return method


def split_row_name(method: str) -> tuple[str, str | None]:
    """'none+ogb' -> ('none', 'ogb'): a row of a method trained on another featuriser."""
    base, plus, feat = method.partition("+")
    if plus and feat not in FEATURIZERS:
        raise InvalidInputError(
            f"method {method!r}: after '+' comes a featuriser ({', '.join(FEATURIZERS)})"
        )
    return base, feat or None


def featurizer_for(init: str | None, explicit: str | None = None) -> str:
    """Featuriser of a cell: the one asked for, else the --init encoder's, else hu2019."""
    if explicit:
        return explicit
    if init:
        return read_model_config(resolve_init(init)).get("featurizer", "hu2019")
    return "hu2019"


def imported_on_call(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported when first called: the training entry points load Lightning
    (seconds), so `import fewmol.cli` stays light; tests can still replace the module attribute.
    """

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f":func:`{module}.{name}`, imported on first use."
    return call


featurize_table = imported_on_call("fewmol.finetune.run", "featurize_table")
finetune = imported_on_call("fewmol.finetune.run", "finetune")
train_dta = imported_on_call("fewmol.dta.run", "train_dta")


_LOSS_KEYS = ("contrastive", "generative", "alpha1", "alpha2", "alpha3", "beta", "temperature")


def pretrain_budget(init: str | None) -> dict[str, Any] | None:
    """Pre-training budget of an --init encoder, read from its config.json (None without init).

    Keys follow ``fewmol.pretrain.run.PretrainRun.info``; an encoder dir written some other
    way (a fine-tuned model dir, a shipped checkpoint) gives None for what it does not record.
    ``weights_sha256`` identifies the weights themselves.
    """
    if not init:
        return None
    cfg = read_model_config(resolve_init(init))
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    settings = cfg.get("pretraining") if isinstance(cfg.get("pretraining"), dict) else {}
    per_mol = data.get("conformers_per_molecule")
    if isinstance(per_mol, dict):
        per_mol = per_mol.get("mean")
    elif data.get("n_conformers") and data.get("n_molecules"):
        per_mol = data["n_conformers"] / data["n_molecules"]
    return {
        "source": str(init),
        "kind": cfg.get("kind"),
        "method": cfg.get("method"),
        "epochs": cfg.get("epochs"),
        "epochs_done": cfg.get("epochs_done"),
        "complete": cfg.get("complete"),
        "molecules": data.get("n_molecules"),
        "conformers_per_molecule": per_mol,
        "data_source": data.get("source"),
        "wall_time_s": cfg.get("wall_time_s"),
        "featurizer": cfg.get("featurizer"),
        "hardware": cfg.get("hardware"),
        "git_commit": cfg.get("git_commit"),
        # which weights exactly: rows whose encoder was re-made (a new machine) can be checked
        "weights_sha256": weights_sha256(init),
        # the GraphMVP loss settings, so an ablation row can be checked against its name
        "losses": (
            {k: settings[k] for k in _LOSS_KEYS if k in settings}
            if str(cfg.get("method") or "").startswith("graphmvp")
            else None
        ),
    }


# Model-size overrides for DTA cells (tests shrink the GIN and the CNN; a run records its sizes).
DTA_MODEL: dict[str, Any] = {}


def _budget_key(
    protocol: Protocol,
    epochs: int,
    max_pairs: int | None,
    max_eval: int | None,
    featurizer: str | None = None,
    precision: str = "32-true",
) -> dict[str, Any]:
    """What a finished cell's JSON must match to be skipped (one budget per results tree)."""
    key: dict[str, Any] = {"epochs": epochs, "precision": precision}
    if featurizer is not None:
        key["featurizer"] = featurizer
    if protocol.runner == "dta":
        key.update(max_pairs=max_pairs, max_eval_pairs=max_eval)
    return key


class _DatasetState:
    """One dataset's table (or DTA pairs), split and graphs per featuriser, loaded on demand."""

    def __init__(self, protocol: Protocol, dataset: str, data_dir: Path | None, workers: int):
        self.protocol, self.dataset, self.workers = protocol, dataset, workers
        self._graphs: dict[str, Any] = {}
        # caches shared with the train-subset copies of this state (the same dict objects)
        self._rf: dict[str, Any] = {}
        if protocol.runner == "dta":
            self.data = load_dta(dataset, data_dir)  # DeepDTA setting-1, valid fold 0
            self.table = self.info = self.split = None
        else:
            self.table, self.info = load_dataset(
                dataset,
                None,
                None,
                None,
                "skip",
                data_dir,
                duplicates="first" if protocol.drop_duplicates else "keep",
            )
            self.split = make_split(protocol.split, self.table.smiles)

    def graphs(self, featurizer: str) -> Any:
        """Featurised molecules (cached per featuriser; methods may differ in featuriser)."""
        if featurizer not in self._graphs:
            if self.protocol.runner == "dta":
                self._graphs[featurizer] = self.data.featurize(featurizer, self.workers)
            else:
                self._graphs[featurizer] = featurize_table(self.table, featurizer, self.workers)
        return self._graphs[featurizer]

    def with_train_subset(self, size: int, seed: int) -> _DatasetState:
        """This dataset with its training split cut to ``size`` molecules drawn with ``seed``.

        Valid and test stay whole, so scores at every size are measured on the same molecules;
        the copy shares the featurised graphs.
        """
        train = self.split.train
        if size < len(train):
            rng = np.random.default_rng([seed, size])
            train = np.sort(rng.choice(train, size=size, replace=False))
        new = copy.copy(self)
        new.split = Split(
            train, self.split.valid, self.split.test, f"{self.split.kind}, train {len(train)}"
        )
        return new

    def rf_features(self) -> Any:
        """The RF baseline's fingerprints + descriptors (computed once, shared by its seeds)."""
        if "x" not in self._rf:
            t0 = time.time()
            self._rf["x"] = rf_features(self.table.smiles, self.workers)
            self._rf["seconds"] = round(time.time() - t0, 1)
        return self._rf["x"]

    @property
    def rf_features_s(self) -> float:
        """Seconds the RF features took (0 until computed)."""
        return float(self._rf.get("seconds", 0.0))


def run_grid(
    protocol: Protocol,
    methods: Sequence[str],
    seeds: Sequence[int],
    datasets: Sequence[str],
    results: Path,
    work: Path,
    epochs: int | None = None,
    data_dir: Path | None = None,
    pretrained: dict[str, str] | None = None,
    featurizer: str | None = None,
    workers: int = 1,
    progress: bool = False,
    accelerator: str = "auto",
    log: Callable[[str], None] = print,
    max_pairs: int | None = None,
    max_eval_pairs: int | None = None,
    precision: str = "32-true",
    train_size: int | None = None,
) -> list[dict[str, Any]]:
    """Run every missing cell of the grid; return the result records of all cells.

    ``train_size`` trains every cell on a seeded random subset of that many molecules of the
    training split (a learning-curve point; valid and test unchanged), recorded per cell.
    """
    check_precision(precision)
    if train_size is not None and (protocol.runner == "dta" or train_size < 2):
        raise InvalidInputError(
            "--train-size needs at least 2 molecules and a molecule table (classification, "
            f"regression), got {train_size} for {protocol.name!r}"
        )
    unknown = [d for d in datasets if d not in protocol.datasets]
    if unknown:
        raise InvalidInputError(
            f"{', '.join(unknown)} not in protocol {protocol.name!r} "
            f"(datasets: {', '.join(protocol.datasets)})"
        )
    if not methods:
        raise InvalidInputError("--methods needs at least one method (none or a pre-training)")
    if protocol.runner != "dta" and (max_pairs is not None or max_eval_pairs is not None):
        raise InvalidInputError(
            f"--max-pairs / --max-eval-pairs apply to the dta protocol, not {protocol.name!r}"
        )
    baselines = [m for m in methods if m in BASELINE_METHODS]
    if baselines and protocol.runner == "dta":
        raise InvalidInputError(
            f"{', '.join(baselines)}: the classical baseline applies to molecule tables "
            "(classification, regression), not to the dta protocol"
        )
    for n, flag in ((max_pairs, "--max-pairs"), (max_eval_pairs, "--max-eval-pairs")):
        if n is not None and n < 1:
            raise InvalidInputError(f"{flag} must be >= 1, got {n}")
    if epochs is not None and epochs < 1:
        raise InvalidInputError(f"--epochs must be >= 1, got {epochs}")
    epochs = epochs or protocol.epochs
    pretrained = pretrained or {}
    # resolve every encoder before loading data: a missing --pretrained dir fails at once
    inits, feats = {}, {}
    for m in methods:
        if m in BASELINE_METHODS:
            inits[m], feats[m] = None, RF_FEATURES
            continue
        try:
            base, row_feat = split_row_name(m)
            inits[m] = init_for(m if m in pretrained else base, pretrained)
            feats[m] = featurizer_for(inits[m], row_feat or featurizer)
        except ModelFileError as e:
            raise ModelFileError(
                f"method {m!r}: {e}; pass --pretrained {m}=ENCODER_DIR (a `fewmol pretrain` "
                "output dir)"
            ) from None
    expect = {
        m: {"n_estimators": RF_TREES, "featurizer": RF_FEATURES}
        if m in BASELINE_METHODS
        else _budget_key(protocol, epochs, max_pairs, max_eval_pairs, feats[m], precision)
        for m in methods
    }
    for key in expect.values():
        key["train_size"] = train_size
    command = " ".join(shlex.quote(a) for a in sys.argv)
    # provenance is the code this process started with, not whatever HEAD is when a cell ends
    code = {"git_commit": git_commit(), "git_dirty": git_dirty()}
    records = []
    for dataset in datasets:
        todo = [
            (m, s)
            for m in methods
            for s in seeds
            if not _done(result_path(results, protocol.name, m, dataset, s), expect[m])
        ]
        if not todo:
            log(f"{dataset}: all {len(methods) * len(seeds)} runs done")
        else:
            state = _DatasetState(protocol, dataset, data_dir, workers)
            for method, seed in todo:
                # runs of another budget must not resume (or be resumed by) this one
                cell = f"seed{seed}"
                if max_pairs is not None or max_eval_pairs is not None:
                    cell += f"-pairs{max_pairs or 'all'}-eval{max_eval_pairs or 'all'}"
                if feats[method] != "hu2019" and method not in BASELINE_METHODS:
                    cell += f"-{feats[method]}"
                if epochs != protocol.epochs:
                    # a longer run's checkpoint must not stand in for a shorter budget
                    cell += f"-ep{epochs}"
                if precision != "32-true" and method not in BASELINE_METHODS:
                    cell += f"-{precision}"
                if train_size is not None:
                    cell += f"-n{train_size}"
                run_dir = Path(work) / protocol.name / method / dataset / cell
                with cell_lock(run_dir) as mine:
                    if not mine:
                        log(f"{dataset} / {method} / seed {seed}: another worker has it; skipped")
                        continue
                    result = result_path(results, protocol.name, method, dataset, seed)
                    if _done(result, expect[method]):
                        continue
                    cell_args = _Cell(
                        protocol,
                        method,
                        dataset,
                        seed,
                        epochs,
                        inits[method],
                        feats[method],
                        "32-true" if method in BASELINE_METHODS else precision,
                    )
                    # the encoder's budget as loaded now (its pre-training may continue later)
                    budget = pretrain_budget(inits[method])
                    run_cell = (
                        _run_rf_cell
                        if method in BASELINE_METHODS
                        else _run_dta_cell
                        if protocol.runner == "dta"
                        else _run_cell
                    )
                    cell_state = state
                    if train_size is not None:
                        cell_state = state.with_train_subset(train_size, seed)
                        log(
                            f"{dataset} / {method} / seed {seed}: training split cut to "
                            f"{len(cell_state.split.train)} of {len(state.split.train)} molecules"
                        )
                    record = run_cell(
                        cell_args,
                        cell_state,
                        run_dir,
                        progress,
                        accelerator,
                        max_pairs,
                        max_eval_pairs,
                        log,
                    )
                    record.update(
                        {
                            "train_size": train_size,
                            "pretraining": budget,
                            "hardware": hardware(),
                            **code,
                            "command": command,
                            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        }
                    )
                    write_json(result, record)
                    test = record["test"]
                    at = (
                        ""
                        if record["best_epoch"] is None
                        else f"best epoch {record['best_epoch']}, "
                    )
                    log(
                        f"  -> test {protocol.metric} {test if test is None else round(test, 4)} "
                        f"({at}{record['wall_time_s']:.0f} s)"
                    )
        for method in methods:
            for seed in seeds:
                p = result_path(results, protocol.name, method, dataset, seed)
                if p.exists():
                    records.append(json.loads(p.read_text()))
    return records


@dataclasses.dataclass(frozen=True)
class _Cell:
    """One (dataset, method, seed) of a grid and what it starts from."""

    protocol: Protocol
    method: str
    dataset: str
    seed: int
    epochs: int
    init: str | None
    featurizer: str
    precision: str = "32-true"


def _run_cell(
    c: _Cell,
    state: _DatasetState,
    run_dir: Path,
    progress: bool,
    accelerator: str,
    max_pairs: int | None,
    max_eval_pairs: int | None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fine-tune one (dataset, method, seed) cell; return its record (provenance added later)."""
    t0 = time.time()
    p, table = c.protocol, state.table
    log(f"{c.dataset} / {c.method} / seed {c.seed}: {c.epochs} epochs on {len(table)} mols")
    cfg = FinetuneConfig(
        epochs=c.epochs,
        batch_size=p.batch_size,
        lr=p.lr,
        dropout=p.dropout,
        featurizer=c.featurizer,
        seed=c.seed,
        init=c.init,
        select_metric=p.metric,
        progress=progress,
        accelerator=accelerator,
        precision=c.precision,
        extra={"protocol": p.name, "method": c.method},
    )
    graphs = state.graphs(c.featurizer)
    m = finetune(table, state.split, cfg, run_dir, resume=True, data_info=state.info, graphs=graphs)
    return {
        "protocol": p.name,
        "method": c.method,
        "dataset": c.dataset,
        "seed": c.seed,
        "metric": p.metric,
        "test": m["test_at_best_valid"].get(p.metric),
        "test_at_last_epoch": m["test_at_last_epoch"].get(p.metric),
        # every test metric (regression: RMSE, MAE, R²) for the secondary tables
        "test_metrics": m["test_at_best_valid"],
        "test_metrics_at_last_epoch": m["test_at_last_epoch"],
        "valid": m["best_valid"].get(p.metric),
        "best_epoch": m["best_epoch"],
        "epochs": c.epochs,
        "paper_epochs": p.epochs,
        "n_molecules": m["n_molecules"],
        "n_input_rows": table.n_input,
        "split": p.split,
        "split_sizes": m["split_sizes"],
        "featurizer": c.featurizer,
        "precision": c.precision,
        "init": cfg.init,
        "batch_size": p.batch_size,
        "lr": p.lr,
        "wall_time_s": m["wall_time_s"],
        "session_wall_s": round(time.time() - t0, 1),
        # what the run's own model dir says about its test split (kept: work dirs are pruned)
        "calibration": m.get("calibration"),
        "applicability": m.get("applicability"),
    }


def _run_rf_cell(
    c: _Cell,
    state: _DatasetState,
    run_dir: Path,
    progress: bool,
    accelerator: str,
    max_pairs: int | None,
    max_eval_pairs: int | None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fit the random-forest baseline of one (dataset, seed) cell; return its record."""
    t0 = time.time()
    p, table, split = c.protocol, state.table, state.split
    log(f"{c.dataset} / rf / seed {c.seed}: {RF_TREES} trees per task on {len(table)} mols")
    x = state.rf_features()
    scores, _ = rf_baseline(
        table, split, seed=c.seed, trees=RF_TREES, workers=state.workers, features=x
    )
    test, valid = scores.get("test", {}), scores.get("valid", {})
    return {
        "protocol": p.name,
        "method": c.method,
        "dataset": c.dataset,
        "seed": c.seed,
        "metric": p.metric,
        "test": test.get(p.metric),
        "test_at_last_epoch": None,
        "test_metrics": test,
        "valid": valid.get(p.metric),
        "best_epoch": None,
        "epochs": None,  # a forest has no epochs; its budget is its size
        "paper_epochs": p.epochs,
        "n_estimators": RF_TREES,
        "n_molecules": len(table),
        "n_input_rows": table.n_input,
        "split": p.split,
        "split_sizes": {k: len(getattr(split, k)) for k in ("train", "valid", "test")},
        "featurizer": RF_FEATURES,
        "features": scores["features"],
        "init": None,
        "wall_time_s": round(scores["wall_time_s"], 1),  # fitting + scoring
        "features_wall_s": state.rf_features_s,  # computed once per dataset and process
        "session_wall_s": round(time.time() - t0, 1),
    }


def _run_dta_cell(
    c: _Cell,
    state: _DatasetState,
    run_dir: Path,
    progress: bool,
    accelerator: str,
    max_pairs: int | None,
    max_eval_pairs: int | None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one drug–target affinity cell; return its record (provenance added later)."""
    from fewmol.dta.run import DTAConfig

    t0 = time.time()
    p, data = c.protocol, state.data
    cfg = DTAConfig(
        epochs=c.epochs,
        batch_size=p.batch_size,
        lr=p.lr,
        dropout=p.dropout,
        featurizer=c.featurizer,
        seed=c.seed,
        init=c.init,
        max_pairs=max_pairs,
        max_eval_pairs=max_eval_pairs,
        progress=progress,
        accelerator=accelerator,
        precision=c.precision,
        extra={"protocol": p.name, "method": c.method},
        **DTA_MODEL,
    )
    n_train = min(len(data.split.train), max_pairs or len(data.split.train))
    log(f"{c.dataset} / {c.method} / seed {c.seed}: {c.epochs} epochs on {n_train} pairs")
    m = train_dta(data, cfg, run_dir, resume=True, graphs=state.graphs(c.featurizer))
    best, last = m["test_at_best_valid"], m["test_at_last_epoch"]
    return {
        "protocol": p.name,
        "method": c.method,
        "dataset": c.dataset,
        "seed": c.seed,
        "metric": p.metric,
        "test": best.get(p.metric),
        "test_at_last_epoch": last.get(p.metric),
        "test_ci": best.get("ci"),
        "test_metrics": best,  # MSE, RMSE, concordance index, Pearson r
        "test_metrics_at_last_epoch": last,
        "valid": m["best_valid"].get(p.metric),
        "best_epoch": m["best_epoch"],
        "epochs": c.epochs,
        "paper_epochs": p.epochs,
        "units": m["units"],
        "n_molecules": m["counts"]["drugs"],
        "n_proteins": m["counts"]["proteins"],
        "n_pairs": m["counts"]["pairs"],
        "n_train_pairs": m["split_sizes"]["train"],
        "max_pairs": max_pairs,
        "max_eval_pairs": max_eval_pairs,
        "split": p.split,
        "valid_fold": data.valid_fold,
        "split_sizes": m["split_sizes"],
        "ligands": data.ligands,
        "featurizer": c.featurizer,
        "precision": c.precision,
        "model": {"num_layers": cfg.num_layers, "dim": cfg.dim, "mlp_hidden": cfg.mlp_hidden},
        "init": cfg.init,
        "batch_size": p.batch_size,
        "lr": p.lr,
        "train_pairs_per_s": m["throughput"]["train_pairs_per_s"],
        "torch_threads": m["throughput"]["torch_threads"],
        "wall_time_s": m["wall_time_s"],
        "session_wall_s": round(time.time() - t0, 1),
    }
