"""The SGNN-EBM table (REFERENCE B) as a benchmark: protocol, resumable grid, results page, plot.

``run_multitask_grid`` trains every missing (dataset, method, seed) cell through
:func:`fewmol.multitask.run.train_multitask` (work dir ``<work>/multitask/<method>/<dataset>/
seed<k>/``, resumable) and writes ``<results>/multitask/<method>/<dataset>/seed<k>.json`` with
the test ROC-AUC (averaged over tasks) at the best-validation and at the last epoch, the data
size, budget and provenance. A cell whose JSON holds the same budget is skipped. SGNN-EBM runs
in both noise settings of the paper as two methods: ``sgnn-ebm-fixed`` (``--noise fixed``) and
``sgnn-ebm`` (``--noise adaptive``). With an ``init`` encoder every method's results go to
``<method>@<name>`` so they sit beside, not over, the runs from scratch.

``write_multitask_report`` writes ``<results>/multitask/README.md`` and
``<results>/plots/multitask_bars.png``; ``overview_section`` is the part of
``<results>/README.md`` that ``fewmol bench report`` adds when multitask runs exist. Both are
deterministic (same JSON files, same bytes).

The paper's data (ChEMBL linked to STRING) is not available; the ChEMBL sets here are stand-ins
built from deepchem's ``chembl_5thresh`` (see :mod:`fewmol.multitask.datasets`). The paper's
rows are shown only beside the stand-in with the same task-side label threshold.
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fewmol.bench.report import (
    _cell_notes,
    _hours,
    _save_png,
    _with_rc,
    aggregate,
    load_records,
    method_colour,
)
from fewmol.bench.run import (
    _done,
    cell_busy,
    cell_lock,
    featurizer_for,
    imported_on_call,
    pretrain_budget,
    result_path,
)
from fewmol.chem.featurize import FEATURIZERS
from fewmol.errors import InvalidInputError
from fewmol.io.checkpoint import write_json, write_text
from fewmol.io.modeldir import git_commit, git_dirty
from fewmol.multitask.inputs import build_task_graph, load_input, resolve_split
from fewmol.multitask.model import STRUCTURED
from fewmol.training import check_precision, hardware

PROTOCOL = "multitask"

#: the paper's rows in its order; SGNN-EBM once per noise setting
BENCH_METHODS = (
    "stl",
    "mtl",
    "uw",
    "gradnorm",
    "dwa",
    "lbtw",
    "sgnn",
    "sgnn-ebm-fixed",
    "sgnn-ebm",
)
#: our rows beyond the paper's, run when --methods names them
EXTRA_METHODS = (
    "sgnn-bilinear",
    "sgnn-ebm-bilinear",
    "sgnn-ebm-tilt",
    "sgnn-ebm-gibbs",
    "sgnn-ebm-gs",
)
#: bench method -> (``fewmol multitask --method``, ``--noise``)
RUN_METHOD: dict[str, tuple[str, str | None]] = {
    **{m: (m, None) for m in BENCH_METHODS if not m.startswith("sgnn-ebm")},
    "sgnn-ebm-fixed": ("sgnn-ebm", "fixed"),
    "sgnn-ebm": ("sgnn-ebm", "adaptive"),
    "sgnn-ebm-tilt": ("sgnn-ebm", "adaptive"),
    "sgnn-bilinear": ("sgnn", None),
    "sgnn-ebm-bilinear": ("sgnn-ebm", "adaptive"),
    "sgnn-ebm-gibbs": ("sgnn-ebm", "gibbs"),
    "sgnn-ebm-gs": ("sgnn-ebm", "gibbs"),
}
#: the RUN_SETTINGS keys that belong to the energy (recorded with it)
ENERGY_SETTINGS = ("tilt", "noise_sweeps", "fill_missing")
#: bench method -> further MultitaskConfig settings
RUN_SETTINGS: dict[str, dict[str, Any]] = {
    "sgnn-ebm-tilt": {"tilt": True},
    "sgnn-bilinear": {"bilinear": True},
    "sgnn-ebm-bilinear": {"bilinear": True},
    # the released code's NCE (submit_SGNN_EBM.sh: --NCE_mode=gs --GS_iteration=2
    # --filling_missing_data_mode=gnn --use_ebm_as_tilting), with our jointly trained SGNN
    "sgnn-ebm-gs": {"noise_sweeps": 2, "fill_missing": True},
    "sgnn-ebm-gibbs": {"noise_sweeps": 2},  # its noise alone, missing labels left out
}

#: the paper's name of each row (shown in the legend of the page)
PAPER_LABELS = {
    "stl": "STL",
    "mtl": "MTL",
    "uw": "UW",
    "gradnorm": "GradNorm",
    "dwa": "DWA",
    "lbtw": "LBTW",
    "sgnn": "SGNN",
    "sgnn-ebm-fixed": "SGNN-EBM, noise p_n = SGNN (fixed)",  # our sgnn cell of the same seed
    "sgnn-ebm": "SGNN-EBM, noise p_n = SGNN (adaptive)",
    # not in the paper: the released code's --use_ebm_as_tilting, normalised (sgnn_ebm.py)
    "sgnn-ebm-tilt": "SGNN-EBM tilting its adaptive SGNN noise, p ∝ q·exp(−E) (ours)",
    "sgnn-bilinear": "SGNN with a bilinear molecule x task term in its task states (ours)",
    "sgnn-ebm-bilinear": "SGNN-EBM (adaptive noise) with that bilinear term (ours)",
    "sgnn-ebm-gibbs": "SGNN-EBM with the released code's Gibbs noise, missing labels left out",
    "sgnn-ebm-gs": "SGNN-EBM with the released code's NCE: Gibbs noise, missing labels filled",
}

# ChEMBL stand-ins with the paper's task-side threshold (10 / 50 / 100 labels per task). Only
# chembl-10 also keeps the paper's molecule-side rule: our file has 3.8 labels per molecule, so
# 50 / 100 per molecule leave nothing and the molecule side is relaxed to 10 / 5 labels.
# kiba-mt (kinase tasks, sequence-similarity graph) and toxcast (learned graph) have no paper row.
DATASETS = ("chembl-10", "chembl-50-m10", "chembl-100-m5", "kiba-mt", "toxcast")
PAPER_COLUMNS = {
    "chembl-10": "ChEMBL-10",
    "chembl-50-m10": "ChEMBL-50",
    "chembl-100-m5": "ChEMBL-100",
}
#: the paper's data (REFERENCE B): molecules, tasks, label density (%)
PAPER_DATA = {
    "ChEMBL-10": (13004, 382, 5.76),
    "ChEMBL-50": (932, 152, 66.70),
    "ChEMBL-100": (518, 132, 92.87),
}

# SGNN-EBM (Liu et al., AISTATS 2022) ROC-AUC (%), split 8-1-1, mean ± std over 5 seeds;
# columns ChEMBL-10, ChEMBL-50, ChEMBL-100.
_B = """
stl | 71.67 ± 0.64 | 73.57 ± 1.20 | 70.81 ± 1.28
mtl | 74.83 ± 0.61 | 79.37 ± 1.76 | 77.78 ± 1.59
uw | 72.49 ± 0.53 | 79.68 ± 0.98 | 78.71 ± 1.93
gradnorm | 75.17 ± 0.77 | 79.46 ± 1.27 | 78.75 ± 1.60
dwa | 72.45 ± 1.31 | 79.35 ± 0.68 | 78.21 ± 2.31
lbtw | 75.21 ± 0.49 | 79.52 ± 0.56 | 79.07 ± 0.99
sgnn | 77.72 ± 0.66 | 79.69 ± 1.07 | 80.19 ± 2.01
sgnn-ebm-fixed | 78.04 ± 0.73 | 80.34 ± 1.08 | 80.48 ± 1.93
sgnn-ebm | 78.10 ± 0.71 | 80.78 ± 0.85 | 81.13 ± 2.04
"""


def _paper_rows(text: str, columns: Sequence[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """ "method | 71.67 ± 0.64 | ..." lines -> {method: {paper column: (mean %, std %)}}."""
    out = {}
    for line in text.strip().splitlines():
        name, *cells = (c.strip() for c in line.split("|"))
        out[name] = {
            d: (float(c.split("±")[0]), float(c.split("±")[1])) for d, c in zip(columns, cells)
        }
    return out


PAPER = _paper_rows(_B, list(PAPER_DATA))
PAPER_SOURCE = (
    'Liu et al., "Structured Multi-task Learning for Molecular Property Prediction" '
    "(SGNN-EBM), AISTATS 2022; REFERENCE B"
)

# Model-size overrides for every cell (tests shrink the GIN and the SGNN; a record keeps them).
MODEL: dict[str, Any] = {}
_MODEL_KEYS = (
    "num_layers",
    "dim",
    "dropout",
    "batch_size",
    "lr",
    "task_dim",
    "state_dim",
    "sgnn_hidden",
    "sgnn_layers",
    "gcn_layers",
    "nce_samples",
    "gibbs_sweeps",
    "gibbs_chains",
)


@dataclass(frozen=True)
class MultitaskProtocol:
    """The multi-task table: datasets, methods, seeds, split, budget and the paper's rows."""

    name: str = PROTOCOL
    datasets: tuple[str, ...] = DATASETS
    methods: tuple[str, ...] = BENCH_METHODS
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    epochs: int = 100
    # dataset -> what `fewmol multitask` reads for it (default: the registry name itself)
    sources: dict[str, str] = field(default_factory=dict)
    paper: dict[str, dict[str, tuple[float, float]]] = field(default_factory=lambda: PAPER)
    paper_columns: dict[str, str] = field(default_factory=lambda: dict(PAPER_COLUMNS))
    paper_source: str = PAPER_SOURCE


