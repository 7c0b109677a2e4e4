"""`fewmol finetune`: train a property model on a CSV or a named benchmark."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from fewmol.chem.mol import Hygiene
from fewmol.cli.common import (
    check_table_options,
    console,
    default_featurizer,
    duplicates_option,
    is_ddp_child,
    label_col_option,
    load_dataset,
    no_test_score_note,
    parse_seeds,
    precision_option,
    report_bad_rows,
    split_list,
    task_col_option,
    threshold_option,
    user_errors,
)
from fewmol.data.collate import GraphSet
from fewmol.data.splits import SPLIT_NAMES, Split, kfold_splits, make_split, split_from_labels
from fewmol.data.tables import Table
from fewmol.errors import InvalidInputError
from fewmol.finetune.config import FinetuneConfig
from fewmol.io.checkpoint import write_json
from fewmol.io.modeldir import init_featurizer


def resolve_split(spec: str, table: Table, data: str, seed: int) -> Split:
    """scaffold | random | column:NAME | PATH (CSV with a 'split' column, or split.json)."""
    if spec in ("scaffold", "random"):
        return make_split(spec, table.smiles, seed)
    if spec.startswith("column:"):
        col = spec.split(":", 1)[1]
        if table.raw is None or col not in table.raw.columns:
            raise InvalidInputError(f"--split column {col!r} not in {data}")
        return split_from_labels(table.raw[col].to_numpy()[table.rows])
    path = Path(spec)
    if not path.exists():
        raise InvalidInputError(
            f"--split must be scaffold, random, column:NAME or an existing file; got {spec!r}"
        )
    if path.suffix == ".json":
        return Split.from_json(path)
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "split" not in labels.columns:
        raise InvalidInputError(f"{path} needs a 'split' column (train/valid/test per input row)")
    if "row" in labels.columns:
        by_row = dict(zip(labels["row"].astype(int), labels["split"]))
        missing = [int(r) for r in table.rows if int(r) not in by_row]
        if missing:
            raise InvalidInputError(f"{path} has no split for input rows {missing[:5]}")
        return split_from_labels([by_row[int(r)] for r in table.rows])
    if len(labels) != table.n_input:
        raise InvalidInputError(
            f"{path} has {len(labels)} split labels but the input has {table.n_input} rows; "
            "give one per input row or add a 'row' column"
        )
    return split_from_labels(labels["split"].to_numpy()[table.rows])


def finetune(
    data: str = typer.Argument(..., help="CSV or SD file, or a dataset name (`fewmol data list`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output model directory."),
    smiles_col: str = typer.Option(None, help="SMILES column (default: auto-detect)."),
    target_cols: str = typer.Option(None, help="Comma-separated target columns (default: auto)."),
    task_col: str = task_col_option("label"),
    label_col: str = label_col_option(),
    threshold: float = threshold_option(),
    task: str = typer.Option(None, help="classification | regression (default: inferred)."),
    split: str = typer.Option("scaffold", help="scaffold | random | column:NAME | PATH."),
    init: str = typer.Option(None, help="Pre-trained encoder dir or shipped checkpoint name."),
    epochs: int = typer.Option(100, min=1),
    batch_size: int = typer.Option(32, min=1),
    lr: float = typer.Option(1e-3),
    encoder_lr: float = typer.Option(None, help="Encoder learning rate (default: --lr)."),
    weight_decay: float = typer.Option(0.0),
    dropout: float = typer.Option(0.5),
    num_layers: int = typer.Option(5, min=1),
    hidden: int = typer.Option(300, min=1, help="GIN hidden size."),
    featurizer: str = typer.Option(
        None,
        help="hu2019 | ogb (default: the --init encoder's; from scratch ogb, a resumed run's own).",
    ),
    seeds: str = typer.Option("0", help="Comma-separated seeds; several give out/seed<k>/ dirs."),
    ensemble: int = typer.Option(
        None, help="Train N seeds on one split into out/seed<k>/ and calibrate them as one model."
    ),
    mc_dropout: int = typer.Option(
        0, help="MC-dropout passes per prediction (a cheap spread estimate; 0 = off)."
    ),
    coverage: float = typer.Option(0.9, help="Target coverage of the conformal intervals."),
    calibration: str = typer.Option(
        "temperature", help="Classification calibration: temperature | isotonic."
    ),
    baseline: str = typer.Option("none", help="none | rf: random forest on the same split."),
    strip_salts: bool = typer.Option(False, help="Keep the largest organic fragment."),
    standardize: bool = typer.Option(
        False, help="RDKit MolStandardize clean-up and neutralisation."
    ),
    canonical_tautomer: bool = typer.Option(False, help="Replace by the canonical tautomer."),
    freeze_encoder: bool = typer.Option(False, help="Keep the --init encoder fixed."),
    unfreeze_after: int = typer.Option(
        None, help="Keep the --init encoder fixed for this many epochs, then train it."
    ),
    folds: int = typer.Option(
        None,
        help="K-fold cross-validation: K models (DIR/fold<k>/), each tested on the molecules "
        "the others train on (scaffold folds with --split scaffold); out-of-fold predictions "
        "and scores in DIR/oof_predictions.csv and DIR/cv_summary.json.",
    ),
    tune: int = typer.Option(
        None,
        help="Hyperparameter search: N trials (the given settings first, then seeded random lr, "
        "dropout, weight decay and batch size) on one split; the best by validation is "
        "copied to --out; all in DIR/trials.csv.",
    ),
    on_invalid: str = typer.Option("skip", help="skip | error: what to do with bad rows."),
    duplicates: str = duplicates_option(),
    data_dir: Path = typer.Option(None, help="Root of the data files (else $FEWMOL_DATA)."),
    workers: int = typer.Option(1, min=1, help="Featurisation processes."),
    resume: bool = typer.Option(False, help="Continue a killed run in --out."),
    force: bool = typer.Option(False, help="Overwrite an existing run in --out."),
    accelerator: str = typer.Option("auto", help="Lightning accelerator: auto | cpu | gpu."),
    devices: str = typer.Option("auto", help="Lightning devices, e.g. 1, 4 or auto."),
    strategy: str = typer.Option("auto", help="Lightning strategy, e.g. ddp."),
    num_nodes: int = typer.Option(1, min=1),
    precision: str = precision_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fine-tune a GIN on DATA and write a model dir with metrics and predictions."""
    with user_errors():
        seed_list = parse_seeds(seeds)
        if ensemble is not None:
            if ensemble < 2:
                raise InvalidInputError(f"--ensemble needs at least 2 members, got {ensemble}")
            if len(seed_list) > 1:
                raise InvalidInputError(
                    "give either --ensemble N (seeds N consecutive from the first --seeds) or "
                    "--seeds a,b,c, not both"
                )
            seed_list = [seed_list[0] + k for k in range(ensemble)]
        if folds is not None:
            if folds < 2:
                raise InvalidInputError(f"--folds needs at least 2 folds, got {folds}")
            if ensemble is not None or len(seed_list) > 1:
                raise InvalidInputError(
                    "--folds trains one model per fold; drop --ensemble/--seeds"
                )
            if split not in ("scaffold", "random"):
                raise InvalidInputError(
                    f"--folds works with --split scaffold or random, not {split!r}"
                )
        if tune is not None:
            if tune < 2:
                raise InvalidInputError(f"--tune needs at least 2 trials, got {tune}")
            if folds is not None or ensemble is not None or len(seed_list) > 1:
                raise InvalidInputError(
                    "--tune searches one model's settings; drop --folds / --ensemble / the "
                    "other --seeds (fine-tune the winner's settings with them afterwards)"
                )
            if baseline != "none":
                raise InvalidInputError(
                    "--baseline with --tune would refit the baseline in every trial; run it "
                    "in a separate finetune"
                )
        if task not in (None, "classification", "regression"):
            raise InvalidInputError(f"--task must be classification or regression, got {task!r}")
        if on_invalid not in ("skip", "error"):
            raise InvalidInputError(f"--on-invalid must be skip or error, got {on_invalid!r}")
        long_format = check_table_options(duplicates, task_col, label_col)
        # the featuriser follows a pre-trained encoder unless one is asked for (a mismatch
        # is then an error, from the run); from scratch it is settled once the task is known
        chosen_featurizer = featurizer
        featurizer = featurizer or init_featurizer(init)
        hygiene = Hygiene(strip_salts, standardize, canonical_tautomer)

        def config(seed: int, baseline: str) -> FinetuneConfig:
            return FinetuneConfig(
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
                workers=workers,
                accelerator=accelerator,
                devices=devices,
                strategy=strategy,
                num_nodes=num_nodes,
                precision=precision,
                progress=not quiet,
                freeze_encoder=freeze_encoder,
                unfreeze_after=unfreeze_after,
                mc_dropout=mc_dropout,
                coverage=coverage,
                calibration=calibration,
                baseline=baseline,
                extra={
                    "split": split,
                    "on_invalid": on_invalid,
                    "duplicates": duplicates,
                    "task_col": task_col,
                    "label_col": label_col,
                    "threshold": threshold,
                    "ensemble": ensemble,
                    "folds": folds,
                    "tune": tune,
                    "hygiene": hygiene.to_dict(),
                },
            )

        config(seed_list[0], baseline).validate()  # bad flags fail before any data is read
        child = is_ddp_child()  # rank > 0 re-runs this command: rank 0 owns --out
        if out.exists() and any(out.iterdir()) and not (resume or force or child):
            raise InvalidInputError(
                f"{out} is not empty; pass --resume to continue that run or --force to overwrite"
            )
        table, info = load_dataset(
            data, smiles_col, split_list(target_cols), task, on_invalid, data_dir,
            duplicates=duplicates, hygiene=hygiene,
            long_format=long_format, threshold=threshold,
        )  # fmt: skip
        if hygiene.active:
            info = dict(info, hygiene=hygiene.to_dict())
        if not child:
            report_bad_rows(table, out)
        if chosen_featurizer is None and init is None:
            featurizer = default_featurizer(
                out if resume else None,
                "the default from scratch: it scored better than hu2019 on our regression and "
                "classification benchmarks",
            )
        # the training modules load Lightning (seconds): only once the input has passed
        from fewmol.finetune.run import featurize_table, finish_ensemble, summarize_seeds
        from fewmol.finetune.run import finetune as run_finetune

        graphs = featurize_table(table, featurizer, workers)
        if tune is not None:
            the_split = resolve_split(split, table, data, seed_list[0])
            return _tune(
                table, the_split, tune, config(seed_list[0], baseline), out, resume, info, graphs
            )
        if folds is not None:
            return _crossvalidate(
                table, folds, split, config(seed_list[0], baseline), out, resume, info, graphs
            )
        # an ensemble shares one split (its validation molecules must be held out of every
        # member); plain --seeds keep one split per seed, as the benchmarks do
        first = resolve_split(split, table, data, seed_list[0])
        splits = [
            first if ensemble or k == 0 else resolve_split(split, table, data, seed)
            for k, seed in enumerate(seed_list)
        ]
        shared = len(seed_list) > 1 and all(_same_split(first, sp) for sp in splits)
        all_metrics, run_dirs = [], []
        for seed, the_split in zip(seed_list, splits):
            cfg = config(seed, "none" if shared else baseline)
            run_dir = out if len(seed_list) == 1 else out / f"seed{seed}"
            metrics = run_finetune(table, the_split, cfg, run_dir, resume, info, graphs)
            if not metrics:  # a non-zero DDP rank
                return
            all_metrics.append(metrics)
            run_dirs.append(run_dir)
            _print_metrics(metrics, seed, run_dir)
        if len(seed_list) == 1:
            _print_extras(all_metrics[0])
            return
        summary = summarize_seeds(all_metrics)
        m = all_metrics[0]["select_metric"]
        s = summary["test_at_best_valid"].get(m)
        if s:
            console.print(f"test {m} over seeds {seed_list}: {s['mean']:.4f} ± {s['std']:.4f}")
        if shared:
            ens = finish_ensemble(
                out, run_dirs, table, first, graphs, config(seed_list[0], baseline), all_metrics
            )
            summary["ensemble"] = {
                k: ens.get(k) for k in ("predictor", "calibration", "applicability", "baseline")
            }
            test = ens["predictor"].get("test", {}).get(m)
            console.print(
                f"ensemble of {len(seed_list)} (mean prediction): test {m} = {_fmt(test)}; "
                f"model dir: {out}"
            )
            _print_extras(ens)
        else:
            console.print(
                "the seeds were trained on different splits, so they are not calibrated as one "
                "model (use --ensemble N for that); each seed dir has its own calibration"
            )
        write_json(out / "summary.json", summary)


