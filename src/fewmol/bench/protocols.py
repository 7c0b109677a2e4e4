"""The papers' evaluation protocols as data, with the published figures (labelled as the paper's)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fewmol.errors import InvalidInputError


def metric_scale(metric: str) -> float:
    """Factor from a stored score to the tables' units: ROC-AUC and PRC-AUC in %."""
    return 100.0 if metric in ("roc_auc", "prc_auc") else 1.0


def metric_digits(metric: str) -> int:
    """Decimals a table prints for ``metric`` (in its table units)."""
    return 1 if metric in ("roc_auc", "prc_auc") else 3


@dataclass(frozen=True)
class Protocol:
    """One benchmark table: datasets, split, metric, fine-tuning budget and the paper's rows."""

    name: str
    datasets: tuple[str, ...]
    metric: str
    split: str
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    dropout: float = 0.5
    seeds: tuple[int, ...] = (0, 1, 2)
    drop_duplicates: bool = False  # papers keep every parsable row (BBBP 2,039)
    higher_is_better: bool = True
    paper: dict[str, dict[str, tuple[float, float | None]]] = field(default_factory=dict)
    paper_source: str = ""
    # "finetune": fewmol.finetune.run on a molecule table; "dta": fewmol.dta.run on pairs
    runner: str = "finetune"
    # further test metrics stored per run and shown in secondary tables (ours only)
    secondary: tuple[str, ...] = ()
    title: str = ""


