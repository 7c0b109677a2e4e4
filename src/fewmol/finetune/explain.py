"""Atom attributions: which atoms push a model's prediction up or down (integrated gradients).

For each molecule and task the attribution of atom i is its share of f(x) - f(baseline), with
f the task's logit (classification) or value in the training units (regression), x the atom
embeddings the GIN starts from and the baseline all-zero atom embeddings (bonds unchanged):
integrated gradients (Sundararajan et al., 2017), mid-point rule over ``steps`` points, so the
attributions of a molecule sum to f(x) - f(baseline) up to the quadrature error (a test checks
it). Every molecule of a batch gets its gradients from one backward pass per step and task.
Ensembles average their members' attributions (attributions are linear in f). Atom i is atom
i of the molecule's canonical SMILES, as written in the output.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fewmol.data.collate import GraphSet
from fewmol.data.loaders import predict_batches
from fewmol.finetune.defaults import DEFAULT_STEPS
from fewmol.finetune.module import FinetuneModule


@contextmanager
def _atom_input(module: FinetuneModule, replace: dict[str, torch.Tensor]) -> Iterator[None]:
    """While active, the encoder's atom embeddings are ``replace['h']`` (set per call)."""

    def hook(_mod: torch.nn.Module, _inp: Any, out: torch.Tensor) -> torch.Tensor:
        replace["base"] = out.detach()
        return replace["h"] if "h" in replace else out

    handle = module.model.encoder.atom_embedding.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _task_output(module: FinetuneModule, out: torch.Tensor) -> torch.Tensor:
    """Logits (classification) or values in the training units (regression)."""
    out = out.float()
    return out if module.task_type == "classification" else out * module.y_std + module.y_mean