def _crossvalidate(
    table: Table,
    folds: int,
    split: str,
    cfg: FinetuneConfig,
    out: Path,
    resume: bool,
    info: dict,
    graphs: GraphSet,
) -> None:
    """One model per fold, then the out-of-fold predictions and the summary."""
    from fewmol.finetune.crossval import OOF_FILE, SUMMARY_FILE, fold_dir, summarize_folds
    from fewmol.finetune.run import finetune as run_finetune

    splits = kfold_splits(table.smiles, folds, split, cfg.seed)
    dirs, all_metrics = [], []
    for k, fold_split in enumerate(splits):
        run_dir = fold_dir(out, k)
        metrics = run_finetune(table, fold_split, cfg, run_dir, resume, info, graphs)
        if not metrics:  # a non-zero DDP rank
            return
        m = metrics["select_metric"]
        console.print(
            f"fold {k + 1}/{folds}: test {m} = {_fmt(metrics['test_at_best_valid'].get(m))} "
            f"on {len(fold_split.test)} molecules; model dir: {run_dir}"
        )
        dirs.append(run_dir)
        all_metrics.append(metrics)
    summary = summarize_folds(table, splits, dirs, all_metrics)
    m = all_metrics[0]["select_metric"]
    s = summary["test_at_best_valid"].get(m)
    if s:
        console.print(f"test {m} over {folds} folds: {s['mean']:.4f} ± {s['std']:.4f}")
    console.print(
        f"out-of-fold {m} of all {summary['n_out_of_fold']} molecules: "
        f"{_fmt(summary['out_of_fold'].get(m))}; {out / OOF_FILE}, {out / SUMMARY_FILE}"
    )


