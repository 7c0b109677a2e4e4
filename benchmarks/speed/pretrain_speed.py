"""Pre-training throughput (molecules/s, steps/s) of GraphMVP and the 2D methods.

DESIGN sizes (GIN 5 x 300; SchNet 128 hidden x 6 interactions, cutoff 10 Å, output 300) on a
fixed-seed sample of MOSES molecules with C ETKDG conformers each (heavy atoms), built with 2
worker processes into a temporary store. One measured step = collate a batch + forward +
backward + Adam step, exactly what ``fewmol pretrain`` runs per batch (``compute_loss`` of the
same LightningModules, without the Trainer). Methods are interleaved over the repeats.

Usage: python benchmarks/speed/pretrain_speed.py [--n 500] [--num-confs 5] [--steps 10]
       [--repeats 3] [--batch-sizes 32,256] [--methods graphmvp,attrmask,contextpred]
       [--data-dir ../shared/data] [--dry-run]
(--dry-run prints the section instead of writing it into benchmarks/results/speed.md).
``--methods`` takes any ``fewmol pretrain`` method (``all``: every one); with 2D methods only,
no conformers are generated. JOAO and GraphLoG steps exclude their once-per-epoch updates.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

from fewmol.chem.conformers import ConformerSettings  # noqa: E402
from fewmol.data import registry  # noqa: E402
from fewmol.data.conformer_store import build_conformer_store  # noqa: E402
from fewmol.data.tables import read_table  # noqa: E402
from fewmol.pretrain.data import (  # noqa: E402
    METHODS_3D,
    PRETRAIN_METHODS,
    PretrainData,
    resolve_pretrain_data,
    sample_indices,
)
from fewmol.pretrain.datamodule import PretrainDataModule  # noqa: E402
from fewmol.pretrain.run import PretrainConfig, build_module, prepare_data  # noqa: E402


def moses_sample(n: int, data_dir: Path) -> list[str]:
    """``n`` canonical MOSES SMILES drawn with the pre-training sample's fixed seed."""
    spec = registry.get_spec("moses")
    path = registry.table_path(spec, registry.resolve(spec, data_dir, download=False))
    frame = pd.read_csv(path, usecols=[spec.smiles_col], dtype=str, keep_default_na=False)
    frame = frame.iloc[sample_indices(len(frame), n)].reset_index(drop=True)
    table = read_table(frame, spec.smiles_col, None, None, "skip", require_targets=False)
    return table.smiles


def measure(
    module, data: PretrainData, batch_size: int, steps: int, precision: str = "32-true"
) -> tuple[float, float]:
    """(molecules/s, steps/s) over ``steps`` optimisation steps after 2 warm-up steps.

    ``bf16-mixed`` runs the loss under CPU bfloat16 autocast, as Lightning's plugin does.
    """
    use_3d = module.__class__.__name__ == "GraphMVPModule"
    loader = PretrainDataModule(data, batch_size, seed=0, use_3d=use_3d).train_dataloader()
    batches = itertools.cycle(loader)
    opt = module.configure_optimizers()
    module.train()

    def step() -> int:
        batch = next(batches)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            loss, _ = module.compute_loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return batch.num_graphs

    for _ in range(2):
        step()
    t = time.perf_counter()
    molecules = sum(step() for _ in range(steps))
    seconds = time.perf_counter() - t
    return molecules / seconds, steps / seconds


