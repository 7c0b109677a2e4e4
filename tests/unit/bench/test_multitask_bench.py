"""The multitask benchmark (SGNN-EBM table): resumable grid, budgets, init variants, report.

Runs on a 71-molecule, 4-task CSV with a 1-layer GIN of width 16 and a tiny SGNN head, so
each cell trains in a second or two.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

import fewmol.bench.multitask as mt
from fewmol.bench.report import write_overview
from fewmol.errors import InvalidInputError, ModelFileError
from fewmol.io.modeldir import build_encoder, encoder_hparams, save_encoder
from fewmol.multitask.model import METHODS

pytestmark = pytest.mark.filterwarnings("ignore:.*treespec.*")

TINY = Path(__file__).resolve().parents[2] / "data" / "tiny.csv"
TINY_MODEL = {
    "num_layers": 1,
    "dim": 16,
    "dropout": 0.0,
    "task_dim": 4,
    "state_dim": 4,
    "sgnn_hidden": 8,
    "sgnn_layers": 1,
    "gcn_layers": 1,
    "nce_samples": 1,
    "gibbs_sweeps": 2,
    "gibbs_chains": 1,
}
GRID_METHODS = ["mtl", "sgnn", "sgnn-ebm-fixed", "sgnn-ebm"]


@pytest.fixture(scope="module")
def tiny_model():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mt, "MODEL", TINY_MODEL)
        yield


@pytest.fixture(scope="module")
def csv(tmp_path_factory) -> Path:
    """tiny.csv's 71 distinct valid molecules with 4 binary tasks, ~30 % of labels missing."""
    src = pd.read_csv(TINY, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    rows, seen = [], set()
    for s in src["Canonical SMILES"]:
        m = Chem.MolFromSmiles(s) if s else None
        if m is None or Chem.MolToSmiles(m) in seen:
            continue
        seen.add(Chem.MolToSmiles(m))
        sym = [a.GetSymbol() for a in m.GetAtoms()]
        arom = int(any(a.GetIsAromatic() for a in m.GetAtoms()))
        has_n = int("N" in sym)
        rows.append([s, has_n, int("O" in sym), int(sym.count("O") > 1), arom])
    df = pd.DataFrame(rows, columns=["smiles", "n", "o", "many_o", "arom"]).astype(str)
    for c in df.columns[1:]:
        df.loc[rng.random(len(df)) < 0.3, c] = ""
    path = tmp_path_factory.mktemp("mtdata") / "assays.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def protocol(csv) -> mt.MultitaskProtocol:
    """The real protocol's paper rows and methods on the tiny CSV named 'chembl-10' (+ 'toy')."""
    return dataclasses.replace(
        mt.MULTITASK,
        datasets=("chembl-10", "toy"),
        sources={"chembl-10": str(csv), "toy": str(csv)},
        seeds=(0, 1),
    )


@pytest.fixture(scope="module")
def grid(tmp_path_factory, protocol, tiny_model) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("mtbench")
    results, work, logs = root / "results", root / "work", []
    mt.run_multitask_grid(
        GRID_METHODS, [0], ["chembl-10"], results, work, epochs=1, accelerator="cpu",
        log=logs.append, protocol=protocol,
    )  # fmt: skip
    return results, work, logs


def test_protocol_covers_every_method_and_the_paper_table() -> None:
    assert {m for m, _ in mt.RUN_METHOD.values()} == set(METHODS)
    assert mt.RUN_METHOD["sgnn-ebm-fixed"] == ("sgnn-ebm", "fixed")
    assert mt.RUN_METHOD["sgnn-ebm"] == ("sgnn-ebm", "adaptive")
    assert set(mt.PAPER) == set(mt.BENCH_METHODS)
    assert mt.PAPER["sgnn-ebm"]["ChEMBL-100"] == (81.13, 2.04)
    assert mt.PAPER["stl"]["ChEMBL-10"] == (71.67, 0.64)
    assert mt.MULTITASK.seeds == (0, 1, 2, 3, 4) and mt.MULTITASK.epochs == 100
    assert set(mt.PAPER_COLUMNS) <= set(mt.MULTITASK.datasets)


def test_grid_writes_one_json_per_cell(grid, csv) -> None:
    results, work, logs = grid
    files = sorted(p.relative_to(results).as_posix() for p in results.rglob("*.json"))
    assert files == sorted(f"multitask/{m}/chembl-10/seed0.json" for m in GRID_METHODS)
    for method in GRID_METHODS:
        rec = json.loads((results / "multitask" / method / "chembl-10" / "seed0.json").read_text())
        assert (rec["method"], rec["dataset"], rec["seed"], rec["epochs"]) == (
            method,
            "chembl-10",
            0,
            1,
        )
        assert 0.0 <= rec["test"] <= 1.0 and 0.0 <= rec["test_at_last_epoch"] <= 1.0
        assert rec["n_molecules"] == 71 and rec["n_tasks"] == 4
        assert 0.6 < rec["label_density"] < 0.8 and rec["task_graph_edges"] > 0
        sizes = rec["split_sizes"]
        assert sizes == {"train": 57, "valid": 7, "test": 7}  # random 8-1-1
        assert rec["model"]["dim"] == 16 and rec["init"] is None and rec["pretraining"] is None
        for key in ("hardware", "command", "finished_utc", "git_dirty", "wall_time_s"):
            assert key in rec, key
        run_dir = work / "multitask" / method / "chembl-10" / "seed0"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["test_at_best_valid"]["roc_auc"] == pytest.approx(rec["test"])
        config = json.loads((run_dir / "config.json").read_text())
        assert config["method"] == rec["multitask_method"]
        if method.startswith("sgnn-ebm"):
            assert config["energy"]["noise"] == rec["noise"]
    fixed = json.loads((work / "multitask/sgnn-ebm-fixed/chembl-10/seed0/config.json").read_text())
    assert fixed["energy"]["noise"] == "fixed"
    # its fixed noise is the finished sgnn cell of the same seed, as the paper's pre-trained SGNN
    sgnn_dir = work / "multitask/sgnn/chembl-10/seed0"
    assert fixed["energy"]["noise_model"]["path"] == str(sgnn_dir.resolve())
    assert fixed["energy"]["noise_model"]["method"] == "sgnn"
    rec = json.loads((results / "multitask/sgnn-ebm-fixed/chembl-10/seed0.json").read_text())
    assert rec["noise_model_dir"] == str(sgnn_dir) and rec["energy"]["noise_model"] == "sgnn"
    caption = mt.caption(mt.MULTITASK, mt.load_records(results, "multitask"))
    assert "noise the sgnn cell of the same seed (1 run)" in caption
    assert "chembl-10 / sgnn-ebm / seed 0: 1 epochs on 71 mols x 4 tasks" in logs


def test_second_call_skips_finished_cells(grid, protocol, monkeypatch) -> None:
    results, work, _ = grid
    before = {p: p.stat().st_mtime_ns for p in results.rglob("seed*.json")}

    def no_training(*a, **k):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(mt, "train_multitask", no_training)
    monkeypatch.setattr(mt, "_DatasetState", no_training)  # nor is its data loaded
    logs: list[str] = []
    recs = mt.run_multitask_grid(
        GRID_METHODS, [0], ["chembl-10"], results, work, epochs=1, log=logs.append,
        protocol=protocol,
    )  # fmt: skip
    assert logs == ["chembl-10: all 4 runs done"]
    assert sorted(r["method"] for r in recs) == sorted(GRID_METHODS)
    assert {p: p.stat().st_mtime_ns for p in results.rglob("seed*.json")} == before


def test_fixed_noise_cell_waits_for_its_sgnn_cell(tmp_path, protocol, tiny_model) -> None:
    logs: list[str] = []

    def run(methods: list[str]) -> None:
        mt.run_multitask_grid(
            methods, [1], ["toy"], tmp_path / "r", tmp_path / "w", epochs=1,
            accelerator="cpu", log=logs.append, protocol=protocol,
        )  # fmt: skip

    run(["sgnn-ebm-fixed"])
    assert not (tmp_path / "r/multitask/sgnn-ebm-fixed/toy/seed1.json").exists()
    assert any("its noise is the sgnn cell of this seed" in m for m in logs)
    run(["sgnn", "sgnn-ebm-fixed"])
    rec = json.loads((tmp_path / "r/multitask/sgnn-ebm-fixed/toy/seed1.json").read_text())
    assert rec["noise_model_dir"] == str(tmp_path / "w/multitask/sgnn/toy/seed1")


def test_fixed_noise_cell_waits_while_another_worker_trains_its_sgnn_cell(
    tmp_path, protocol, tiny_model, monkeypatch
) -> None:
    import subprocess
    import sys

    results, work, logs = tmp_path / "r", tmp_path / "w", []
    sgnn_dir = work / "multitask/sgnn/toy/seed1"
    sgnn_dir.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (sgnn_dir / ".lock").write_text(str(other.pid))  # "another worker" trains the sgnn cell
    pauses = []

    def pause(seconds: float) -> None:
        # while this worker waits, the other one finishes the sgnn cell and lets go of it
        pauses.append(seconds)
        if len(pauses) == 2:
            other.kill()
            other.wait()
            (sgnn_dir / ".lock").unlink()
            mt.run_multitask_grid(
                ["sgnn"], [1], ["toy"], results, work, epochs=1, accelerator="cpu",
                log=lambda s: None, protocol=protocol,
            )  # fmt: skip

    monkeypatch.setattr(mt, "_pause", pause)
    try:
        mt.run_multitask_grid(
            ["sgnn-ebm-fixed"], [1], ["toy"], results, work, epochs=1, accelerator="cpu",
            log=logs.append, protocol=protocol,
        )  # fmt: skip
    finally:
        other.kill()
    assert len(pauses) == 2 and pauses[0] == mt.NOISE_WAIT_S
    assert sum("waits for the sgnn cell of this seed" in m for m in logs) == 1
    rec = json.loads((results / "multitask/sgnn-ebm-fixed/toy/seed1.json").read_text())
    assert rec["noise_model_dir"] == str(sgnn_dir)


def test_another_epochs_budget_reruns_from_scratch(tmp_path, protocol, tiny_model) -> None:
    def run(epochs: int) -> dict:
        mt.run_multitask_grid(
            ["mtl"], [1], ["toy"], tmp_path / "r", tmp_path / "w", epochs=epochs,
            accelerator="cpu", log=lambda s: None, protocol=protocol,
        )  # fmt: skip
        return json.loads((tmp_path / "r/multitask/mtl/toy/seed1.json").read_text())

    assert run(1)["epochs_done"] == 1
    longer = run(2)
    assert longer["epochs"] == 2 and longer["epochs_done"] == 2
    # back to 1 epoch: a 2-epoch work dir must not be passed off as a 1-epoch run
    shorter = run(1)
    assert shorter["epochs"] == 1 and shorter["epochs_done"] == 1
    log = pd.read_csv(tmp_path / "w/multitask/mtl/toy/seed1/train_log.csv")
    assert log["epoch"].tolist() == [1]


def test_ebm_cells_of_another_lambda_rerun_and_others_do_not(tmp_path, protocol) -> None:
    def run(lam: float) -> dict[str, dict]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(mt, "MODEL", {**TINY_MODEL, "lam": lam})
            mt.run_multitask_grid(
                ["mtl", "sgnn-ebm"], [1], ["toy"], tmp_path / "r", tmp_path / "w", epochs=1,
                accelerator="cpu", log=lambda s: None, protocol=protocol,
            )  # fmt: skip
        return {
            m: json.loads((tmp_path / f"r/multitask/{m}/toy/seed1.json").read_text())
            for m in ("mtl", "sgnn-ebm")
        }

    first = run(1.0)
    assert first["sgnn-ebm"]["energy"]["lambda"] == 1.0 and first["mtl"]["energy"] is None
    cfg = json.loads((tmp_path / "w/multitask/sgnn-ebm/toy/seed1/config.json").read_text())
    assert cfg["energy"]["lambda"] == 1.0
    second = run(0.1)
    assert second["sgnn-ebm"]["energy"]["lambda"] == 0.1
    assert second["sgnn-ebm"]["finished_utc"] >= first["sgnn-ebm"]["finished_utc"]
    assert second["mtl"] == first["mtl"]  # λ is no setting of MTL: its cell is kept
    cfg = json.loads((tmp_path / "w/multitask/sgnn-ebm/toy/seed1/config.json").read_text())
    assert cfg["energy"]["lambda"] == 0.1
    # a record from before the energy block (λ 1 then) is not taken for a λ 0.1 run
    rec_path = tmp_path / "r/multitask/sgnn-ebm/toy/seed1.json"
    old = {k: v for k, v in second["sgnn-ebm"].items() if k != "energy"}
    rec_path.write_text(json.dumps(old))
    assert "energy" in run(0.1)["sgnn-ebm"]
    caption = mt.caption(protocol, mt.load_records(tmp_path / "r", "multitask"))
    assert "λ 0.1" in caption


def test_bf16_cells_rerun_float32_ones_and_are_marked(tmp_path, protocol, tiny_model) -> None:
    def run(precision: str) -> dict:
        mt.run_multitask_grid(
            ["mtl"], [1], ["toy"], tmp_path / "r", tmp_path / "w", epochs=1,
            accelerator="cpu", log=lambda s: None, protocol=protocol, precision=precision,
        )  # fmt: skip
        return json.loads((tmp_path / "r/multitask/mtl/toy/seed1.json").read_text())

    first = run("32-true")
    assert first["precision"] == "32-true"
    bf16 = run("bf16-mixed")  # another budget: trained again, not skipped
    assert bf16["precision"] == "bf16-mixed" and bf16["finished_utc"] >= first["finished_utc"]
    assert bf16["test"] is not None
    table = mt.results_table(protocol, mt.load_records(tmp_path / "r", "multitask"))
    assert "[bf16-mixed]" in table


def test_init_runs_go_to_their_own_method_dir(tmp_path, grid, protocol, tiny_model) -> None:
    results, work, _ = grid
    enc = build_encoder(encoder_hparams("hu2019", num_layers=1, dim=16))
    save_encoder(tmp_path / "enc", enc, "hu2019", method="graphmvp-c", epochs=3, epochs_done=3,
                 data={"n_molecules": 50}, wall_time_s=12.0)  # fmt: skip
    plain = (results / "multitask/mtl/chembl-10/seed0.json").read_bytes()
    mt.run_multitask_grid(
        ["mtl"], [0], ["chembl-10"], results, work, epochs=1, init=str(tmp_path / "enc"),
        accelerator="cpu", log=lambda s: None, protocol=protocol,
    )  # fmt: skip
    rec = json.loads((results / "multitask/mtl@graphmvp-c/chembl-10/seed0.json").read_text())
    assert rec["method"] == "mtl@graphmvp-c" and rec["base_method"] == "mtl"
    assert rec["init"] == str(tmp_path / "enc")
    assert rec["pretraining"]["method"] == "graphmvp-c" and rec["pretraining"]["molecules"] == 50
    assert (results / "multitask/mtl/chembl-10/seed0.json").read_bytes() == plain
    page = mt.write_multitask_report(results, protocol).read_text()
    assert "| **mtl@graphmvp-c** (ours) |" in page
    assert "graphmvp-c on 50 molecules, 3 epochs" in page and "(its GIN: 1 × 16)" in page
    # the variant sits right after its base method
    assert page.index("| **mtl** (ours)") < page.index("| **mtl@graphmvp-c** (ours)")
    assert page.index("| **mtl@graphmvp-c** (ours)") < page.index("| uw (paper)")
    (results / "multitask/mtl@graphmvp-c").rename(tmp_path / "moved")  # keep the grid as it was


def test_report_has_the_paper_rows_and_partial_seeds(grid, protocol) -> None:
    results, _, _ = grid
    page = mt.write_multitask_report(results, protocol).read_text()
    assert page.startswith("# multitask: test ROC-AUC (%), random 8-1-1 split")
    assert "| method | chembl-10 (paper: ChEMBL-10) | toy |" in page
    rec = json.loads((results / "multitask/sgnn-ebm/chembl-10/seed0.json").read_text())
    ours = f"| **sgnn-ebm** (ours) | {100 * rec['test']:.2f} ± 0.00 [1 ep] (n=1) | – |"
    assert ours in page
    # the paper's rows, labelled as the paper's, only under the ChEMBL column they belong to
    assert "| sgnn-ebm (paper) | 78.10 ± 0.71 | – |" in page
    assert "| sgnn-ebm-fixed (paper) | 78.04 ± 0.73 | – |" in page
    assert "| stl (paper) | 71.67 ± 0.64 | – |" in page and "| **stl** (ours)" not in page
    assert "Rows marked *(paper)* are the published numbers" in page
    assert "not the paper's data" in page and "STRING" in page
    assert "Split random 8-1-1 over molecules" in page
    assert "the paper's budget is 100 epochs" in page
    fixed = "- **sgnn-ebm-fixed** (SGNN-EBM, noise p_n = SGNN (fixed)): 1 epoch, from scratch"
    assert fixed in page
    assert f"| chembl-10 | {71} | 4 |" in page  # the data table
    assert (results / "plots" / "multitask_bars.png").stat().st_size > 1000


def test_report_and_overview_are_byte_identical_when_regenerated(grid, protocol) -> None:
    results, _, _ = grid
    files = [
        results / "README.md",
        results / "multitask" / "README.md",
        results / "plots" / "multitask_bars.png",
    ]
    write_overview(results)
    first = [p.read_bytes() for p in files]
    write_overview(results)
    assert [p.read_bytes() for p in files] == first
    overview = first[0].decode()
    assert "## Multi-task: SGNN-EBM table" in overview
    assert "![multitask: per-dataset scores](plots/multitask_bars.png)" in overview


def test_bad_names_are_clear_user_errors(tmp_path, protocol) -> None:
    def grid(**kw):
        args = {"results": tmp_path / "r", "work": tmp_path / "w", "protocol": protocol}
        mt.run_multitask_grid(**(args | kw))

    with pytest.raises(InvalidInputError, match=r"unknown multitask method\(s\) 'sgnn-ebn'; "):
        grid(methods=["mtl", "sgnn-ebn"])
    with pytest.raises(InvalidInputError, match="choose from: stl, mtl, uw, gradnorm"):
        grid(methods=["gradnorm2"])
    with pytest.raises(InvalidInputError, match="pass the encoder with --init"):
        grid(methods=["sgnn-ebm@graphmvp-c"])
    with pytest.raises(InvalidInputError, match="'chembl-50' not in the multitask protocol"):
        grid(datasets=["chembl-50"])
    with pytest.raises(InvalidInputError, match="--epochs must be >= 1"):
        grid(epochs=0)
    with pytest.raises(ModelFileError, match="--init .*missing.* is neither a directory"):
        grid(init=str(tmp_path / "missing"))
    assert not (tmp_path / "r").exists() and not (tmp_path / "w").exists()


def test_featuriser_rows_train_from_scratch_on_it_beside_the_plain_rows(
    tmp_path, protocol, tiny_model
) -> None:
    results, work = tmp_path / "r", tmp_path / "w"
    kw = {"accelerator": "cpu", "log": lambda s: None, "protocol": protocol, "epochs": 1}
    mt.run_multitask_grid(["sgnn", "sgnn-ebm-fixed"], [0], ["toy"], results, work,
                          featurizer="ogb", **kw)  # fmt: skip
    rec = json.loads((results / "multitask/sgnn-ebm-fixed+ogb/toy/seed0.json").read_text())
    assert rec["featurizer"] == "ogb" and rec["base_method"] == "sgnn-ebm-fixed"
    assert rec["init"] is None
    # its fixed noise is the SGNN trained on the same features, not the hu2019 one
    assert rec["noise_model_dir"] == str(work / "multitask/sgnn+ogb/toy/seed0")
    assert not (results / "multitask/sgnn").exists()
    # the table's own featuriser keeps the plain names
    mt.run_multitask_grid(["mtl"], [0], ["toy"], results, work, featurizer="hu2019", **kw)
    assert json.loads((results / "multitask/mtl/toy/seed0.json").read_text())["featurizer"] == (
        "hu2019"
    )
    page = mt.write_multitask_report(results, protocol).read_text()
    assert "| **sgnn+ogb** (ours) |" in page and "`METHOD+FEATURISER` rows" in page
    assert page.index("| **mtl** (ours)") < page.index("| **sgnn+ogb** (ours)")

    enc = build_encoder(encoder_hparams("hu2019", num_layers=1, dim=16))
    save_encoder(tmp_path / "enc", enc, "hu2019", method="graphmvp-c")
    with pytest.raises(InvalidInputError, match="reads hu2019 features; leave --featurizer out"):
        mt.run_multitask_grid(["mtl"], [0], ["toy"], results, work, init=str(tmp_path / "enc"),
                              featurizer="ogb", **kw)  # fmt: skip
    # an encoder on OGB features gets its own rows beside the hu2019 encoder's of that method
    enc = build_encoder(encoder_hparams("ogb", num_layers=1, dim=16))
    save_encoder(tmp_path / "enc-ogb", enc, "ogb", method="graphmvp-c")
    mt.run_multitask_grid(["mtl"], [0], ["toy"], results, work, init=str(tmp_path / "enc-ogb"),
                          featurizer="ogb", **kw)  # fmt: skip
    rec = json.loads((results / "multitask/mtl@graphmvp-c+ogb/toy/seed0.json").read_text())
    assert rec["featurizer"] == "ogb" and rec["base_method"] == "mtl"
    with pytest.raises(InvalidInputError, match="--featurizer 'ecfp': choose from"):
        mt.run_multitask_grid(["mtl"], [0], ["toy"], results, work, featurizer="ecfp", **kw)
    with pytest.raises(InvalidInputError, match="pass the featuriser with --featurizer"):
        mt.run_multitask_grid(["mtl+ogb"], [0], ["toy"], results, work, **kw)


def test_the_tilted_row_is_asked_for_by_name_and_records_its_energy() -> None:
    assert "sgnn-ebm-tilt" not in mt.MULTITASK.methods  # not in the paper's default grid
    assert mt.check_methods(["sgnn-ebm-tilt", "mtl"]) == ["sgnn-ebm-tilt", "mtl"]
    assert mt.RUN_METHOD["sgnn-ebm-tilt"] == ("sgnn-ebm", "adaptive")
    assert mt.energy_settings("sgnn-ebm-tilt")["tilt"] is True
    assert "tilt" not in mt.energy_settings("sgnn-ebm")  # the existing records keep their key
    assert mt.order_methods({"sgnn-ebm-tilt", "sgnn-ebm", "mtl"}) == [
        "mtl",
        "sgnn-ebm",
        "sgnn-ebm-tilt",
    ]


def test_the_bilinear_rows_run_their_method_with_the_bilinear_head() -> None:
    assert mt.check_methods(["sgnn-bilinear", "sgnn-ebm-bilinear"])
    assert mt.RUN_METHOD["sgnn-bilinear"] == ("sgnn", None)
    assert mt.RUN_SETTINGS["sgnn-ebm-bilinear"] == {"bilinear": True}
    assert mt.energy_settings("sgnn-bilinear") is None  # no energy: an SGNN
    assert "bilinear" not in mt.energy_settings("sgnn-ebm-bilinear")  # a head setting
    assert not set(mt.EXTRA_METHODS) & set(mt.MULTITASK.methods)


def test_the_released_nce_rows_train_with_gibbs_noise(tmp_path, protocol, tiny_model) -> None:
    """sgnn-ebm-gs: Gibbs noise and filled labels; sgnn-ebm-gibbs: the noise alone."""
    results, work = tmp_path / "r", tmp_path / "w"
    kw = {"accelerator": "cpu", "log": lambda s: None, "protocol": protocol, "epochs": 1}
    mt.run_multitask_grid(["sgnn-ebm-gs", "sgnn-ebm-gibbs"], [0], ["toy"], results, work, **kw)
    for method, fill in (("sgnn-ebm-gs", True), ("sgnn-ebm-gibbs", False)):
        rec = json.loads((results / f"multitask/{method}/toy/seed0.json").read_text())
        assert rec["energy"]["noise_sweeps"] == 2
        assert rec["energy"].get("fill_missing", False) is fill
        cfg = json.loads((work / f"multitask/{method}/toy/seed0/config.json").read_text())
        assert cfg["energy"]["noise"] == "gibbs"
        assert cfg["energy"].get("fill_missing", False) is fill
    assert "fill_missing" not in mt.energy_settings("sgnn-ebm")  # old records keep their keys
    assert mt.order_methods({"sgnn-ebm-gs", "sgnn-ebm-gibbs", "sgnn-ebm"}) == [
        "sgnn-ebm",
        "sgnn-ebm-gibbs",
        "sgnn-ebm-gs",
    ]


def test_stl_in_parts_shares_a_cell_between_workers_and_merges_to_one_run(
    tmp_path, protocol, tiny_model, monkeypatch
) -> None:
    import subprocess
    import sys

    def grid(root: Path, parts: int, logs: list[str]) -> dict:
        mt.run_multitask_grid(
            ["stl"], [1], ["toy"], root / "r", root / "w", epochs=1, accelerator="cpu",
            log=logs.append, protocol=protocol, stl_parts=parts,
        )  # fmt: skip
        path = root / "r/multitask/stl/toy/seed1.json"
        return json.loads(path.read_text()) if path.exists() else {}

    one = grid(tmp_path / "one", 1, [])
    # "another worker" takes part 2 of 2 once the cell dir is set up: this worker trains
    # part 1 and leaves the merge to it
    root, logs = tmp_path / "two", []
    part2 = root / "w/multitask/stl/toy/seed1/parts/part1of2"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    clear = mt._clear_other_budget

    def clear_then_other_worker(run_dir: Path, key: dict) -> None:
        clear(run_dir, key)
        part2.mkdir(parents=True, exist_ok=True)
        (part2 / ".lock").write_text(str(other.pid))

    monkeypatch.setattr(mt, "_clear_other_budget", clear_then_other_worker)
    try:
        assert grid(root, 2, logs) == {}
    finally:
        other.kill()
        other.wait()
    monkeypatch.setattr(mt, "_clear_other_budget", clear)
    assert any("part 2/2: another worker has it; skipped" in m for m in logs), logs
    assert any("the last to finish merges" in m for m in logs)
    (part2 / ".lock").unlink()
    logs.clear()
    two = grid(root, 2, logs)  # the other worker's turn: it trains part 2, then merges
    assert any("(part 2/2: tasks t with t % 2 == 1)" in m for m in logs), logs
    assert any("merging its 2 parts" in m for m in logs)
    assert not any("(part 1/2" in m for m in logs)  # part 1 was not trained again
    assert two["stl_parts"] == 2 and one["stl_parts"] is None
    for key in ("test", "test_at_last_epoch", "valid", "test_metrics"):
        assert two[key] == pytest.approx(one[key]), key
    preds = [
        pd.read_csv(d / "w/multitask/stl/toy/seed1/predictions.csv")
        for d in (tmp_path / "one", root)
    ]
    pd.testing.assert_frame_equal(*preds)


def test_stl_in_parts_leaves_a_cell_another_worker_holds_after_a_few_looks(
    tmp_path, protocol, tiny_model, monkeypatch
) -> None:
    import subprocess
    import sys

    run_dir = tmp_path / "w/multitask/stl/toy/seed1"
    run_dir.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pauses, logs = [], []
    monkeypatch.setattr(mt, "_pause", pauses.append)
    try:
        (run_dir / ".lock").write_text(str(other.pid))  # "another worker" is merging it
        mt.run_multitask_grid(
            ["stl"], [1], ["toy"], tmp_path / "r", tmp_path / "w", epochs=1, accelerator="cpu",
            log=logs.append, protocol=protocol, stl_parts=2,
        )  # fmt: skip
    finally:
        other.kill()
        other.wait()
    assert pauses == [1.0] * (mt.SETUP_TRIES - 1)
    assert logs[-1] == "toy / stl / seed 1: another worker is merging its parts; skipped"
    assert not (run_dir / "parts").exists()  # nothing trained meanwhile


def test_standing_table_pairs_seeds_of_equal_epochs(protocol) -> None:
    def rec(method: str, seed: int, test: float, epochs: int = 100) -> dict:
        return {"method": method, "dataset": "toy", "seed": seed, "test": test, "epochs": epochs}

    records = [
        rec("mtl", 0, 0.70), rec("mtl", 1, 0.60), rec("mtl", 2, 0.65),
        rec("sgnn-ebm", 0, 0.72), rec("sgnn-ebm", 1, 0.66),  # seed 2 unfinished
        rec("sgnn-ebm", 2, 0.90, epochs=10),  # (never paired: other epochs)
        rec("sgnn", 0, 0.71),
    ]  # fmt: skip
    table = mt.standing_table(protocol, records)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert "+4.0 ± 2.0 (n=2)" in rows["sgnn-ebm − mtl"]  # gaps +2 and +6
    assert "+1.0 ± 0.0 (n=1)" in rows["sgnn-ebm − sgnn"]
    assert "+1.0 ± 0.0 (n=1)" in rows["sgnn − mtl"]
    assert "sgnn-ebm-fixed − mtl" not in rows  # no sgnn-ebm-fixed cell: no line
    assert mt.standing_table(protocol, [rec("mtl", 0, 0.7)]) == ""