def _tune(
    table: Table,
    split: Split,
    n_trials: int,
    base: FinetuneConfig,
    out: Path,
    resume: bool,
    info: dict,
    graphs: GraphSet,
) -> None:
    """Seeded random search on one split; the best trial by validation becomes --out."""
    from fewmol.finetune.run import finetune as run_finetune
    from fewmol.finetune.tune import TRIALS_FILE, run_search, sample_trials

    def show(k: int, setting: dict, metrics: dict) -> None:
        m = metrics["select_metric"]
        shown = ", ".join(f"{name} {v:g}" for name, v in setting.items())
        console.print(
            f"trial {k}: {shown}: valid {m} {_fmt(metrics['best_valid'].get(m))}, "
            f"test {_fmt(metrics['test_at_best_valid'].get(m))}"
        )

    summary = run_search(
        base,
        sample_trials(n_trials, base.seed),
        out,
        lambda cfg, d: run_finetune(table, split, cfg, d, resume, info, graphs),
        show,
    )
    if summary is None:  # a non-zero DDP rank
        return
    m = summary["select_metric"]
    best = ", ".join(f"{k} {v:g}" for k, v in summary["best_settings"].items())
    console.print(
        f"best of {n_trials} trials by validation: trial {summary['best_trial']} ({best}): "
        f"valid {m} {_fmt(summary['best_valid'])}, test {_fmt(summary['test_of_best'])}; "
        f"model dir: {out} (all trials: {out / TRIALS_FILE})"
    )


