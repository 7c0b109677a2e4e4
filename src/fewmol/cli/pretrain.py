"""`fewmol pretrain`: self-supervised pre-training of a GIN encoder (GraphMVP, AttrMask, ...)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import typer

from fewmol.cli.common import (
    console,
    default_featurizer,
    err_console,
    is_ddp_child,
    precision_option,
    report_bad_rows,
    user_errors,
)
from fewmol.errors import InvalidInputError
from fewmol.pretrain.config import PretrainConfig
from fewmol.pretrain.data import METHODS_3D, PRETRAIN_METHODS, PretrainData, resolve_pretrain_data

# files a pre-training run writes into --out (what --force may remove)
_RUN_FILES = (
    "config.json",
    "encoder.safetensors",
    "pretrain_log.csv",
    "loss_curve.png",
    "excluded.csv",
    "bad_rows.csv",
)


def _describe(data: PretrainData) -> str:
    """'24 molecules x 2 conformers (48), 1 excluded: 1 too many heavy atoms'."""
    info = data.info
    text = f"data: {len(data)} molecules"
    if data.is_3d:
        per = info["conformers_per_molecule"]
        text += f", {info['n_conformers']} conformers ({per['min']}-{per['max']} per molecule)"
    if len(data.excluded):
        reasons = ", ".join(f"{n} {r}" for r, n in info["excluded_reasons"].items())
        text += f"; {len(data.excluded)} excluded ({reasons})"
    return text + f" [{info.get('kind')}: {info.get('source')}]"


def pretrain(
    out: Path = typer.Option(..., "--out", "-o", help="Output encoder directory."),
    method: str = typer.Option("graphmvp", help="|".join(PRETRAIN_METHODS)),
    data: str = typer.Option(
        "moses", help="Conformer store dir, CSV of SMILES, dataset name (moses) or qm9."
    ),
    epochs: int = typer.Option(100, min=1),
    batch_size: int = typer.Option(256, min=2),
    lr: float = typer.Option(1e-3, min=0.0),
    seed: int = typer.Option(0),
    num_layers: int = typer.Option(5, min=1, help="GIN layers."),
    hidden: int = typer.Option(300, min=1, help="GIN width (also SchNet's output width)."),
    featurizer: str = typer.Option(
        None, help="hu2019 | ogb (default: ogb; a resumed run's own). hu2019 = pretrain-gnns."
    ),
    alpha1: float = typer.Option(1.0, help="Weight of the contrastive loss L_C."),
    alpha2: float = typer.Option(1.0, help="Weight of the generative loss L_G."),
    alpha3: float = typer.Option(1.0, help="Weight of the 2D loss in graphmvp-g / -c."),
    beta: float = typer.Option(1.0, help="KL weight of the VRR."),
    contrastive: str = typer.Option("ebm_nce", help="ebm_nce | infonce."),
    temperature: float = typer.Option(0.1, help="Critic temperature."),
    generative: str = typer.Option("vrr", help="vrr | rr | none."),
    mask_ratio: float = typer.Option(0.15, help="GraphMVP's mask ratio M on the 2D input."),
    mask_mode: str = typer.Option("atoms", help="atoms (mask tokens) | subgraph (as GraphMVP)."),
    attrmask_ratio: float = typer.Option(0.15, help="Atoms masked by AttrMask."),
    contextpred_logit_scale: float = typer.Option(
        1.0,
        help="ContextPred (alone or in graphmvp-c): factor on its logits; 1 as pretrain-gnns, "
        "1/sqrt(hidden) (0.0577 at 300) learns faster in short runs.",
    ),
    aug_strength: float = typer.Option(
        0.2, help="GraphCL / JOAO: share of atoms or bonds an augmentation changes."
    ),
    joao_gamma: float = typer.Option(0.1, help="JOAO: pull of the pair distribution to uniform."),
    num_confs: int = typer.Option(5, min=1, help="Conformers generated per molecule (C)."),
    conf_sampling: str = typer.Option("cycle", help="cycle (one per epoch) | all (every one)."),
    max_molecules: int = typer.Option(50_000, min=1, help="Sample size (fixed seed)."),
    schnet_hidden: int = typer.Option(128, min=1),
    schnet_interactions: int = typer.Option(6, min=1),
    cutoff: float = typer.Option(10.0, min=0.1, help="SchNet cutoff (Å)."),
    schnet_lr_scale: float = typer.Option(0.1, min=0.0, help="SchNet lr = lr x this."),
    smiles_col: str = typer.Option(None, help="SMILES column of a CSV (default: auto)."),
    data_dir: Path = typer.Option(None, help="Root of the data files (else $FEWMOL_DATA)."),
    workers: int = typer.Option(os.cpu_count() or 1, min=0, help="Conformer/feature processes."),
    resume: bool = typer.Option(False, help="Continue a stopped run in --out."),
    checkpoint_every: float = typer.Option(
        300.0,
        min=0.0,
        help="Seconds between checkpoints inside an epoch (0: at epoch ends only); --resume "
        "continues from the last one, so a stop loses at most this much training.",
    ),
    force: bool = typer.Option(False, help="Start over in a non-empty --out."),
    accelerator: str = typer.Option("auto", help="Lightning accelerator: auto | cpu | gpu."),
    devices: str = typer.Option("auto", help="Lightning devices, e.g. 1, 4 or auto."),
    strategy: str = typer.Option("auto", help="Lightning strategy, e.g. ddp."),
    num_nodes: int = typer.Option(1, min=1),
    precision: str = precision_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Pre-train a GIN encoder and write it as a dir for `fewmol finetune --init DIR`.

    GraphMVP methods (graphmvp, graphmvp-g, graphmvp-c) need 3D conformers: from a store
    (`fewmol conformers`), QM9, or generated once from SMILES (--num-confs per molecule) and
    cached in $FEWMOL_CACHE/conformers. The 2D baselines need SMILES only: attrmask,
    contextpred, edgepred, infograph, gpt-gnn, graphlog, g-contextual, g-motif, graphcl, joao.
    """
    with user_errors():
        if featurizer is None:
            featurizer = default_featurizer(
                out if resume else None,
                "the default: GraphMVP-C pre-trained on it beat the same run on hu2019 by 4.5 "
                "ROC-AUC on our small classification sets",
                note=not is_ddp_child(),
            )
        cfg = PretrainConfig(
            method=method.strip().lower(), epochs=epochs, batch_size=batch_size, lr=lr,
            seed=seed, featurizer=featurizer, num_layers=num_layers, dim=hidden,
            alpha1=alpha1, alpha2=alpha2, alpha3=alpha3, beta=beta, contrastive=contrastive,
            temperature=temperature, generative=generative, mask_ratio=mask_ratio,
            mask_mode=mask_mode, conf_sampling=conf_sampling, num_confs=num_confs,
            schnet_hidden=schnet_hidden, schnet_filters=schnet_hidden,
            schnet_interactions=schnet_interactions, cutoff=cutoff,
            schnet_lr_scale=schnet_lr_scale, attrmask_ratio=attrmask_ratio,
            contextpred_logit_scale=contextpred_logit_scale,
            aug_strength=aug_strength, joao_gamma=joao_gamma,
            max_molecules=max_molecules, workers=workers, accelerator=accelerator,
            devices=devices, strategy=strategy, num_nodes=num_nodes, precision=precision,
            progress=not quiet, checkpoint_every_s=checkpoint_every,
        )  # fmt: skip
        cfg.validate()  # bad flags fail before minutes of data preparation
        child = is_ddp_child()  # rank > 0 re-runs this command: rank 0 owns --out
        if out.exists() and not out.is_dir():
            raise InvalidInputError(f"--out {out} is a file; give a directory")
        if out.is_dir() and any(out.iterdir()) and not (resume or force or child):
            raise InvalidInputError(
                f"{out} is not empty; pass --resume to continue that run or --force to start over"
            )
        if force and not resume and not child:
            for name in _RUN_FILES:
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
        # Lightning takes seconds to import: loaded once the flags and --out have passed
        from fewmol.pretrain.run import prepare_data
        from fewmol.pretrain.run import pretrain as run_pretrain

        pdata = resolve_pretrain_data(
            data, cfg.method, featurizer=featurizer, max_molecules=max_molecules,
            num_confs=num_confs, workers=workers, smiles_col=smiles_col, data_dir=data_dir,
            progress=not quiet and not child,
        )  # fmt: skip
        if not child:
            if pdata.table is not None:
                report_bad_rows(pdata.table, out)
            err_console.print(_describe(pdata), markup=False)
            if cfg.method in METHODS_3D and pdata.info.get("conformer_source") == "rdkit-etkdg":
                err_console.print(
                    f"conformers: RDKit ETKDG + MMFF, cached in {pdata.info['store']}", markup=False
                )
            if cfg.method_2d == "g-motif":  # ~1-2 ms per molecule the first time
                err_console.print(
                    "motif labels: RDKit fr_* functional groups (computed once, cached)"
                )
                prepare_data(cfg, pdata)
        info = run_pretrain(pdata, cfg, out, resume=resume)
        if not info:  # a non-zero DDP rank
            return
        rate = info["molecules_per_s"]
        console.print(
            f"pre-trained {cfg.method}: {info['epochs_done']} "
            f"epoch{'' if info['epochs_done'] == 1 else 's'} on {len(pdata)} molecules in "
            f"{info['train_time_s']:.1f} s ({rate if rate is not None else 'n/a'} molecules/s); "
            f"encoder dir: {out} (use `fewmol finetune DATA --init {out}`)",
            markup=False,
        )