MULTITASK = MultitaskProtocol()


featurize_input = imported_on_call("fewmol.multitask.run", "featurize_input")
train_multitask = imported_on_call("fewmol.multitask.run", "train_multitask")


def model_settings() -> dict[str, Any]:
    """Architecture and optimiser settings every cell uses (MultitaskConfig defaults + MODEL)."""
    from fewmol.multitask.run import MultitaskConfig

    cfg = MultitaskConfig(**MODEL)
    return {k: getattr(cfg, k) for k in _MODEL_KEYS}


# sgnn-ebm-fixed's noise is the finished cell of this method (same dataset, seed and split)
NOISE_MODEL_METHOD = "sgnn"
# seconds between looks at an sgnn cell another worker is training
NOISE_WAIT_S = 15.0


def energy_settings(method: str) -> dict[str, Any] | None:
    """The energy and sampling settings of an SGNN-EBM cell (None for the other methods)."""
    if RUN_METHOD[base_method(method)][0] != "sgnn-ebm":
        return None
    from fewmol.multitask.run import MultitaskConfig

    cfg = MultitaskConfig(**MODEL)
    out = {"lambda": cfg.lam, "noise_mix": cfg.noise_mix, "smoothing": cfg.smoothing}
    if base_method(method) == "sgnn-ebm-fixed":
        out["noise_model"] = NOISE_MODEL_METHOD  # the paper's fixed noise: a pre-trained SGNN
    extra = RUN_SETTINGS.get(base_method(method), {})
    out.update({k: v for k, v in extra.items() if k in ENERGY_SETTINGS})
    return out


#: what the multi-task rows from scratch read (the paper's pretrain-gnns features)
TABLE_FEATURIZER = "hu2019"


def base_method(method: str) -> str:
    """'sgnn-ebm@graphmvp-c' or 'mtl+ogb' -> the bench method without its init or featuriser
    suffix."""
    return method.split("@", 1)[0].split("+", 1)[0]


def init_label(init: str, budget: dict[str, Any] | None) -> str:
    """Suffix of the method dirs for an init encoder: its pre-training method, else its name,
    then ``+FEATURISER`` unless it reads the table's hu2019 (``graphmvp-c+ogb`` is the shipped
    default; ``graphmvp-c`` the hu2019 encoder: two rows, not one overwriting the other)."""
    name = (budget or {}).get("method") or Path(str(init).rstrip("/")).name or "init"
    label = "".join(c if c.isalnum() or c in "-_." else "-" for c in str(name))
    feat = (budget or {}).get("featurizer")
    return label if feat in (None, TABLE_FEATURIZER) else f"{label}+{feat}"


def check_methods(methods: Sequence[str], protocol: MultitaskProtocol = MULTITASK) -> list[str]:
    """Normalised method names, or InvalidInputError naming the unknown ones and the choices."""
    out = [m.strip().lower() for m in methods if m.strip()]
    if not out:
        raise InvalidInputError(f"--methods needs at least one of: {', '.join(protocol.methods)}")
    with_init = [m for m in out if "@" in m]
    if with_init:
        raise InvalidInputError(
            f"{', '.join(with_init)}: pass the encoder with --init DIR_OR_NAME instead of "
            "naming it in --methods (the results go to METHOD@NAME by themselves)"
        )
    with_feat = [m for m in out if "+" in m]
    if with_feat:
        raise InvalidInputError(
            f"{', '.join(with_feat)}: pass the featuriser with --featurizer instead of naming "
            "it in --methods (the results go to METHOD+FEATURISER by themselves)"
        )
    unknown = [m for m in out if m not in (*protocol.methods, *EXTRA_METHODS)]
    if unknown:
        raise InvalidInputError(
            f"unknown multitask method(s) {', '.join(map(repr, unknown))}; choose from: "
            f"{', '.join((*protocol.methods, *EXTRA_METHODS))} (sgnn-ebm-fixed / sgnn-ebm / "
            "sgnn-ebm-tilt / sgnn-ebm-gibbs = SGNN-EBM with fixed / adaptive / tilted adaptive / "
            "Gibbs noise; sgnn-ebm-gs: Gibbs noise and missing labels filled; "
            "*-bilinear: with a bilinear molecule x task term)"
        )
    return list(dict.fromkeys(out))


