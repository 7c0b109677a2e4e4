"""`fewmol multitask`: structured multi-task learning (SGNN-EBM) and its baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from fewmol.cli.common import (
    check_table_options,
    console,
    duplicates_option,
    err_console,
    is_ddp_child,
    label_col_option,
    no_test_score_note,
    precision_option,
    report_bad_rows,
    split_list,
    task_col_option,
    threshold_option,
    user_errors,
)
from fewmol.errors import InvalidInputError
from fewmol.io.modeldir import init_featurizer
from fewmol.multitask.model import METHODS, STRUCTURED
from fewmol.multitask.sgnn_ebm import NOISES
from fewmol.training import check_precision

_GRAPH_METHODS = ("jaccard", "pearson", "mi")


def multitask(
    data: str = typer.Argument(
        ...,
        help="CSV/SD file (SMILES + many 0/1 task columns, empty = missing) or a dataset name.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output model directory."),
    method: str = typer.Option("sgnn-ebm", help=" | ".join(METHODS) + "."),
    task_graph: str = typer.Option(
        "auto",
        help="FILE (edge list task_a,task_b[,weight] or square matrix) | learned (from "
        "training labels) | none | auto (the dataset's own graph, else learned).",
    ),
    graph_top_k: int = typer.Option(
        None,
        min=1,
        help="Keep each task's k strongest relations (default 10 for matrices and "
        "learned graphs; all edges of an edge list).",
    ),
    graph_method: str = typer.Option("jaccard", help="Learned graphs: jaccard | pearson | mi."),
    lam: float = typer.Option(
        0.1,
        "--lambda",
        help="Weight λ of the pairwise energy terms (0.1 as SGNN-EBM's released configuration).",
    ),
    noise: str = typer.Option(
        "adaptive",
        help="NCE noise: fixed (training label frequencies, or --noise-model) | adaptive "
        "(jointly trained SGNN) | gibbs (--noise-sweeps Gibbs sweeps of the energy, started "
        "from and tilted by the jointly trained SGNN: the released code's --NCE_mode=gs).",
    ),
    noise_sweeps: int = typer.Option(
        2, min=1, help="With --noise gibbs: Gibbs sweeps per training batch for the noise."
    ),
    fill_missing: bool = typer.Option(
        False,
        "--fill-missing/--no-fill-missing",
        help="SGNN-EBM: missing labels take the noise sample's values in the NCE, so every "
        "task and edge counts (the released code's --filling_missing_data_mode).",
    ),
    noise_model: Path = typer.Option(
        None,
        help="With --noise fixed: a trained multi-task model dir (e.g. a --method sgnn run on "
        "the same data) whose predictions are the fixed noise, as the paper's pre-trained SGNN.",
    ),
    noise_mix: float = typer.Option(0.1, help="Share of uniform noise mixed into the noise."),
    bilinear: bool = typer.Option(
        False,
        "--bilinear/--no-bilinear",
        help="SGNN / SGNN-EBM: add a low-rank bilinear molecule x task term to the task states, "
        "so each task reads its own direction of the molecule embedding (not in the paper).",
    ),
    tilt: bool = typer.Option(
        False,
        "--tilt/--no-tilt",
        help="SGNN-EBM with --noise adaptive: the energy tilts the noise, p ∝ q·exp(−E), so "
        "predictions combine the jointly trained SGNN's with the energy's (the released code's "
        "--use_ebm_as_tilting).",
    ),
    nce_samples: int = typer.Option(4, min=1, help="Noise samples per molecule."),
    gibbs_sweeps: int = typer.Option(20, min=1, help="Gibbs sweeps at inference."),
    gibbs_chains: int = typer.Option(4, min=1, help="Parallel Gibbs chains per molecule."),
    smoothing: float = typer.Option(
        0.02, help="Uniform share mixed into every potential table (bounds couplings)."
    ),
    task_dim: int = typer.Option(64, min=1, help="Task embedding size (GCN)."),
    state_dim: int = typer.Option(64, min=1, help="SGNN label-state size d."),
    sgnn_hidden: int = typer.Option(128, min=1, help="Hidden size of the SGNN MLPs."),
    sgnn_layers: int = typer.Option(2, min=0, help="SGNN message-passing layers."),
    alpha: float = typer.Option(0.1, help="GradNorm / LBTW exponent α."),
    dwa_temperature: float = typer.Option(2.0, help="DWA temperature."),
    smiles_col: str = typer.Option(None, help="SMILES column (default: auto-detect)."),
    target_cols: str = typer.Option(None, help="Comma-separated task columns (default: auto)."),
    task_col: str = task_col_option("0/1 label"),
    label_col: str = label_col_option(),
    threshold: float = threshold_option(),
    split: str = typer.Option("random", help="random (8-1-1) | scaffold | column:NAME | PATH."),
    init: str = typer.Option(None, help="Pre-trained encoder dir or shipped checkpoint name."),
    epochs: int = typer.Option(100, min=1),
    batch_size: int = typer.Option(32, min=1),
    lr: float = typer.Option(1e-3),
    encoder_lr: float = typer.Option(None, help="Encoder learning rate (default: --lr)."),
    weight_decay: float = typer.Option(0.0),
    dropout: float = typer.Option(0.2),
    num_layers: int = typer.Option(5, min=1),
    hidden: int = typer.Option(300, min=1, help="GIN hidden size."),
    featurizer: str = typer.Option(
        None, help="hu2019 | ogb (default: the --init encoder's, else hu2019)."
    ),
    seed: int = typer.Option(0),
    on_invalid: str = typer.Option("skip", help="skip | error: what to do with bad rows."),
    duplicates: str = duplicates_option(),
    data_dir: Path = typer.Option(None, help="Root of the data files (else $FEWMOL_DATA)."),
    workers: int = typer.Option(1, min=1, help="Featurisation processes."),
    stl_jobs: int = typer.Option(
        1,
        min=1,
        help="--method stl: train the one-task models in N processes side by side (one torch "
        "thread each; tasks t % N, in OUT/parts/), then merge them: the same models as one "
        "process, in about 1/N of the time on N cores.",
    ),
    resume: bool = typer.Option(False, help="Continue a killed run in --out."),
    force: bool = typer.Option(False, help="Overwrite an existing run in --out."),
    accelerator: str = typer.Option("auto", help="Lightning accelerator: auto | cpu | gpu."),
    devices: str = typer.Option("auto", help="Lightning devices, e.g. 1, 4 or auto."),
    strategy: str = typer.Option("auto", help="Lightning strategy, e.g. ddp."),
    num_nodes: int = typer.Option(1, min=1),
    precision: str = precision_option(),
    checkpoint_every: float = typer.Option(
        30.0,
        help="Seconds between resume checkpoints (also written whenever the best weights "
        "change and at the end); 0 writes one every epoch.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a multi-task model (SGNN-EBM or a baseline) on DATA and write a model dir."""
    from fewmol.multitask.inputs import build_task_graph, load_input, resolve_split

    with user_errors():
        method = method.strip().lower()
        if method not in METHODS:
            raise InvalidInputError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
        if noise not in NOISES:
            raise InvalidInputError(f"--noise must be one of {', '.join(NOISES)}, not {noise!r}")
        if noise_model is not None:
            from fewmol.multitask.predict import is_multitask_dir

            if method != "sgnn-ebm" or noise != "fixed":
                raise InvalidInputError("--noise-model is for --method sgnn-ebm --noise fixed")
            if not is_multitask_dir(noise_model):
                raise InvalidInputError(
                    f"--noise-model {noise_model} is not a multi-task model dir"
                )
        if graph_method not in _GRAPH_METHODS:
            raise InvalidInputError(
                f"--graph-method must be one of {', '.join(_GRAPH_METHODS)}, not {graph_method!r}"
            )
        if on_invalid not in ("skip", "error"):
            raise InvalidInputError(f"--on-invalid must be skip or error, got {on_invalid!r}")
        if stl_jobs > 1 and method != "stl":
            raise InvalidInputError("--stl-jobs is for --method stl")
        if stl_jobs > 1 and (strategy != "auto" or num_nodes > 1 or devices not in ("auto", "1")):
            raise InvalidInputError(
                "--stl-jobs trains its processes on one device each; leave --strategy, "
                "--devices and --num-nodes out (or use them without --stl-jobs)"
            )
        long_format = check_table_options(duplicates, task_col, label_col)
        # the featuriser follows a pre-trained encoder unless one is asked for (a mismatch
        # is then an error, from the run)
        featurizer = featurizer or init_featurizer(init)
        child = is_ddp_child()
        if out.exists() and any(out.iterdir()) and not (resume or force or child):
            raise InvalidInputError(
                f"{out} is not empty; pass --resume to continue that run or --force to overwrite"
            )
        if resume and not force:
            _check_stl_resume(out, method, stl_jobs)
        inp = load_input(
            data, smiles_col, split_list(target_cols), on_invalid, data_dir, duplicates,
            long_format, threshold,
        )  # fmt: skip
        the_split = resolve_split(split, inp, seed)
        graph = None
        keyword = task_graph.strip().lower() in ("auto", "learned", "none")
        if method in STRUCTURED or not keyword:  # a relation file is checked for every method
            graph = build_task_graph(task_graph, inp, the_split.train, graph_top_k, graph_method)
        # Lightning takes seconds to import: loaded once the input and task graph have passed
        from fewmol.multitask.run import (
            TRAIN_SPLIT_HINT,
            MultitaskConfig,
            featurize_input,
            train_multitask,
            train_stl_jobs,
        )

        cfg = MultitaskConfig(
            method=method,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            encoder_lr=encoder_lr,
            weight_decay=weight_decay,
            dropout=dropout,
            num_layers=num_layers,
            dim=hidden,
            featurizer=featurizer,
            seed=seed,
            init=init,
            task_dim=task_dim,
            state_dim=state_dim,
            sgnn_hidden=sgnn_hidden,
            sgnn_layers=sgnn_layers,
            lam=lam,
            noise=noise,
            noise_model=None if noise_model is None else str(noise_model),
            noise_mix=noise_mix,
            tilt=tilt,
            noise_sweeps=noise_sweeps,
            fill_missing=fill_missing,
            bilinear=bilinear,
            nce_samples=nce_samples,
            gibbs_sweeps=gibbs_sweeps,
            gibbs_chains=gibbs_chains,
            smoothing=smoothing,
            alpha=alpha,
            dwa_temperature=dwa_temperature,
            workers=workers,
            accelerator=accelerator,
            devices=devices,
            strategy=strategy,
            num_nodes=num_nodes,
            precision=check_precision(precision),
            checkpoint_every_s=checkpoint_every,
            progress=not quiet,
            extra={
                "data": data,
                "split": split,
                "task_graph": task_graph,
                "graph_top_k": graph_top_k,
                "graph_method": graph_method,
                "on_invalid": on_invalid,
                "duplicates": duplicates,
                "task_col": task_col,
                "label_col": label_col,
                "threshold": threshold,
            },
        )
        cfg.check()
        the_split.check_trainable(TRAIN_SPLIT_HINT)
        if not child:  # every input is checked by now: nothing is written for a user error
            if inp.table is not None:
                report_bad_rows(inp.table, out)
            n, t = inp.y.shape
            edges = f", {graph.num_undirected_edges} task-graph edges" if graph else ""
            err_console.print(
                f"{method}: {n} molecules x {t} tasks ({100 * np.isfinite(inp.y).mean():.1f}% "
                f"labelled){edges}; split {the_split.sizes()}",
                markup=False,
            )
        graphs = featurize_input(inp, featurizer, workers)
        if stl_jobs > 1:
            note = f"stl: {stl_jobs} processes, one part of the tasks each"
            err_console.print(note, markup=False)
            metrics = train_stl_jobs(inp, the_split, cfg, out, stl_jobs, resume, graphs)
        else:
            metrics = train_multitask(inp, the_split, graph, cfg, out, resume, graphs)
        if not metrics:  # a non-zero DDP rank
            return
        best = metrics["test_at_best_valid"].get("roc_auc", float("nan"))
        last = metrics["test_at_last_epoch"].get("roc_auc", float("nan"))
        if "roc_auc" not in metrics["best_valid"]:
            at = f"at the last epoch, {metrics['epochs_done']} (no validation score to choose by)"
        else:
            where = "" if method == "stl" else f" (epoch {metrics['best_epoch']})"
            at = f"at best valid{where}, {_fmt(last)} at last epoch {metrics['epochs_done']}"
        console.print(f"{method}: test ROC-AUC {_fmt(best)} {at}; model dir: {out}")
        if best != best:
            no_test_score_note(
                "ROC-AUC", metrics["split_sizes"], "classification", "or another --split"
            )