def main() -> None:
    """Build the sample, measure every (method, batch size), write or print the section."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="MOSES molecules")
    ap.add_argument("--num-confs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="measured steps per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-sizes", default="32,256")
    ap.add_argument("--methods", default="graphmvp,attrmask,contextpred")
    ap.add_argument("--workers", type=int, default=2, help="conformer processes")
    ap.add_argument("--note", default="", help="Other load on the machine during the run.")
    ap.add_argument(
        "--precisions",
        default="32-true",
        help="32-true and/or bf16-mixed; more than one writes the pretrain_precision section",
    )
    ap.add_argument("--dry-run", action="store_true", help="print, do not write speed.md")
    ap.add_argument(
        "--section",
        default=None,
        help="speed.md section to write (default: pretrain, or pretrain_precision with two "
        "precisions); another name keeps those sections, e.g. for a subset of the methods",
    )
    ap.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data"
    )
    args = ap.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if methods == ["all"]:
        methods = list(PRETRAIN_METHODS)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not set(precisions) <= {"32-true", "bf16-mixed"}:
        raise SystemExit(f"--precisions: 32-true and/or bf16-mixed, got {args.precisions}")
    compare = len(precisions) > 1

    smiles = moses_sample(args.n, args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        if any(m in METHODS_3D for m in methods):
            settings = ConformerSettings(num_confs=args.num_confs)
            build_conformer_store(smiles, tmp, settings, workers=args.workers, progress=False)
            source = tmp
        else:  # 2D methods only: the SMILES themselves, no conformers to wait for
            source = str(Path(tmp) / "smiles.csv")
            pd.DataFrame({"smiles": smiles}).to_csv(source, index=False)
        conf_s = time.perf_counter() - t
        data, modules = {}, {}
        torch.manual_seed(0)
        for m in methods:
            cfg = PretrainConfig(method=m)
            data[m] = prepare_data(cfg, resolve_pretrain_data(source, m, max_molecules=None))
            modules[m] = build_module(cfg, data[m])
        d3 = next((data[m] for m in methods if m in METHODS_3D), None)
        n_mols = len(next(iter(data.values())))
        results: dict[tuple[str, int, str], list[tuple[float, float]]] = {}
        for _ in range(args.repeats):
            for bs in sizes:
                for m in methods:
                    for prec in precisions:
                        rate = measure(modules[m], data[m], bs, args.steps, prec)
                        results.setdefault((m, bs, prec), []).append(rate)
                        print(
                            f"{m} batch {bs} {prec}: {rate[0]:.1f} mol/s, {rate[1]:.2f} steps/s",
                            flush=True,
                        )

    rows = []
    for (m, bs, prec), rates in results.items():
        mol = np.array([r[0] for r in rates])
        stp = np.array([r[1] for r in rates])
        n_par = sum(p.numel() for p in modules[m].parameters())
        base = np.median([r[0] for r in results[(m, bs, precisions[0])]])
        extra = f" {prec} | {np.median(mol) / base:.2f}x |" if compare else ""
        rows.append(
            f"| {m} | {bs} |{extra} {np.median(mol):,.0f} | {mol.min():,.0f}-{mol.max():,.0f} | "
            f"{np.median(stp):.2f} | {n_par:,} |"
        )
    if d3 is not None:
        confs = (
            f"with up to {args.num_confs} ETKDG + MMFF conformers each "
            f"({d3.info['n_conformers']} conformers; generated with {args.workers} processes in "
            f"{conf_s:.0f} s)"
        )
    else:
        confs = "(2D methods only: no conformers)"
    title = "Pre-training throughput" + (" by precision" if compare else "")
    if d3 is None:
        title += " of " + ", ".join(methods)
        model = (
            "GIN 5 x 300, mask ratio 0.15 where a method masks; one step = collate (with the "
            "method's views or samples) + forward + backward + Adam. "
        )
        params = "Parameters include the method's heads."
    else:
        model = (
            "GIN 5 x 300, SchNet 128 x 6 (output 300), mask ratio 0.15, EBM-NCE + VRR; one step "
            "= collate + forward + backward + Adam. "
        )
        params = "Parameters include SchNet and the VRR / method heads."
    head = "| method | batch |" + (f" precision | vs {precisions[0]} |" if compare else "")
    head += " median mol/s | range | steps/s | parameters |"
    body = "\n".join(
        [
            f"## {title} (`benchmarks/speed/pretrain_speed.py`)",
            "",
            f"{n_mols} MOSES molecules (fixed-seed sample) {confs}, heavy atoms. {model}"
            f"{args.steps} steps per measurement, {args.repeats} interleaved repeats "
            f"(median, range). {params}"
            + (
                " bf16-mixed: the step's forward under CPU bfloat16 autocast (Lightning's "
                "`--precision bf16-mixed`); the GraphMVP losses stay float32."
                if compare
                else ""
            )
            + (f" {args.note}" if args.note else ""),
            "",
            head,
            "|" + "---|" * (head.count("|") - 1),
            *rows,
            "",
            provenance("python benchmarks/speed/pretrain_speed.py " + shlex.join(sys.argv[1:])),
        ]
    )
    if args.dry_run:
        print(body)
    else:
        section = args.section or ("pretrain_precision" if compare else "pretrain")
        write_section(section, body)
        print(f"wrote the {section} section of benchmarks/results/speed.md")


if __name__ == "__main__":
    main()
