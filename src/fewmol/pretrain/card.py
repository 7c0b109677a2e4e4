"""Ship a pre-training run as a named checkpoint: its encoder plus a card saying how it was made.

``fewmol finetune --init NAME`` resolves ``NAME`` under ``fewmol/assets/checkpoints``
(:func:`fewmol.io.modeldir.resolve_init`). :func:`ship_checkpoint` copies an encoder dir written
by ``fewmol pretrain`` there and writes ``README.md``: the data, the conformers, the epochs done
out of those planned, the wall time, the throughput, the hardware, the loss per epoch and the
command, so that every figure on the card comes from the run's own ``config.json`` and
``pretrain_log.csv``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from fewmol.errors import ModelFileError
from fewmol.io.checkpoint import read_json, write_text

#: the files of an encoder dir that a shipped checkpoint carries
SHIPPED_FILES = ("encoder.safetensors", "config.json", "pretrain_log.csv", "loss_curve.png")


def _fmt_hours(seconds: float | None) -> str:
    """'2.35 h (141 min)' for a number of seconds."""
    if seconds is None:
        return "?"
    return f"{seconds / 3600:.2f} h ({seconds / 60:.0f} min)"


def card_text(cfg: dict[str, Any], log: pd.DataFrame, name: str, command: str) -> str:
    """The Markdown card of a shipped encoder, from its config.json and pretrain_log.csv."""
    data = cfg.get("data", {})
    pre = cfg.get("pretraining", {})
    enc = cfg.get("encoder", {})
    confs = data.get("conformers_per_molecule") or {}
    settings = data.get("conformer_settings") or {}
    done, planned = cfg.get("epochs_done"), cfg.get("epochs")
    lines = [
        f"# Shipped checkpoint `{name}`: {cfg.get('method', '?')} pre-trained GIN encoder",
        "",
        f"Fine-tune from it with `fewmol finetune DATA --init {name}` (also `fewmol dta`, "
        "`fewmol multitask`). Only the 2D GIN encoder is shipped; the 3D SchNet and the "
        "pre-training heads are not needed downstream. Every figure below is read from this "
        "directory's `config.json` and `pretrain_log.csv`, written by the run itself.",
        "",
        "| | |",
        "|---|---|",
        f"| method | {cfg.get('method', '?')} |",
        f"| encoder | GIN, {enc.get('num_layers', '?')} layers x {enc.get('dim', '?')}, "
        f"featuriser {cfg.get('featurizer', '?')} |",
        f"| molecules | {data.get('n_molecules', '?'):,} from {data.get('source', '?')} "
        f"(sample seed {data.get('sample_seed', '?')}) |",
    ]
    if confs:
        reasons = data.get("excluded_reasons") or {}
        why = ", ".join(f"{k}: {v}" for k, v in reasons.items()) or "none"
        lines.append(
            f"| conformers | {data.get('n_conformers', '?'):,} from "
            f"{data.get('conformer_source', '?')} (ETKDGv3 + MMFF94, up to "
            f"{settings.get('num_confs', '?')} per molecule, seed {settings.get('seed', '?')}); "
            f"{data.get('n_excluded', 0)} molecules excluded "
            f"({why}) |"
        )
    lines += [
        f"| epochs | {done} done of {planned} planned"
        + (" (complete)" if cfg.get("complete") else " (stopped early; see below)")
        + " |",
        f"| batch, lr | {pre.get('batch_size', '?')}, {pre.get('lr', '?')} |",
        f"| losses | contrastive {pre.get('contrastive', '?')} (alpha1 {pre.get('alpha1', '?')}), "
        f"generative {pre.get('generative', '?')} (alpha2 {pre.get('alpha2', '?')}, "
        f"beta {pre.get('beta', '?')}), 2D weight alpha3 {pre.get('alpha3', '?')}, "
        f"mask ratio {pre.get('mask_ratio', '?')} ({pre.get('mask_mode', '?')}) |",
        f"| wall time | {_fmt_hours(cfg.get('wall_time_s'))}; training "
        f"{_fmt_hours(cfg.get('train_time_s'))}, {cfg.get('molecules_per_s', '?')} molecules/s |",
        f"| hardware | {cfg.get('hardware', '?')} |",
        f"| code | fewmol {cfg.get('fewmol_version', '?')}, commit {cfg.get('git_commit', '?')}"
        + (
            f" (epochs trained at commits {', '.join(c[:10] for c in cfg['git_commits'])})"
            if len(cfg.get("git_commits") or []) > 1
            else ""
        )
        + " |",
        "",
        "Command:",
        "",
        f"    {command}",
        "",
    ]
    if not cfg.get("complete"):
        lines += [
            "The run stopped before its planned epochs (2 CPU cores; GraphMVP pre-trained for 100 "
            "epochs on a GPU). It is resumable: the same command with `--resume` continues it, "
            "and the checkpoint shipped here is replaced when a longer run finishes.",
            "",
        ]
    elif isinstance(planned, int) and planned < 100:
        lines += [
            f"The run finished its {planned} planned epochs: a far smaller budget than the "
            "papers' 100 (GraphMVP's on GEOM with 5 conformers per molecule), set by the 2 CPU "
            "cores it ran on.",
            "",
        ]
    if cfg.get("provenance_note"):
        lines += [f"Provenance note: {cfg['provenance_note']}.", ""]
    if len(log):
        cols = [c for c in log.columns if c not in ("molecules",)]
        lines += [
            "Loss per epoch (`loss_curve.png`):",
            "",
            "| " + " | ".join(cols) + " |",
            "|" + "---|" * len(cols),
        ]
        for _, row in log.iterrows():
            cells = [f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in cols]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def ship_checkpoint(run_dir: str | Path, dest: str | Path, command: str) -> Path:
    """Copy an encoder dir from ``fewmol pretrain`` to ``dest`` and write its README.md card."""
    src, out = Path(run_dir), Path(dest)
    missing = [f for f in SHIPPED_FILES[:3] if not (src / f).exists()]
    if missing:
        raise ModelFileError(f"{src} is not a finished pre-training dir: no {', '.join(missing)}")
    cfg = read_json(src / "config.json", "pre-training config")
    if cfg.get("kind") != "encoder":
        raise ModelFileError(f"{src}/config.json is not an encoder dir (kind {cfg.get('kind')!r})")
    log = pd.read_csv(src / "pretrain_log.csv")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in SHIPPED_FILES:
        if (src / f).exists():
            shutil.copy2(src / f, tmp / f)
    if not (tmp / "loss_curve.png").exists():  # a run stopped early has not drawn it yet
        from fewmol.pretrain.run import plot_losses

        plot_losses(log.to_dict("records"), tmp / "loss_curve.png", str(cfg.get("method", "")))
    write_text(tmp / "README.md", card_text(cfg, log, out.name, command))
    # swap the whole dir at once so a half-copied checkpoint is never visible under its name
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out