def _rows(text: str, datasets: tuple[str, ...]) -> dict[str, dict[str, tuple[float, float]]]:
    """Parse 'method | 65.4(2.4) | ...' lines into {method: {dataset: (mean, std)}}."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for line in text.strip().splitlines():
        cells = [c.strip() for c in line.split("|")]
        vals = {}
        for ds, cell in zip(datasets, cells[1:]):
            mean, std = cell.rstrip(")").split("(")
            vals[ds] = (float(mean), float(std))
        out[cells[0]] = vals
    return out


CLASSIFICATION_DATASETS = ("bbbp", "tox21", "toxcast", "sider", "clintox", "muv", "hiv", "bace")
SMALL_CLASSIFICATION = ("bbbp", "tox21", "toxcast", "sider", "clintox", "bace")

# GraphMVP (Liu et al., ICLR 2022) Table 1, ROC-AUC (%), mean(std) over 3 seeds.
_A1 = """
none | 65.4(2.4) | 74.9(0.8) | 61.6(1.2) | 58.0(2.4) | 58.8(5.5) | 71.0(2.5) | 75.3(0.5) | 72.6(4.9)
edgepred | 64.5(3.1) | 74.5(0.4) | 60.8(0.5) | 56.7(0.1) | 55.8(6.2) | 73.3(1.6) | 75.1(0.8) | 64.6(4.7)
attrmask | 70.2(0.5) | 74.2(0.8) | 62.5(0.4) | 60.4(0.6) | 68.6(9.6) | 73.9(1.3) | 74.3(1.3) | 77.2(1.4)
gpt-gnn | 64.5(1.1) | 75.3(0.5) | 62.2(0.1) | 57.5(4.2) | 57.8(3.1) | 76.1(2.3) | 75.1(0.2) | 77.6(0.5)
infograph | 69.2(0.8) | 73.0(0.7) | 62.0(0.3) | 59.2(0.2) | 75.1(5.0) | 74.0(1.5) | 74.5(1.8) | 73.9(2.5)
contextpred | 71.2(0.9) | 73.3(0.5) | 62.8(0.3) | 59.3(1.4) | 73.7(4.0) | 72.5(2.2) | 75.8(1.1) | 78.6(1.4)
graphlog | 67.8(1.7) | 73.0(0.3) | 62.2(0.4) | 57.4(2.3) | 62.0(1.8) | 73.1(1.7) | 73.4(0.6) | 78.8(0.7)
g-contextual | 70.3(1.6) | 75.2(0.3) | 62.6(0.3) | 58.4(0.6) | 59.9(8.2) | 72.3(0.9) | 75.9(0.9) | 79.2(0.3)
g-motif | 66.4(3.4) | 73.2(0.8) | 62.6(0.5) | 60.6(1.1) | 77.8(2.0) | 73.3(2.0) | 73.8(1.4) | 73.4(4.0)
graphcl | 67.5(3.3) | 75.0(0.3) | 62.8(0.2) | 60.1(1.3) | 78.9(4.2) | 77.1(1.0) | 75.0(0.4) | 68.7(7.8)
joao | 66.0(0.6) | 74.4(0.7) | 62.7(0.6) | 60.7(1.0) | 66.3(3.9) | 77.0(2.2) | 76.6(0.5) | 72.9(2.0)
graphmvp | 68.5(0.2) | 74.5(0.4) | 62.7(0.1) | 62.3(1.6) | 79.0(2.5) | 75.0(1.4) | 74.8(1.4) | 76.8(1.1)
graphmvp-g | 70.8(0.5) | 75.9(0.5) | 63.1(0.2) | 60.2(1.1) | 79.1(2.8) | 77.7(0.6) | 76.0(0.1) | 79.3(1.5)
graphmvp-c | 72.4(1.6) | 74.4(0.2) | 63.1(0.4) | 63.9(1.2) | 77.5(4.2) | 75.0(1.0) | 77.0(1.2) | 81.2(0.9)
"""

REGRESSION_DATASETS = ("esol", "lipo", "malaria", "cep", "freesolv")


def _means(text: str, datasets: tuple[str, ...]) -> dict[str, dict[str, tuple[float, None]]]:
    """Parse 'method | 1.178 | ...' lines (means only, the paper gives no std) into rows."""
    out: dict[str, dict[str, tuple[float, None]]] = {}
    for line in text.strip().splitlines():
        cells = [c.strip() for c in line.split("|")]
        out[cells[0]] = {ds: (float(c), None) for ds, c in zip(datasets, cells[1:]) if c}
    return out


# GraphMVP (Liu et al., ICLR 2022) Table 3, RMSE, mean of 3 seeds (FreeSolv not reported).
_A2 = """
none | 1.178 | 0.744 | 1.127 | 1.254
attrmask | 1.112 | 0.730 | 1.119 | 1.256
contextpred | 1.196 | 0.702 | 1.101 | 1.243
joao | 1.120 | 0.708 | 1.145 | 1.293
graphmvp | 1.091 | 0.718 | 1.114 | 1.236
graphmvp-g | 1.064 | 0.691 | 1.106 | 1.228
graphmvp-c | 1.029 | 0.681 | 1.097 | 1.244
"""

DTA_DATASETS = ("davis", "kiba")

# GraphMVP (Liu et al., ICLR 2022) Table 3, drug–target affinity MSE, mean of 3 seeds.
_A2_DTA = """
none | 0.286 | 0.206
attrmask | 0.291 | 0.203
contextpred | 0.279 | 0.198
joao | 0.281 | 0.196
graphmvp | 0.280 | 0.178
graphmvp-g | 0.274 | 0.175
graphmvp-c | 0.276 | 0.168
"""

PROTOCOLS: dict[str, Protocol] = {
    "classification": Protocol(
        name="classification",
        datasets=CLASSIFICATION_DATASETS,
        metric="roc_auc",
        split="scaffold",
        paper=_rows(_A1, CLASSIFICATION_DATASETS),
        paper_source="GraphMVP (Liu et al., ICLR 2022), Table 1; ROC-AUC %, scaffold split",
        title="Classification: test ROC-AUC (%), scaffold split",
    ),
    "regression": Protocol(
        name="regression",
        datasets=REGRESSION_DATASETS,
        metric="rmse",
        split="scaffold",
        higher_is_better=False,
        paper=_means(_A2, REGRESSION_DATASETS[:4]),
        paper_source="GraphMVP (Liu et al., ICLR 2022), Table 3; RMSE, scaffold split; "
        "the paper's regression runs use the 9-feature OGB atom featuriser",
        secondary=("mae", "r2"),
        title="Regression: test RMSE, scaffold split",
    ),
    "dta": Protocol(
        name="dta",
        datasets=DTA_DATASETS,
        metric="mse",
        split="deepdta-setting1",
        # GraphMVP's dti_finetune.py: Adam 1e-3, batch 256, GIN without dropout
        batch_size=256,
        dropout=0.0,
        higher_is_better=False,
        paper=_means(_A2_DTA, DTA_DATASETS),
        paper_source="GraphMVP (Liu et al., ICLR 2022), Table 3; drug–target affinity MSE "
        "(Davis in pKd, KIBA scores), DeepDTA random (setting-1) folds",
        runner="dta",
        secondary=("ci",),
        title="Drug–target affinity: test MSE, DeepDTA setting-1 folds",
    ),
}


def get_protocol(name: str) -> Protocol:
    """Look up a protocol by name with a clear error."""
    try:
        return PROTOCOLS[name.strip().lower()]
    except KeyError:
        raise InvalidInputError(
            f"unknown benchmark protocol {name!r}; expected one of: {', '.join(PROTOCOLS)}"
        ) from None