def _same_split(a: Split, b: Split) -> bool:
    return all(
        len(getattr(a, k)) == len(getattr(b, k)) and (getattr(a, k) == getattr(b, k)).all()
        for k in SPLIT_NAMES
    )


def _print_extras(metrics: dict) -> None:
    """Calibration, applicability-domain and baseline lines under the metrics."""
    m = metrics["select_metric"]
    cal = metrics.get("calibration")
    if cal and "test" in cal:
        test = cal["test"]
        if "coverage" in test:
            console.print(
                f"calibration ({metrics.get('uncertainty')}): test coverage of the "
                f"{cal['coverage']:.0%} intervals = {test['coverage']:.3f} "
                f"(mean width {test['mean_width']:.3g})"
            )
        elif "ece_raw" in test:
            console.print(
                f"calibration ({cal.get('method')}): test ECE {test['ece_raw']:.3f} -> "
                f"{test['ece_calibrated']:.3f}, NLL {test['nll_raw']:.3f} -> "
                f"{test['nll_calibrated']:.3f}"
            )
    elif cal is None:
        console.print("no validation split: no calibration and no in-domain thresholds")
    ad = (metrics.get("applicability") or {}).get("test")
    if ad:
        inside = (ad.get("in_domain") or {}).get(m)
        outside = (ad.get("out_of_domain") or {}).get(m)
        console.print(
            f"applicability domain: {ad['in_domain_fraction']:.0%} of test molecules in domain "
            f"(test {m}: {_fmt_or_na(inside)} inside, {_fmt_or_na(outside)} outside)"
        )
    base = metrics.get("baseline")
    if base:
        rf = (base.get("test") or {}).get(m)
        gnn = (base.get("gnn", {}).get("test") or {}).get(m)
        console.print(f"baseline {base['method']}: test {m} = {_fmt(rf)} (GNN {_fmt(gnn)})")


def _print_metrics(metrics: dict, seed: int, run_dir: Path) -> None:
    m = metrics["select_metric"]
    best = metrics["test_at_best_valid"].get(m, float("nan"))
    last = metrics["test_at_last_epoch"].get(m, float("nan"))
    sizes = metrics.get("split_sizes") or {}
    if metrics.get("best_valid"):
        at = (
            f"at best-valid epoch {metrics['best_epoch']} ({_fmt(last)} at last epoch "
            f"{metrics['epochs_done']})"
        )
    else:
        at = f"at the last epoch, {metrics['epochs_done']} (no validation score to choose by)"
    console.print(f"seed {seed}: test {m} = {_fmt(best)} {at}; model dir: {run_dir}")
    if best is None or best != best:
        no_test_score_note(m, sizes, metrics.get("task_type", ""))


def _fmt_or_na(v: float | None) -> str:
    return "n/a (too few molecules)" if v is None else _fmt(v)


def _fmt(v: float | None) -> str:
    return "nan" if v is None or v != v else f"{v:.4f}"