def check_datasets(datasets: Sequence[str], protocol: MultitaskProtocol = MULTITASK) -> list[str]:
    """Normalised dataset names, or InvalidInputError naming the unknown ones and the choices."""
    out = [d.strip().lower() for d in datasets if d.strip()]
    unknown = [d for d in out if d not in protocol.datasets]
    if unknown:
        raise InvalidInputError(
            f"{', '.join(map(repr, unknown))} not in the multitask protocol (datasets: "
            f"{', '.join(protocol.datasets)}); other sets train with `fewmol multitask DATA`"
        )
    if not out:
        raise InvalidInputError(f"--datasets needs at least one of: {', '.join(protocol.datasets)}")
    return list(dict.fromkeys(out))


class _DatasetState:
    """One dataset's labels and featurised molecules; split and task graph per seed."""

    def __init__(self, source: str, data_dir: Path | None, featurizer: str, workers: int):
        self.workers = workers
        self.inp = load_input(source, data_dir=data_dir)
        self.graphs = featurize_input(self.inp, featurizer, workers)
        self.density = float(np.isfinite(self.inp.y).mean()) if self.inp.y.size else 0.0
        self._per_seed: dict[int, tuple[Any, Any]] = {}

    def split_and_graph(self, seed: int) -> tuple[Any, Any]:
        """The seed's random 8-1-1 split and its task graph (a learned one sees train only)."""
        if seed not in self._per_seed:
            split = resolve_split("random", self.inp, seed)  # 8-1-1 over molecules
            self._per_seed[seed] = (split, build_task_graph("auto", self.inp, split.train))
        return self._per_seed[seed]


def _same_key(marker: Path, key: dict[str, Any]) -> bool:
    """Whether a cell dir's bench_cell.json names this budget."""
    try:
        return json.loads(marker.read_text()) == key
    except (OSError, json.JSONDecodeError):
        return False


def _clear_other_budget(run_dir: Path, key: dict[str, Any]) -> None:
    """Empty a cell's work dir left by another budget (epochs, init, sizes), keeping the lock.

    Resuming it would be wrong: a longer run cannot be cut back, and STL's finished tasks
    cannot be trained on to more epochs.
    """
    marker = run_dir / "bench_cell.json"
    if not _same_key(marker, key):
        for p in run_dir.iterdir():
            if p.name == ".lock":
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        write_json(marker, key)