def integrated_gradients(
    modules: list[FinetuneModule],
    graphs: GraphSet,
    tasks: list[int],
    steps: int = DEFAULT_STEPS,
    batch_size: int = 64,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per-atom attributions, outputs and baseline outputs of every graph for ``tasks``.

    Returns (attributions: one (n_atoms_i, len(tasks)) array per graph, outputs (N, len(tasks)),
    baseline outputs (N, len(tasks))), averaged over ``modules``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    n = len(graphs)
    outputs = np.zeros((n, len(tasks)))
    baselines = np.zeros((n, len(tasks)))
    per_atom: list[np.ndarray] = []
    alphas = (np.arange(steps) + 0.5) / steps
    start = 0
    for batch in predict_batches(graphs, batch_size):
        args = (batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        b = batch.num_graphs
        attr = torch.zeros(batch.x.shape[0], len(tasks), dtype=torch.float64)
        for module in modules:
            module.eval()
            state: dict[str, torch.Tensor] = {}
            with _atom_input(module, state):
                with torch.no_grad():
                    full = _task_output(module, module.model(*args))[:, tasks]
                    base = state["base"]
                    state["h"] = torch.zeros_like(base)
                    zero = _task_output(module, module.model(*args))[:, tasks]
                outputs[start : start + b] += full.double().numpy() / len(modules)
                baselines[start : start + b] += zero.double().numpy() / len(modules)
                grad_sum = torch.zeros(base.shape[0], base.shape[1], len(tasks))
                for a in alphas:
                    h = (float(a) * base).requires_grad_(True)
                    state["h"] = h
                    out = _task_output(module, module.model(*args))[:, tasks]
                    for j in range(len(tasks)):
                        # molecules are independent (eval-mode batch norm): the gradient of the
                        # batch sum gives each atom its own molecule's gradient
                        (g,) = torch.autograd.grad(
                            out[:, j].sum(), h, retain_graph=j < len(tasks) - 1
                        )
                        grad_sum[:, :, j] += g
                attr += ((base.unsqueeze(-1) * grad_sum).sum(1) / steps).double() / len(modules)
        counts = torch.bincount(batch.batch, minlength=b).tolist()
        per_atom.extend(a.numpy() for a in torch.split(attr, counts))
        start += b
    return per_atom, outputs, baselines


def draw_attributions(smiles: str, weights: np.ndarray, path: str | Path, size: int = 400) -> None:
    """A PNG of the molecule coloured by atom attribution (RDKit similarity map)."""
    from rdkit import Chem
    from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

    mol = Chem.MolFromSmiles(smiles)
    drawer = rdMolDraw2D.MolDraw2DCairo(size, size)
    SimilarityMaps.GetSimilarityMapFromWeights(mol, [float(w) for w in weights], draw2d=drawer)
    drawer.FinishDrawing()
    Path(path).write_bytes(drawer.GetDrawingText())


def explain_table(
    model_dir: str | Path,
    source: str | Path,
    smiles_col: str | None = None,
    task_names: list[str] | None = None,
    steps: int = DEFAULT_STEPS,
    png_dir: str | Path | None = None,
) -> tuple[Any, dict[str, Any]]:
    """One output row per (valid input row, task) with its atom attributions; a summary.

    Invalid input rows get one row each with ``valid`` False and the reason in ``error``.
    """
    import pandas as pd

    from fewmol.chem.mol import Hygiene
    from fewmol.data.store import featurize_to_graphset
    from fewmol.data.tables import read_smiles
    from fewmol.errors import InvalidInputError
    from fewmol.finetune.inference import load_module
    from fewmol.finetune.predict import model_members

    members = model_members(model_dir)
    loaded = [load_module(m) for m in members]
    cfg = loaded[0][1]
    names = list(cfg["target_names"])
    chosen = task_names or names
    unknown = [t for t in chosen if t not in names]
    if unknown:
        raise InvalidInputError(
            f"--task {', '.join(unknown)}: not a task of {model_dir} (tasks: {', '.join(names)})"
        )
    tasks = [names.index(t) for t in chosen]
    table = read_smiles(source, smiles_col, hygiene=Hygiene.from_dict(cfg.get("hygiene")))
    graphs = featurize_to_graphset(table.smiles, cfg["featurizer"], cache=False)
    attrs, outs, bases = integrated_gradients([m for m, _ in loaded], graphs, tasks, steps)
    kind = "logit" if cfg["task_type"] == "classification" else "value"
    reasons = table.bad_rows.groupby("row")["reason"].agg("; ".join) if len(table.bad_rows) else {}
    input_smiles = table.raw[table.smiles_col].tolist() if table.raw is not None else None
    records: list[dict[str, Any]] = []
    kept = {int(r): k for k, r in enumerate(table.rows)}
    png = Path(png_dir) if png_dir is not None else None
    if png is not None:
        png.mkdir(parents=True, exist_ok=True)
    for row in range(table.n_input):
        base = {"row": row, "smiles": input_smiles[row] if input_smiles else ""}
        k = kept.get(row)
        if k is None:
            records.append({**base, "valid": False, "error": reasons.get(row, "invalid")})
            continue
        for j, t in enumerate(tasks):
            a = attrs[k][:, j]
            record = {
                **base,
                "valid": True,
                "error": "",
                "canonical_smiles": table.smiles[k],
                "task": names[t],
                kind: outs[k, j],
                f"baseline_{kind}": bases[k, j],
                "sum_of_attributions": float(a.sum()),
                "top_atom": int(np.argmax(np.abs(a))),
                "atom_attributions": ";".join(f"{v:.4g}" for v in a),
            }
            if png is not None and len(a) >= 2:  # RDKit's maps need two atoms
                name = f"row{row}_task{t}.png"
                draw_attributions(table.smiles[k], a, png / name)
                record["image"] = name
            records.append(record)
    summary = {
        "n_rows": table.n_input,
        "n_valid": len(table.rows),
        "tasks": [names[t] for t in tasks],
        "output": kind,
        "steps": steps,
        "members": len(members),
    }
    return pd.DataFrame.from_records(records), summary
