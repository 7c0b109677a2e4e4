"""The overview page (every protocol, captions with budgets, gain over none) and its plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fewmol.bench.protocols import get_protocol
from fewmol.bench.report import (
    METHOD_COLOURS,
    aggregate,
    gain_over_none,
    method_colour,
    write_overview,
    write_report,
)

BUDGET = {
    "source": "pre/graphmvp-c",
    "kind": "encoder",
    "method": "graphmvp-c",
    "epochs": 100,
    "epochs_done": 10,
    "complete": False,
    "molecules": 50000,
    "conformers_per_molecule": 5.0,
    "wall_time_s": 4680.0,
    "featurizer": "hu2019",
}


def _write(root: Path, protocol: str, method: str, dataset: str, seed: int, **fields) -> None:
    """A fabricated per-run JSON in the layout `fewmol bench run` writes."""
    rec = {
        "protocol": protocol,
        "method": method,
        "dataset": dataset,
        "seed": seed,
        "metric": get_protocol(protocol).metric,
        "epochs": 100,
        "wall_time_s": 600.0,
        "n_molecules": 1128,
        "featurizer": "hu2019",
        "init": None if method == "none" else f"pre/{method}",
        "git_commit": "abcdef0123456789",
        "hardware": "x86_64 1 torch threads, no GPU",
        "command": f"fewmol bench {protocol}",
        **fields,
    }
    p = root / protocol / method / dataset / f"seed{seed}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(rec))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Regression (none + graphmvp-c with a budget + attrmask from before budgets were
    stored), DTA (none, subsampled) and classification (none only, an old-style record)."""
    root = tmp_path / "results"
    for seed, (none, mvp, am) in enumerate([(1.2, 1.0, 1.5), (1.4, 1.2, 1.5)]):
        _write(
            root,
            "regression",
            "none",
            "esol",
            seed,
            test=none,
            test_metrics={"rmse": none, "mae": none / 2, "r2": 0.5 + seed / 10},
        )
        _write(
            root,
            "regression",
            "graphmvp-c",
            "esol",
            seed,
            test=mvp,
            test_metrics={"rmse": mvp, "mae": mvp / 2, "r2": 0.7},
            pretraining=BUDGET,
        )
        _write(root, "regression", "attrmask", "esol", seed, test=am)  # no test_metrics/budget
        _write(
            root,
            "dta",
            "none",
            "davis",
            seed,
            test=0.30 + seed / 100,
            test_ci=0.85,
            test_metrics={"mse": 0.30 + seed / 100, "ci": 0.85 + seed / 100},
            max_pairs=2000,
            n_pairs=30056,
            n_train_pairs=2000,
            n_molecules=68,
            train_pairs_per_s=150.0,
            epochs=10,
        )
    _write(root, "classification", "none", "bbbp", 0, test=0.65, n_molecules=2039)
    return root


def test_gain_is_positive_when_rmse_drops_and_when_auc_rises() -> None:
    reg = get_protocol("regression")
    recs = [
        {"method": m, "dataset": "esol", "seed": s, "test": v, "epochs": 100, "wall_time_s": 1}
        for m, vals in (("none", (1.2, 1.4)), ("graphmvp", (1.0, 1.2)))
        for s, v in enumerate(vals)
    ]
    gain, err = gain_over_none(reg, aggregate(recs))[("graphmvp", "esol")]
    assert gain == pytest.approx(0.2) and err == pytest.approx(2**0.5 * 0.1)
    clf = get_protocol("classification")
    recs = [dict(r, dataset="bbbp", test=r["test"] / 2) for r in recs]  # graphmvp now lower
    gain, _ = gain_over_none(clf, aggregate(recs))[("graphmvp", "bbbp")]
    assert gain == pytest.approx(-10.0)  # ROC-AUC in points of %: lower AUC is a loss


