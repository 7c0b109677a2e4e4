"""Run a protocol grid (datasets x methods x seeds), resumable per (dataset, method, seed).

Each finished cell writes ``<results>/<protocol>/<method>/<dataset>/seed<k>.json`` with the
score, budget and provenance; a cell whose JSON exists with the same epochs is skipped, and
an unfinished cell resumes from its own checkpoint in the work dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fewmol.bench.protocols import Protocol
from fewmol.data.load import load_dataset
from fewmol.data.splits import make_split
from fewmol.errors import InvalidInputError
from fewmol.finetune.run import FinetuneConfig, featurize_table, finetune
from fewmol.io.checkpoint import write_json
from fewmol.io.modeldir import git_commit, git_dirty
from fewmol.training import hardware


def result_path(results: Path, protocol: str, method: str, dataset: str, seed: int) -> Path:
    """Where one cell's JSON lives."""
    return Path(results) / protocol / method / dataset / f"seed{seed}.json"


def _done(path: Path, epochs: int) -> bool:
    if not path.exists():
        return False
    try:
        return json.loads(path.read_text()).get("epochs") == epochs
    except (OSError, json.JSONDecodeError):
        return False


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


def init_for(method: str, pretrained: dict[str, str]) -> str | None:
    """Encoder to start from for a method: none, an explicit path, or a shipped checkpoint."""
    if method == "none":
        return None
    return pretrained.get(method, method)


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
    featurizer: str = "hu2019",
    workers: int = 1,
    progress: bool = False,
    accelerator: str = "auto",
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run every missing cell of the grid; return the result records of all cells."""
    unknown = [d for d in datasets if d not in protocol.datasets]
    if unknown:
        raise InvalidInputError(
            f"{', '.join(unknown)} not in protocol {protocol.name!r} "
            f"(datasets: {', '.join(protocol.datasets)})"
        )
    epochs = epochs or protocol.epochs
    pretrained = pretrained or {}
    command = " ".join(shlex.quote(a) for a in sys.argv)
    # provenance is the code this process started with, not whatever HEAD is when a cell ends
    code = {"git_commit": git_commit(), "git_dirty": git_dirty()}
    records = []
    for dataset in datasets:
        todo = [
            (m, s)
            for m in methods
            for s in seeds
            if not _done(result_path(results, protocol.name, m, dataset, s), epochs)
        ]
        if not todo:
            log(f"{dataset}: all {len(methods) * len(seeds)} runs done")
        else:
            table, info = load_dataset(
                dataset,
                None,
                None,
                None,
                "skip",
                data_dir,
                drop_duplicates=protocol.drop_duplicates,
            )
            graphs = featurize_table(table, featurizer, workers)
            split = make_split(protocol.split, table.smiles)
            for method, seed in todo:
                run_dir = Path(work) / protocol.name / method / dataset / f"seed{seed}"
                with cell_lock(run_dir) as mine:
                    if not mine:
                        log(f"{dataset} / {method} / seed {seed}: another worker has it; skipped")
                        continue
                    if _done(result_path(results, protocol.name, method, dataset, seed), epochs):
                        continue
                    _run_cell(
                        protocol,
                        method,
                        dataset,
                        seed,
                        epochs,
                        table,
                        info,
                        graphs,
                        split,
                        run_dir,
                        results,
                        pretrained,
                        featurizer,
                        progress,
                        accelerator,
                        command,
                        code,
                        log,
                    )
        for method in methods:
            for seed in seeds:
                p = result_path(results, protocol.name, method, dataset, seed)
                if p.exists():
                    records.append(json.loads(p.read_text()))
    return records


def _run_cell(
    protocol: Protocol,
    method: str,
    dataset: str,
    seed: int,
    epochs: int,
    table,
    info: dict,
    graphs,
    split,
    run_dir: Path,
    results: Path,
    pretrained: dict[str, str],
    featurizer: str,
    progress: bool,
    accelerator: str,
    command: str,
    code: dict[str, Any],
    log: Callable[[str], None],
) -> None:
    """Fine-tune one (dataset, method, seed) cell and write its result JSON."""
    t0 = time.time()
    log(f"{dataset} / {method} / seed {seed}: {epochs} epochs on {len(table)} mols")
    cfg = FinetuneConfig(
        epochs=epochs,
        batch_size=protocol.batch_size,
        lr=protocol.lr,
        dropout=protocol.dropout,
        featurizer=featurizer,
        seed=seed,
        init=init_for(method, pretrained),
        select_metric=protocol.metric,
        progress=progress,
        accelerator=accelerator,
        extra={"protocol": protocol.name, "method": method},
    )
    m = finetune(table, split, cfg, run_dir, resume=True, data_info=info, graphs=graphs)
    record = {
        "protocol": protocol.name,
        "method": method,
        "dataset": dataset,
        "seed": seed,
        "metric": protocol.metric,
        "test": m["test_at_best_valid"].get(protocol.metric),
        "test_at_last_epoch": m["test_at_last_epoch"].get(protocol.metric),
        "valid": m["best_valid"].get(protocol.metric),
        "best_epoch": m["best_epoch"],
        "epochs": epochs,
        "paper_epochs": protocol.epochs,
        "n_molecules": m["n_molecules"],
        "n_input_rows": table.n_input,
        "split": protocol.split,
        "split_sizes": m["split_sizes"],
        "featurizer": featurizer,
        "init": cfg.init,
        "batch_size": protocol.batch_size,
        "lr": protocol.lr,
        "wall_time_s": m["wall_time_s"],
        "session_wall_s": round(time.time() - t0, 1),
        "hardware": hardware(),
        **code,
        "command": command,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(result_path(results, protocol.name, method, dataset, seed), record)
    test = record["test"]
    log(
        f"  -> test {protocol.metric} {test if test is None else round(test, 4)} "
        f"(best epoch {record['best_epoch']}, {m['wall_time_s']:.0f} s)"
    )