def run_multitask_grid(
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    datasets: Sequence[str] | None = None,
    results: Path = Path("benchmarks/results"),
    work: Path = Path("benchmarks/work"),
    epochs: int | None = None,
    init: str | None = None,
    data_dir: Path | None = None,
    workers: int = 1,
    progress: bool = False,
    accelerator: str = "auto",
    log: Callable[[str], None] = print,
    protocol: MultitaskProtocol = MULTITASK,
    precision: str = "32-true",
    featurizer: str | None = None,
    stl_parts: int = 1,
) -> list[dict[str, Any]]:
    """Run every missing (dataset, method, seed) cell; return the records of all its cells.

    ``featurizer`` trains from scratch on another featuriser than the table's hu2019, as rows
    ``METHOD+FEATURISER`` (the fair baseline of an encoder pre-trained on it); with ``init``
    it may only repeat the encoder's own. ``stl_parts`` K > 1 splits each STL cell into K
    parts that workers sharing the grid train side by side (the last to finish merges them):
    the same models as one run, in about 1/K of the time with K workers.
    """
    check_precision(precision)
    if stl_parts < 1:
        raise InvalidInputError(f"--stl-parts must be >= 1, got {stl_parts}")
    if featurizer is not None and featurizer not in FEATURIZERS:
        raise InvalidInputError(
            f"--featurizer {featurizer!r}: choose from {', '.join(FEATURIZERS)}"
        )
    methods = check_methods(methods or protocol.methods, protocol)
    datasets = check_datasets(datasets or protocol.datasets, protocol)
    seeds = list(dict.fromkeys(protocol.seeds if seeds is None else seeds))
    if not seeds:
        raise InvalidInputError("--seeds needs at least one integer")
    if epochs is not None and epochs < 1:
        raise InvalidInputError(f"--epochs must be >= 1, got {epochs}")
    epochs = epochs or protocol.epochs
    if init is not None and init.strip().lower() in ("", "none"):
        init = None  # "none" = from scratch, the name `fewmol bench run` gives it
    # the encoder's budget as loaded now (its pre-training may continue later); a missing
    # --init fails here, before any data is loaded
    budget = pretrain_budget(init)
    if init and featurizer not in (None, featurizer_for(init)):
        raise InvalidInputError(
            f"--featurizer {featurizer}: the encoder {init} reads {featurizer_for(init)} "
            "features; leave --featurizer out with --init"
        )
    featurizer = featurizer_for(init, featurizer)
    if init:
        suffix = f"@{init_label(init, budget)}"
    else:  # the table's own featuriser keeps the plain names
        suffix = "" if featurizer == TABLE_FEATURIZER else f"+{featurizer}"
    model = model_settings()
    expect = {
        "epochs": epochs,
        "init": init,
        "featurizer": featurizer,
        "model": model,
        "precision": precision,
    }

    def expect_of(method: str) -> dict[str, Any]:
        # an SGNN-EBM record also names its energy settings: one run at another λ is redone
        energy = energy_settings(method)
        return expect if energy is None else {**expect, "energy": energy}

    command = " ".join(shlex.quote(a) for a in sys.argv)
    # provenance is the code this process started with, not whatever HEAD is when a cell ends
    code = {"git_commit": git_commit(), "git_dirty": git_dirty()}
    states: dict[str, _DatasetState] = {}  # loaded once, and only when a cell needs it

    def state_of(dataset: str) -> _DatasetState:
        if dataset not in states:
            source = protocol.sources.get(dataset, dataset)
            states[dataset] = _DatasetState(source, data_dir, featurizer, workers)
        return states[dataset]

    def cell_of(label: str, method: str, dataset: str, seed: int, noise_model: str | None):
        return _Cell(label, method, dataset, seed, epochs, init, featurizer, precision, noise_model)

    def budget_key(label: str, method: str, seed: int) -> dict[str, Any]:
        return {**expect_of(method), "method": label, "seed": seed}

    def train(
        dataset: str, label: str, method: str, seed: int, run_dir: Path, noise_model: str | None
    ) -> None:
        state = state_of(dataset)
        _clear_other_budget(run_dir, budget_key(label, method, seed))
        cell = cell_of(label, method, dataset, seed, noise_model)
        record = _run_cell(protocol, cell, state, run_dir, progress, accelerator, log)
        save_record(dataset, label, seed, record)

    def save_record(dataset: str, label: str, seed: int, record: dict[str, Any]) -> None:
        record.update(
            {
                "pretraining": budget,
                "hardware": hardware(),
                **code,
                "command": command,
                "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        write_json(result_path(results, PROTOCOL, label, dataset, seed), record)
        best, last = record["test"], record["test_at_last_epoch"]
        log(
            f"  -> test ROC-AUC {_fmt(best)} at best valid, {_fmt(last)} at the last "
            f"epoch ({record['wall_time_s']:.0f} s)"
        )

    def stl_in_parts(dataset: str, label: str, seed: int, run_dir: Path) -> None:
        """Train the STL cell's free parts; merge them once every part has finished."""
        from fewmol.multitask.run import PART_FILE  # lazy: Lightning loads with it

        key = budget_key(label, "stl", seed)
        part_dirs = [run_dir / "parts" / f"part{i}of{stl_parts}" for i in range(stl_parts)]
        where = f"{dataset} / {label} / seed {seed}"
        for attempt in range(SETUP_TRIES):  # another worker may hold it for a moment's set-up
            with cell_lock(run_dir) as mine:
                if not mine:
                    if attempt + 1 < SETUP_TRIES:
                        _pause(1.0)
                        continue
                    log(f"{where}: another worker is merging its parts; skipped")
                    return
                if _done(result_path(results, PROTOCOL, label, dataset, seed), expect_of("stl")):
                    return
                if not _same_key(run_dir / "bench_cell.json", key):
                    if any(cell_busy(d) for d in part_dirs if d.is_dir()):
                        log(f"{where}: its parts are training for another budget; skipped")
                        return
                    _clear_other_budget(run_dir, key)
                break
        for i, d in enumerate(part_dirs):
            if (d / PART_FILE).is_file():
                continue
            with cell_lock(d) as mine:
                if not mine:
                    log(f"{where}: part {i + 1}/{stl_parts}: another worker has it; skipped")
                    continue
                if (d / PART_FILE).is_file():
                    continue
                cell = cell_of(label, "stl", dataset, seed, None)
                _run_cell(protocol, cell, state_of(dataset), d, progress, accelerator, log,
                          part=(i, stl_parts))  # fmt: skip
        if not all((d / PART_FILE).is_file() for d in part_dirs):
            log(f"{where}: parts still training in other workers; the last to finish merges")
            return
        with cell_lock(run_dir) as mine:
            if not mine or _done(
                result_path(results, PROTOCOL, label, dataset, seed), expect_of("stl")
            ):
                return
            cell = cell_of(label, "stl", dataset, seed, None)
            record = _run_cell(protocol, cell, state_of(dataset), run_dir, progress, accelerator,
                               log, merge=part_dirs)  # fmt: skip
            save_record(dataset, label, seed, record)

    records = []
    for dataset in datasets:
        # seed-major: a partial grid has every row with some seeds rather than a few full rows
        cells = [(m + suffix, m, s) for s in seeds for m in methods]
        todo = [
            c
            for c in cells
            if not _done(result_path(results, PROTOCOL, c[0], dataset, c[2]), expect_of(c[1]))
        ]
        if not todo:
            log(f"{dataset}: all {len(cells)} runs done")
        pending, announced = todo, set()
        while pending:
            # sgnn-ebm-fixed cells whose sgnn cell another worker is training come back after
            # the other cells of this dataset, once per pause, until that cell ends
            waiting: list[tuple[str, str, int]] = []
            for label, method, seed in pending:
                run_dir = Path(work) / PROTOCOL / label / dataset / f"seed{seed}"
                if method == "stl" and stl_parts > 1:
                    stl_in_parts(dataset, label, seed, run_dir)
                    continue
                with cell_lock(run_dir) as mine:
                    if not mine:
                        log(f"{dataset} / {label} / seed {seed}: another worker has it; skipped")
                        continue
                    if _done(
                        result_path(results, PROTOCOL, label, dataset, seed), expect_of(method)
                    ):
                        continue
                    noise_model = None
                    if method == "sgnn-ebm-fixed":
                        noise_model, wait = _noise_model_dir(
                            results, work, dataset, seed, suffix, expect, label, log
                        )
                        if wait:
                            waiting.append((label, method, seed))
                            if (label, seed) not in announced:
                                announced.add((label, seed))
                                log(f"{dataset} / {label} / seed {seed}: waits for the sgnn "
                                    "cell of this seed (its noise), which another worker is "
                                    "training")  # fmt: skip
                        if noise_model is None:
                            continue
                    train(dataset, label, method, seed, run_dir, noise_model)
            if waiting:
                _pause(NOISE_WAIT_S)
            pending = waiting
        for label, _, seed in cells:
            p = result_path(results, PROTOCOL, label, dataset, seed)
            if p.exists():
                records.append(json.loads(p.read_text()))
    return records


#: looks (1 s apart) at an STL cell's lock before leaving it to a worker that is merging it
SETUP_TRIES = 5


def _pause(seconds: float) -> None:
    """Sleep between looks at a busy sgnn cell (a seam for tests)."""
    time.sleep(seconds)


def _noise_model_dir(
    results: Path,
    work: Path,
    dataset: str,
    seed: int,
    suffix: str,
    expect: dict[str, Any],
    label: str,
    log: Callable[[str], None],
) -> tuple[str | None, bool]:
    """(The finished SGNN cell whose model is this seed's fixed noise, or None; whether to
    wait for it: another worker is training it now)."""
    sgnn = NOISE_MODEL_METHOD + suffix
    run_dir = Path(work) / PROTOCOL / sgnn / dataset / f"seed{seed}"
    if not _done(result_path(results, PROTOCOL, sgnn, dataset, seed), expect):
        if cell_busy(run_dir):
            return None, True
        log(f"{dataset} / {label} / seed {seed}: its noise is the {sgnn} cell of this seed, "
            "which has no result yet; skipped (run the grid again after it)")  # fmt: skip
        return None, False
    if not (run_dir / "model.safetensors").is_file():
        log(f"{dataset} / {label} / seed {seed}: the {sgnn} cell's model dir {run_dir} is "
            "gone; remove its result JSON to train it again; skipped")  # fmt: skip
        return None, False
    return str(run_dir), False


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"


@dataclass(frozen=True)
class _Cell:
    """One (dataset, method, seed) of the grid and what it trains with."""

    label: str  # the results' method name: the bench method, with @NAME for an init
    method: str
    dataset: str
    seed: int
    epochs: int
    init: str | None
    featurizer: str
    precision: str = "32-true"
    noise_model: str | None = None  # sgnn-ebm-fixed: the SGNN run dir that is its noise


def _run_cell(
    protocol: MultitaskProtocol,
    c: _Cell,
    state: _DatasetState,
    run_dir: Path,
    progress: bool,
    accelerator: str,
    log: Callable[[str], None],
    part: tuple[int, int] | None = None,
    merge: list[Path] | None = None,
) -> dict[str, Any] | None:
    """Train one cell through train_multitask (resumable); return its record.

    ``part=(i, K)``: train that part of an STL cell into ``run_dir`` (no record: None);
    ``merge``: join the finished part dirs of an STL cell instead of training.
    """
    from fewmol.multitask.run import MultitaskConfig, merge_stl_parts

    t0 = time.time()
    run_method, noise = RUN_METHOD[c.method]
    inp = state.inp
    split, graph = state.split_and_graph(c.seed)
    n, t = inp.y.shape
    what = f"{c.dataset} / {c.label} / seed {c.seed}"
    if part is not None:
        what += f" (part {part[0] + 1}/{part[1]}: tasks t with t % {part[1]} == {part[0]})"
    if merge is not None:
        log(f"{what}: merging its {len(merge)} parts")
    else:
        log(f"{what}: {c.epochs} epochs on {n} mols x {t} tasks")
    cfg = MultitaskConfig(
        method=run_method,
        epochs=c.epochs,
        seed=c.seed,
        init=c.init,
        featurizer=c.featurizer,
        workers=state.workers,
        accelerator=accelerator,
        precision=c.precision,
        progress=progress,
        extra={"protocol": PROTOCOL, "method": c.label, "dataset": c.dataset, "split": "random"},
        noise_model=c.noise_model,
        **{**MODEL, **({"noise": noise} if noise else {}), **RUN_SETTINGS.get(c.method, {})},
    )
    if merge is not None:
        m = merge_stl_parts(inp, split, cfg, run_dir, merge, graphs=state.graphs)
    else:
        m = train_multitask(
            inp, split, graph, cfg, run_dir, resume=True, graphs=state.graphs, part=part
        )
    if part is not None:
        log(f"  -> part {part[0] + 1}/{part[1]} done ({m['wall_s']:.0f} s)")
        return None
    best, last = m["test_at_best_valid"], m["test_at_last_epoch"]
    # an init encoder brings its own size, which MODEL does not set
    enc = json.loads((run_dir / "config.json").read_text())["encoder"]
    return {
        "protocol": PROTOCOL,
        "method": c.label,
        "base_method": c.method,
        "multitask_method": run_method,
        "noise": noise,
        "dataset": c.dataset,
        "paper_dataset": protocol.paper_columns.get(c.dataset),
        "seed": c.seed,
        "metric": "roc_auc",
        "test": best.get("roc_auc"),
        "test_at_last_epoch": last.get("roc_auc"),
        "test_metrics": best,  # ROC-AUC, PRC-AUC, tasks scored
        "test_metrics_at_last_epoch": last,
        "valid": m["best_valid"].get("roc_auc"),
        "best_epoch": m["best_epoch"],
        "epochs": c.epochs,
        "epochs_done": m["epochs_done"],
        "paper_epochs": protocol.epochs,
        "n_molecules": n,
        "n_tasks": t,
        "label_density": round(state.density, 6),
        "task_graph_edges": None if graph is None else graph.num_undirected_edges,
        "task_graph_source": None if graph is None else graph.source,
        "task_graph_used": run_method in STRUCTURED,
        "split": "random 8-1-1",
        "split_sizes": m["split_sizes"],
        "featurizer": c.featurizer,
        "precision": c.precision,
        "model": model_settings(),
        "energy": energy_settings(c.method),
        "run_settings": RUN_SETTINGS.get(c.method, {}),  # the row's own flags (--bilinear, ...)
        "noise_model_dir": c.noise_model,
        "gin": {"num_layers": enc["num_layers"], "dim": enc["dim"]},
        "init": c.init,
        "wall_time_s": m["wall_time_s"],
        "session_wall_s": round(time.time() - t0, 1),
        # STL trained as K parts side by side and merged (the same models as one run)
        "stl_parts": len(merge) if merge is not None else None,
    }


# ------------------------------------------------------------------------------------ report
# Fixed colours for the paper's rows; a run from an init encoder is hatched in its base colour.
MT_COLOURS = {
    "stl": "#8c8c8c",
    "mtl": "#1f77b4",
    "uw": "#aec7e8",
    "gradnorm": "#ff7f0e",
    "dwa": "#ffbb78",
    "lbtw": "#bcbd22",
    "sgnn": "#17becf",
    "sgnn-ebm-fixed": "#98df8a",
    "sgnn-ebm": "#2ca02c",
    "sgnn-ebm-tilt": "#d62728",
    "sgnn-bilinear": "#9edae5",
    "sgnn-ebm-bilinear": "#2f5f2f",
    "sgnn-ebm-gibbs": "#c5b0d5",
    "sgnn-ebm-gs": "#9467bd",
}


def order_methods(methods: Sequence[str] | set[str]) -> list[str]:
    """The paper's row order; a method's init variants right after it."""
    known = [*BENCH_METHODS, *EXTRA_METHODS]

    def key(m: str) -> tuple[int, str, str]:
        b = base_method(m)
        return (known.index(b) if b in known else len(known), b, m)

    return sorted(set(methods), key=key)


def _colour(method: str) -> str:
    return MT_COLOURS.get(base_method(method)) or method_colour(method)


def _columns(protocol: MultitaskProtocol, records: list[dict[str, Any]]) -> list[str]:
    """The protocol's datasets, then any other dataset that has runs (nothing stored is hidden)."""
    extra = sorted({r["dataset"] for r in records} - set(protocol.datasets))
    return [*protocol.datasets, *extra]


def results_table(protocol: MultitaskProtocol, records: list[dict[str, Any]]) -> str:
    """Ours (mean ± std over seeds, %) with the paper's row under each method it reports."""
    agg = aggregate(records)
    cols = _columns(protocol, records)
    head = [
        "| method | " + " | ".join(_col_title(protocol, d) for d in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    lines = []
    present = {m for m, _ in agg}
    for m in order_methods(present | set(protocol.paper) & set(protocol.methods)):
        if m in present:
            cells = []
            for d in cols:
                a = agg.get((m, d))
                if not a or not a["n"]:
                    cells.append("–")
                    continue
                notes = _cell_notes(protocol, a)
                cells.append(f"{100 * a['mean']:.2f} ± {100 * a['std']:.2f}{notes}")
            lines.append(f"| **{m}** (ours) | " + " | ".join(cells) + " |")
        if m in protocol.paper:
            p = protocol.paper[m]
            paper_of = {d: protocol.paper_columns.get(d) for d in cols}
            pc = [
                f"{p[c][0]:.2f} ± {p[c][1]:.2f}" if (c := paper_of[d]) and c in p else "–"
                for d in cols
            ]
            lines.append(f"| {m} (paper) | " + " | ".join(pc) + " |")
    return "\n".join(head + lines) + "\n"


#: (row, against): SGNN-EBM's standing against the multi-task baseline and its own SGNN; rows
#: without a paired seed are left out
STANDING_PAIRS = (
    ("sgnn-ebm", "mtl"),
    ("sgnn-ebm", "sgnn"),
    ("sgnn-ebm-fixed", "mtl"),
    ("sgnn-ebm-fixed", "sgnn"),
    ("sgnn", "mtl"),
    # the released code's NCE (Gibbs noise, with and without filled labels)
    ("sgnn-ebm-gibbs", "mtl"),
    ("sgnn-ebm-gibbs", "sgnn-ebm"),
    ("sgnn-ebm-gs", "mtl"),
    ("sgnn-ebm-gs", "sgnn-ebm-gibbs"),
)


def standing_table(protocol: MultitaskProtocol, records: list[dict[str, Any]]) -> str:
    """Markdown: row − against, paired by seed (the same split), per dataset; '' if no pair.

    A cell is the mean ± std (population) of the per-seed gaps in ROC-AUC points over the
    seeds both cells finished with the same epochs, with that count; positive = the row did
    better. Pairing removes the split-to-split swing that dominates these small test sets.
    """
    score: dict[tuple[str, str], dict[int, tuple[float, Any]]] = defaultdict(dict)
    for r in records:
        if r.get("test") is not None:
            score[(r["method"], r["dataset"])][r["seed"]] = (float(r["test"]), r.get("epochs"))
    cols = _columns(protocol, records)
    lines = []
    for row, other in STANDING_PAIRS:
        cells, any_pair = [], False
        for d in cols:
            a, b = score.get((row, d), {}), score.get((other, d), {})
            gaps = [100 * (a[s][0] - b[s][0]) for s in sorted(a) if s in b and a[s][1] == b[s][1]]
            if not gaps:
                cells.append("–")
                continue
            any_pair = True
            cells.append(f"{np.mean(gaps):+.1f} ± {np.std(gaps):.1f} (n={len(gaps)})")
        if any_pair:
            lines.append(f"| {row} − {other} | " + " | ".join(cells) + " |")
    if not lines:
        return ""
    head = [
        "| paired gap (points) | " + " | ".join(_col_title(protocol, d) for d in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    return "\n".join(head + lines) + "\n"


def _col_title(protocol: MultitaskProtocol, dataset: str) -> str:
    paper = protocol.paper_columns.get(dataset)
    return f"{dataset} (paper: {paper})" if paper else dataset


def _range(values: list[Any], fmt: str = "{:,}") -> str:
    vals = sorted({v for v in values if v is not None})
    if not vals:
        return "–"
    lo, hi = fmt.format(vals[0]), fmt.format(vals[-1])
    return lo if lo == hi else f"{lo}–{hi}"


def dataset_table(protocol: MultitaskProtocol, records: list[dict[str, Any]]) -> str:
    """Our data per dataset (from the runs) beside the paper's ChEMBL set it stands in for."""
    by_ds: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_ds[r["dataset"]].append(r)
    rows = [
        "| dataset | molecules | tasks | label density | task-graph edges (graph) | paper's "
        "counterpart: molecules, tasks, density |",
        "|---|---|---|---|---|---|",
    ]
    for d in _columns(protocol, records):
        rs = by_ds.get(d)
        if not rs:
            continue
        sources = sorted({r.get("task_graph_source") or "?" for r in rs})
        edges = _range([r.get("task_graph_edges") for r in rs])
        density = _range([100 * r["label_density"] for r in rs], "{:.2f}%")
        paper = protocol.paper_columns.get(d)
        pd_ = PAPER_DATA.get(paper or "")
        counterpart = f"{paper}: {pd_[0]:,}, {pd_[1]:,}, {pd_[2]:.2f}%" if pd_ else "–"
        rows.append(
            f"| {d} | {_range([r['n_molecules'] for r in rs])} | "
            f"{_range([r.get('n_tasks') for r in rs])} | {density} | {edges} "
            f"({'; '.join(sources)}) | {counterpart} |"
        )
    return "\n".join(rows) + "\n"


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def _epochs_text(cols: list[str], rs: list[dict[str, Any]]) -> str:
    """'100 epochs' or '100 epochs (chembl-10, toxcast), 30 epochs (kiba-mt)'."""
    by_ep: dict[int, set[str]] = defaultdict(set)
    for r in rs:
        by_ep[r["epochs"]].add(r["dataset"])
    if len(by_ep) == 1:
        return _n(next(iter(by_ep)), "epoch")
    return ", ".join(
        f"{_n(e, 'epoch')} ({', '.join(d for d in cols if d in by_ep[e])})"
        for e in sorted(by_ep, reverse=True)
    )


def _model_text(records: list[dict[str, Any]]) -> str:
    """GIN and SGNN sizes, one phrase per distinct setting (older/other runs may differ)."""
    texts = []
    for m in sorted({json.dumps(r.get("model") or {}, sort_keys=True) for r in records}):
        s = json.loads(m)
        if not s:
            texts.append("settings not recorded")
            continue
        texts.append(
            f"GIN {s['num_layers']} × {s['dim']} (from scratch), dropout {s['dropout']}, Adam "
            f"lr {s['lr']}, batch {s['batch_size']}; SGNN task dim {s['task_dim']}, state dim "
            f"{s['state_dim']}, {_n(s['sgnn_layers'], 'layer')}; NCE "
            f"{_n(s['nce_samples'], 'noise sample')}; Gibbs {_n(s['gibbs_sweeps'], 'sweep')} × "
            f"{_n(s['gibbs_chains'], 'chain')}"
        )
    return "; ".join(texts)


def _pretraining_text(rs: list[dict[str, Any]]) -> str:
    from fewmol.bench.report import budgets_text

    if all(not r.get("init") for r in rs):
        return "from scratch"
    text = budgets_text([r["pretraining"] for r in rs if r.get("pretraining")])
    texts = [text] if text else []
    gins = sorted({f"{g['num_layers']} × {g['dim']}" for r in rs if (g := r.get("gin"))})
    size = f" (its GIN: {', '.join(gins)})" if gins else ""
    return "init " + "; ".join(texts or sorted({str(r.get("init")) for r in rs})) + size


def _energy_text(rs: list[dict[str, Any]]) -> str:
    """ ", λ 0.1" for SGNN-EBM runs (records before the energy block ran at the old λ = 1)."""
    if RUN_METHOD.get(base_method(rs[0]["method"]), ("",))[0] != "sgnn-ebm":
        return ""
    lams = sorted({(r.get("energy") or {}).get("lambda", 1.0) for r in rs})
    text = ", λ " + " and ".join(f"{v:g}" for v in lams)
    if base_method(rs[0]["method"]) == "sgnn-ebm-fixed":
        n_model = sum(bool((r.get("energy") or {}).get("noise_model")) for r in rs)
        parts = []
        if n_model:
            parts.append(f"the {NOISE_MODEL_METHOD} cell of the same seed ({_n(n_model, 'run')})")
        if n_model < len(rs):
            parts.append(f"training label frequencies ({_n(len(rs) - n_model, 'older run')})")
        text += ", noise " + " and ".join(parts)
    return text


def caption(protocol: MultitaskProtocol, records: list[dict[str, Any]]) -> str:
    """Budget of the table: settings, epochs and wall time per method, hardware, commits."""
    by_method: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_method[r["method"]].append(r)
    seeds = sorted({r["seed"] for r in records})
    lines = [
        f"*Caption.* {_model_text(records)}. Split random 8-1-1 over molecules, a new split per "
        f"seed; seeds {','.join(map(str, seeds))} (the paper: {len(protocol.seeds)}); the "
        f"paper's budget is {protocol.epochs} epochs. Test ROC-AUC averaged over the tasks with "
        "both classes in the test split, at the best-validation epoch (STL: per task). Per "
        "method:",
        "",
    ]
    for m in order_methods(by_method):
        rs = by_method[m]
        wall = sum(r["wall_time_s"] for r in rs)
        lines.append(
            f"- **{m}** ({PAPER_LABELS.get(base_method(m), m)}): "
            f"{_epochs_text(_columns(protocol, records), rs)}, "
            f"{_pretraining_text(rs)}{_energy_text(rs)}, {_hours(wall)} training wall time "
            f"over {_n(len(rs), 'run')}."
        )
    hw = "; ".join(sorted({r.get("hardware", "?") for r in records}))
    commits = ", ".join(sorted({(r.get("git_commit") or "?")[:10] for r in records}))
    dirty = sum(1 for r in records if r.get("git_dirty"))
    note = (
        f" ({dirty} of {len(records)} runs from a tree with uncommitted changes)" if dirty else ""
    )
    total = sum(r["wall_time_s"] for r in records)
    lines += [
        "",
        f"Total training wall time {_hours(total)} (epochs with their evaluation, as each run's "
        "metrics.json counts it; writing predictions.csv afterwards is not included). Hardware: "
        f"{hw}. Commits: {commits}{note}.",
    ]
    return "\n".join(lines) + "\n"


def stand_in_note(protocol: MultitaskProtocol) -> str:
    """Why our ChEMBL columns are not the paper's data, and which paper column sits where."""
    pairs = ", ".join(f"`{d}` ↔ {p}" for d, p in protocol.paper_columns.items())
    return (
        "**Our ChEMBL sets are stand-ins, not the paper's data.** The paper uses ChEMBL linked "
        "to STRING (protein–protein relations as the task graph), which is not available here. "
        "Ours come from deepchem's `chembl_5thresh` (691 targets), binarised at pChEMBL ≥ 6, "
        "with a task graph from ChEMBL target annotations (shared multi-protein targets, "
        "orthologs), filtered like the paper to ≥ k labels per task; `chembl-<k>-m<m>` relaxes "
        "the molecule side to ≥ m labels because our file has only 3.8 labels per molecule. "
        f"The paper's rows sit under the stand-in with the same task threshold ({pairs}); sizes "
        "and densities differ (table below), so the numbers are a reference, not a like-for-like "
        "comparison; `chembl-50-m10` is small (106 molecules, ~10 per test split), so its "
        "scores vary much from seed to seed. `kiba-mt` (KIBA ≥ 12.1 per kinase, Smith-Waterman "
        "task graph) and `toxcast` (task graph learned from training labels) have no paper row.\n"
    )


def _legend(protocol: MultitaskProtocol) -> str:
    return (
        "Ours: mean ± std (population, over seeds) of the test ROC-AUC (%) at the "
        f"best-validation epoch; {protocol.epochs} epochs unless a cell says `[N ep]`; `(n=k)` "
        f"marks cells with fewer than {len(protocol.seeds)} seeds finished. Rows marked "
        f"*(paper)* are the published numbers ({protocol.paper_source}), not ours. "
        "`sgnn-ebm-fixed` / `sgnn-ebm` are SGNN-EBM with the fixed / adaptive noise "
        "distribution; `sgnn-ebm-tilt` (not in the paper) is SGNN-EBM whose energy tilts its "
        "adaptive noise, p ∝ q·exp(−E) (`fewmol multitask --tilt`, the normalised form of the "
        "released code's `--use_ebm_as_tilting`); `sgnn-bilinear` / `sgnn-ebm-bilinear` (not in "
        "the paper) add a low-rank bilinear molecule × task term to the task states "
        "(`--bilinear`); `sgnn-ebm-gs` is SGNN-EBM trained as the released code "
        "(`submit_SGNN_EBM.sh`: `--NCE_mode=gs --filling_missing_data_mode`): its NCE noise is 2 "
        "Gibbs sweeps of the energy started from and tilted by the jointly trained SGNN, and "
        "missing labels take the noise sample's values (`--noise gibbs --fill-missing`); "
        "`sgnn-ebm-gibbs` has that noise with missing labels left out (`--noise gibbs`); "
        "`METHOD@NAME` rows started from the "
        "pre-trained encoder NAME; "
        "`METHOD+FEATURISER` rows trained from scratch on that featuriser instead of hu2019 "
        "(`--featurizer`), the fair baseline of an encoder pre-trained on it.\n"
    )


def provenance_table(protocol: MultitaskProtocol, records: list[dict[str, Any]]) -> str:
    """Per (method, dataset): seeds, epochs, molecules × tasks, wall time, commit, hardware."""
    agg = aggregate(records)
    tasks = {(r["method"], r["dataset"]): r.get("n_tasks") for r in records}
    rows = [
        "| method | dataset | seeds | epochs | molecules × tasks | wall time (all seeds) | "
        "commit | hardware |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order, cols = order_methods({m for m, _ in agg}), _columns(protocol, records)
    for (m, d), a in sorted(
        agg.items(), key=lambda kv: (order.index(kv[0][0]), cols.index(kv[0][1]))
    ):
        rows.append(
            f"| {m} | {d} | {','.join(map(str, a['seeds']))} | "
            f"{','.join(map(str, a['epochs']))} | {a['n_molecules']} × {tasks[(m, d)]} | "
            f"{a['wall_s'] / 60:.1f} min | {', '.join(a['commits'])} | "
            f"{'; '.join(a['hardware'])} |"
        )
    return "\n".join(rows) + "\n"


def plot_multitask_bars(
    protocol: MultitaskProtocol, records: list[dict[str, Any]], path: Path
) -> Path | None:
    """Per-dataset bars (ours, mean ± std over seeds) with the paper's value marked."""
    from matplotlib.figure import Figure

    agg = aggregate(records)
    methods = order_methods({m for m, _ in agg})
    ds = [d for d in _columns(protocol, records) if any(agg.get((m, d)) for m in methods)]
    if not ds:
        return None

    def draw() -> None:
        ncols = min(len(ds), 3)
        nrows = math.ceil(len(ds) / ncols)
        width = max(6.4, 0.6 + ncols * max(2.6, 0.32 * len(methods) + 1))
        fig = Figure(figsize=(width, 1.2 + 2.9 * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, d in zip(axes.flat, ds):
            lo, hi = [], []
            for i, m in enumerate(methods):
                a = agg.get((m, d))
                if a and a["n"]:
                    mean, std = 100 * a["mean"], 100 * a["std"]
                    hatch = "//" if "@" in m else ("\\\\" if "+" in m else None)
                    ax.bar(i, mean, 0.7, color=_colour(m), edgecolor="black", lw=0.5, hatch=hatch)
                    ax.errorbar(i, mean, yerr=std, color="black", capsize=3, lw=0.8)
                    lo.append(mean - std)
                    hi.append(mean + std)
                p = protocol.paper.get(m, {}).get(protocol.paper_columns.get(d, ""))
                if p is not None:
                    ax.plot(i, p[0], marker="_", color="black", markersize=12, mew=2)
                    lo.append(p[0])
                    hi.append(p[0])
            if lo:
                pad = 0.15 * (max(hi) - min(lo)) + 1.0
                ax.set_ylim(max(0.0, min(lo) - pad), min(100.0, max(hi) + pad))
            ax.set_xlim(-0.6, len(methods) - 0.4)
            ax.set_xticks(range(len(methods)), methods, rotation=60, ha="right")
            paper = protocol.paper_columns.get(d)
            ax.set_title(f"{d}" + (f" (paper: {paper})" if paper else ""))
            ax.grid(axis="y", lw=0.3, alpha=0.6)
        for ax in list(axes.flat)[len(ds) :]:
            ax.set_visible(False)
        for row in axes:
            row[0].set_ylabel("test ROC-AUC (%)")
        fig.suptitle(
            "Multi-task (SGNN-EBM table), higher is better\nbars: ours, mean ± std over seeds "
            "(hatched: from a pre-trained encoder)\nblack dash: the published value (paper; "
            "beside our ChEMBL stand-ins only)"
        )
        fig.set_layout_engine("constrained")
        _save_png(fig, path)

    _with_rc(draw)
    return path


def write_multitask_report(results: Path, protocol: MultitaskProtocol = MULTITASK) -> Path:
    """Write ``results/multitask/README.md`` and ``results/plots/multitask_bars.png``."""
    results = Path(results)
    records = load_records(results, PROTOCOL)
    bars = plot_multitask_bars(protocol, records, results / "plots" / "multitask_bars.png")
    commands = sorted({r.get("command", "") for r in records} - {""})
    text = (
        "# multitask: test ROC-AUC (%), random 8-1-1 split (the SGNN-EBM table)\n\n"
        "Generated by `fewmol bench report multitask` from the per-run JSON files beside this "
        "page; do not edit by hand.\n\n"
        + _legend(protocol)
        + "\n"
        + stand_in_note(protocol)
        + "\n"
        + (results_table(protocol, records) if records else "No stored runs yet.\n")
        + ("\n" + caption(protocol, records) if records else "")
        + (f"\n![multitask: per-dataset scores](../plots/{bars.name})\n" if bars else "")
        + (
            "\n## SGNN-EBM against MTL and SGNN, paired by seed\n\n"
            "Each cell: the row's test ROC-AUC minus the other method's on the same split "
            "(seed) and epochs, mean ± std over the seeds both finished, in points; positive = "
            "the row did better.\n\n" + standing
            if (standing := standing_table(protocol, records))
            else ""
        )
        + ("\n## Data\n\n" + dataset_table(protocol, records) if records else "")
        + (
            "\n## Budget and provenance\n\n" + provenance_table(protocol, records)
            if records
            else ""
        )
        + ("\nCommands:\n\n" + "\n".join(f"    {c}" for c in commands) + "\n" if commands else "")
    )
    path = results / PROTOCOL / "README.md"
    write_text(path, text)
    return path


def overview_section(results: Path, protocol: MultitaskProtocol = MULTITASK) -> str | None:
    """The multitask part of ``results/README.md`` (None without runs); writes its page too."""
    records = load_records(results, PROTOCOL)
    if not records:
        return None
    write_multitask_report(results, protocol)
    return "\n".join(
        [
            "## Multi-task: SGNN-EBM table (ROC-AUC %, random 8-1-1)",
            "",
            _legend(protocol),
            stand_in_note(protocol),
            results_table(protocol, records),
            caption(protocol, records),
            dataset_table(protocol, records),
            "![multitask: per-dataset scores](plots/multitask_bars.png)\n",
            "Per-run budget and provenance, and the commands: "
            f"[`{PROTOCOL}/README.md`]({PROTOCOL}/README.md).\n",
        ]
    )


__all__ = [
    "BENCH_METHODS",
    "DATASETS",
    "EXTRA_METHODS",
    "MODEL",
    "MULTITASK",
    "PAPER",
    "MultitaskProtocol",
    "overview_section",
    "run_multitask_grid",
    "write_multitask_report",
]