def test_no_gain_for_a_cell_fine_tuned_for_other_epochs_than_none() -> None:
    clf = get_protocol("classification")
    recs = [
        {"method": m, "dataset": d, "seed": 0, "test": v, "epochs": ep, "wall_time_s": 1}
        for m, d, v, ep in (
            ("none", "tox21", 0.75, 100),
            ("graphmvp", "tox21", 0.70, 30),  # the ablation's shorter fine-tuning
            ("none", "bbbp", 0.65, 100),
            ("graphmvp", "bbbp", 0.68, 100),
        )
    ]
    gains = gain_over_none(clf, aggregate(recs))
    assert ("graphmvp", "tox21") not in gains
    assert gains[("graphmvp", "bbbp")][0] == pytest.approx(3.0)


def test_overview_has_every_table_paper_rows_and_budget_captions(results: Path) -> None:
    text = write_overview(results).read_text()
    assert "SGNN-EBM, Liu et al., AISTATS 2022 for the multi-task one" in " ".join(text.split())
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == [
        "## Classification: test ROC-AUC (%), scaffold split",
        "## Regression: test RMSE, scaffold split",
        "## Drug–target affinity: test MSE, DeepDTA setting-1 folds",
    ]
    reg = text[text.index("## Regression") : text.index("## Drug")]
    assert "| **none** (ours) | 1.300 ± 0.100 (n=2) |" in reg
    assert "| **graphmvp-c** (ours) | 1.100 ± 0.100 (n=2) |" in reg
    assert "| none (paper) | 1.178 | 0.744 | 1.127 | 1.254 | – |" in reg
    assert "| graphmvp-c (paper) | 1.029 | 0.681 | 1.097 | 1.244 | – |" in reg
    # caption: fine-tuning epochs and wall time, pre-training molecules, epochs and wall time
    assert (
        "- **graphmvp-c**: pre-training: graphmvp-c on 50,000 molecules × 5 conformers, "
        "10 of 100 epochs, 1.3 h (`pre/graphmvp-c`); fine-tuning: 100 epochs, featuriser "
        "hu2019, 20.0 min wall time over 2 runs." in reg
    )
    assert "- **none**: pre-training: no pre-training; fine-tuning: 100 epochs" in reg
    assert "budget not recorded (runs written before records kept it; init pre/attrmask)" in reg
    assert "Hardware: x86_64 1 torch threads, no GPU. Commits: abcdef0123." in reg
    # secondary metrics: MAE and R² of the same runs; records without them show a dash
    assert "Test MAE (ours" in reg and "| **none** (ours) | 0.650 ± 0.050 (n=2) |" in reg
    assert "Test R² (ours" in reg and "| **graphmvp-c** (ours) | 0.700 ± 0.000 (n=2) |" in reg
    assert "| **attrmask** (ours) | – |" in reg
    # gain over none, RMSE: none − method, so graphmvp-c gains and attrmask loses
    assert "| **graphmvp-c** (ours) | +0.200 ± 0.141 |" in reg
    assert "| **attrmask** (ours) | -0.200 ± 0.100 |" in reg
    assert "| graphmvp-c (paper) | +0.149 | +0.063 | +0.030 | +0.010 | – |" in reg
    assert "![regression: gain over no pre-training](plots/regression_gain.png)" in reg
    dta = text[text.index("## Drug") :]
    assert "| **none** (ours) | 0.305 ± 0.005 [10 ep] [2000 train pairs] (n=2) | – |" in dta
    assert "| none (paper) | 0.286 | 0.206 | 0.2460 |" in dta
    assert "Test concordance index (ours" in dta and "0.855 ± 0.005 (n=2)" in dta
    assert "training pairs: davis 2,000 (subsample)" in dta
    assert "fine-tuning: 10 epochs" in dta
    clf = text[: text.index("## Regression")]
    assert "No pre-trained runs yet" in clf and "classification_gain.png" not in clf
    plots = sorted(p.name for p in (results / "plots").iterdir())
    assert plots == [
        "classification_bars.png",
        "dta_bars.png",
        "regression_bars.png",
        "regression_gain.png",
        "regression_vs_pretrain_time.png",  # a pre-trained row with its budget recorded
    ]
    assert "(plots/regression_vs_pretrain_time.png)" in text
    for name in ("classification", "regression", "dta"):  # per-protocol pages, same call
        assert (results / name / "README.md").is_file()