def _check_stl_resume(out: Path, method: str, stl_jobs: int) -> None:
    """--resume continues a run the way it was started: in parts (--stl-jobs) or in one process."""
    if method != "stl":
        return
    parts = sorted(p.name for p in (out / "parts").glob("part*of*")) if out.is_dir() else []
    one = (out / "checkpoints" / "last.safetensors").is_file()
    if stl_jobs > 1 and one and not parts:
        raise InvalidInputError(
            f"{out} holds a one-process STL run; resume it without --stl-jobs, or start "
            "afresh with --force"
        )
    if parts and f"part0of{stl_jobs}" not in parts:
        k = parts[0].split("of")[-1]
        raise InvalidInputError(
            f"{out} holds an STL run in {k} parts (parts/); resume it with --stl-jobs {k}, "
            "or start afresh with --force"
        )


def _fmt(v: float | None) -> str:
    return "nan" if v is None or v != v else f"{v:.4f}"


def predict_multitask(
    model_dir: Path,
    input: Path,
    out: Path,
    smiles_col: str | None,
    workers: int,
    precision: str = "32-true",
    known_labels: bool = False,
) -> None:
    """`fewmol predict` on a multi-task model dir: one probability column per task."""
    from fewmol.data.tables import read_smiles
    from fewmol.errors import InvalidInputError
    from fewmol.io.checkpoint import write_text
    from fewmol.multitask.predict import label_columns, load_predictor, predict_table
    from fewmol.training import check_precision

    with user_errors():
        check_precision(precision)
        table = read_smiles(input, smiles_col)
        use_labels = False
        if known_labels:
            predictor = load_predictor(model_dir)
            found = label_columns(table, predictor.task_names)
            if not found:
                shown = ", ".join(predictor.task_names[:8])
                more = len(predictor.task_names) > 8
                raise InvalidInputError(
                    f"--known-labels: no column of {input} is named like a task of {model_dir} "
                    f"(tasks: {shown}{', ...' if more else ''})"
                )
            if predictor.method == "sgnn-ebm":
                use_labels = True
                err_console.print(
                    f"note: conditioning on known labels in {len(found)} task column(s)"
                )
            else:
                err_console.print(
                    f"note: --known-labels ignored: {predictor.method} predicts each task "
                    "independently (only sgnn-ebm conditions on other labels)"
                )
        df = predict_table(model_dir, table, workers, use_labels=use_labels, precision=precision)
        write_text(out, df.to_csv(index=False))
        if table.n_invalid:
            err_console.print(
                f"{table.n_invalid} rows could not be predicted "
                "(valid=False, reason in the 'error' column)"
            )
        console.print(f"wrote {len(df)} rows to {out}")


__all__ = ["multitask", "predict_multitask"]