def test_per_protocol_dta_page_shows_pairs_and_speed(results: Path) -> None:
    text = write_report(get_protocol("dta"), results).read_text()
    assert "| none | davis | 0,1 | 10 | 30056 (2000) | 150 | 20.0 min |" in text
    assert "| none (paper) | 0.286 | 0.206 |" in text


def test_report_twice_and_elsewhere_gives_identical_bytes(results: Path, tmp_path: Path) -> None:
    write_overview(results)
    files = sorted(p for p in results.rglob("*") if p.suffix in (".md", ".png"))
    first = {p.relative_to(results): p.read_bytes() for p in files}
    assert len([p for p in first if p.suffix == ".png"]) == 5
    write_overview(results)
    assert {p.relative_to(results): p.read_bytes() for p in files} == first
    # a copy of the JSON files in another directory renders the same bytes
    other = tmp_path / "elsewhere"
    shutil.copytree(results, other, ignore=shutil.ignore_patterns("*.md", "*.png"))
    write_overview(other)
    assert {p: (other / p).read_bytes() for p in first} == first
    png = first[Path("plots/regression_bars.png")]
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"matplotlib" not in png


def test_method_colours_are_fixed_and_distinct() -> None:
    known = [method_colour(m) for m in METHOD_COLOURS]
    assert len(set(known)) == len(known)
    assert method_colour("graphmvp-c") == METHOD_COLOURS["graphmvp-c"]
    assert method_colour("my-new-method") == method_colour("my-new-method")


def test_empty_results_root_says_so(tmp_path: Path) -> None:
    text = write_overview(tmp_path).read_text()
    assert "No stored runs yet." in text and "## " not in text


def test_the_ablation_table_reaches_both_pages_once_its_rows_exist(results: Path) -> None:
    write_overview(results)
    assert "GraphMVP loss ablation" not in (results / "README.md").read_text()
    for seed, (ref, var) in enumerate([(0.70, 0.66), (0.72, 0.70)]):
        _write(results, "classification", "graphmvp", "bbbp", seed, test=ref)
        _write(results, "classification", "graphmvp-no-vrr", "bbbp", seed, test=var)
    write_overview(results)
    for page in (results / "README.md", results / "classification" / "README.md"):
        text = page.read_text()
        assert "GraphMVP loss ablation" in text and "gap -3.0 ± 1.0" in text, page


def test_gain_compares_with_no_pretraining_on_the_same_featuriser() -> None:
    clf = get_protocol("classification")

    def rec(method: str, test: float, feat: str, epochs: int | None = 100) -> dict:
        return {"method": method, "dataset": "clintox", "seed": 0, "test": test,
                "epochs": epochs, "wall_time_s": 1, "featurizer": feat}  # fmt: skip

    recs = [
        rec("none", 0.55, "hu2019"),
        rec("none+ogb", 0.84, "ogb"),
        rec("graphmvp-c", 0.67, "hu2019"),
        rec("graphmvp-c-ogb", 0.82, "ogb"),
        rec("rf", 0.86, "morgan-counts+rdkit-2d", epochs=None),
    ]
    gains = gain_over_none(clf, aggregate(recs))
    # OGB pre-training against OGB from scratch (-2), not against hu2019 from scratch (+27)
    assert gains[("graphmvp-c-ogb", "clintox")][0] == pytest.approx(-2.0)
    assert gains[("graphmvp-c", "clintox")][0] == pytest.approx(12.0)
    assert set(gains) == {("graphmvp-c-ogb", "clintox"), ("graphmvp-c", "clintox")}
    # without an OGB from-scratch row there is nothing fair to compare with: no gain
    gains = gain_over_none(clf, aggregate([r for r in recs if r["method"] != "none+ogb"]))
    assert ("graphmvp-c-ogb", "clintox") not in gains
