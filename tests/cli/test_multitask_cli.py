"""`fewmol multitask` and `fewmol predict` on multi-task model dirs, through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

import fewmol.multitask.run as run_mod
from cli_helpers import cli_ok, cli_user_error, runner
from fewmol.cli import app
from fewmol.multitask.model import METHODS
from fewmol.multitask.predict import is_multitask_dir

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.csv"
TASKS = ["has_N", "has_N_copy", "many_O", "aromatic"]
SMALL = ["--num-layers", "2", "--hidden", "32", "--batch-size", "16", "-q"]
SMALL += ["--accelerator", "cpu", "--task-dim", "8", "--state-dim", "8", "--sgnn-hidden", "16"]
SMALL += ["--gibbs-sweeps", "8", "--gibbs-chains", "2", "--dropout", "0"]
TWO_EPOCHS = ["--epochs", "2", *SMALL]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("multitask")


@pytest.fixture(scope="module")
def data(tmp) -> Path:
    """tiny.csv's molecules with 4 binary tasks (one a copy of another), ~30 % labels missing."""
    src = pd.read_csv(TINY, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    rows = []
    for s in src["Canonical SMILES"]:
        m = Chem.MolFromSmiles(s) if s else None
        if m is None:  # bad SMILES stay in: they must be reported, not crash anything
            rows.append([s, "", "", "", ""])
            continue
        sym = [a.GetSymbol() for a in m.GetAtoms()]
        has_n = int("N" in sym)
        arom = int(any(a.GetIsAromatic() for a in m.GetAtoms()))
        rows.append([s, has_n, has_n, int(sym.count("O") > 1), arom])
    df = pd.DataFrame(rows, columns=["smiles", *TASKS]).astype(str)
    for c in TASKS:
        df.loc[rng.random(len(df)) < 0.3, c] = ""
    path = tmp / "assays.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def relations(tmp) -> Path:
    path = tmp / "relations.csv"
    path.write_text(
        "task_a,task_b,weight\nhas_N,has_N_copy,1.0\nmany_O,aromatic,0.5\nhas_N,aromatic,0.2\n"
    )
    return path


@pytest.fixture(scope="module")
def trained(tmp, data, relations) -> dict[str, Path]:
    """One 2-epoch model dir per method (shared by the tests below)."""
    out = {}
    for method in METHODS:
        d = tmp / f"run_{method}"
        cli_ok(
            [
                "multitask",
                data,
                "--task-graph",
                relations,
                "--method",
                method,
                "--out",
                d,
                *TWO_EPOCHS,
                # a strong coupling, so conditioning on known labels visibly moves the others
                *(["--lambda", "1"] if method == "sgnn-ebm" else []),
            ]
        )
        out[method] = d
    return out


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_and_writes_a_model_dir(trained, method) -> None:
    d = trained[method]
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["kind"] == "multitask" and cfg["method"] == method
    assert cfg["task_names"] == TASKS
    assert is_multitask_dir(d)
    structured = method in ("sgnn", "sgnn-ebm")
    assert (d / "task_graph.json").exists() == structured
    if structured:
        graph = json.loads((d / "task_graph.json").read_text())
        assert graph["task_names"] == TASKS and len(graph["edges"]) == 3
    if method == "stl":
        assert not (d / "model.safetensors").exists()
        assert sorted(p.name for p in (d / "tasks").iterdir()) == [
            f"task_{t:04d}.safetensors" for t in range(4)
        ]
    else:
        assert (d / "model.safetensors").exists()
    log = pd.read_csv(d / "train_log.csv")
    if method == "stl":
        assert log.groupby("task")["epoch"].apply(list).to_dict() == {t: [1, 2] for t in TASKS}
    else:
        assert log["epoch"].tolist() == [1, 2]
    assert {"valid_roc_auc", "test_roc_auc", "train_loss"} <= set(log.columns)
    if method == "sgnn-ebm":
        assert {"train_nce", "train_bce"} <= set(log.columns)
    if method in ("uw", "gradnorm", "dwa", "lbtw"):
        assert {"weight_min", "weight_max"} <= set(log.columns)
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["epochs_done"] == 2
    for key in ("test_at_best_valid", "test_at_last_epoch"):
        assert 0.0 <= metrics[key]["roc_auc"] <= 1.0
    preds = pd.read_csv(d / "predictions.csv")
    assert len(preds) == 70 and set(preds["split"]) == {"train", "valid", "test"}
    p = preds[[f"{t}_pred" for t in TASKS]].to_numpy()
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()


@pytest.mark.parametrize("method", METHODS)
def test_predict_gives_every_task_for_every_input_row(trained, data, tmp, method) -> None:
    out = tmp / f"pred_{method}.csv"
    cli_ok(["predict", trained[method], data, "--out", out])
    df = pd.read_csv(out)
    inp = pd.read_csv(data, dtype=str, keep_default_na=False)
    assert len(df) == len(inp) and df["row"].tolist() == list(range(len(inp)))
    cols = [c for c in df.columns if c.endswith("_pred")]
    assert cols == [f"{t}_pred" for t in TASKS]
    valid = df["valid"].to_numpy(bool)
    assert (~valid).sum() == 4  # 3 invalid SMILES + 1 empty
    assert df.loc[~valid, cols].isna().all().all()
    p = df.loc[valid, cols].to_numpy()
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    # Same molecules as training: predictions match the run's predictions.csv (Gibbs
    # marginals are Monte Carlo estimates, so only approximately for sgnn-ebm).
    train = pd.read_csv(trained[method] / "predictions.csv")
    got = df.set_index("row").loc[train["row"], cols].to_numpy()
    atol = 0.2 if method == "sgnn-ebm" else 1e-5
    np.testing.assert_allclose(got, train[cols].to_numpy(), atol=atol)
    again = tmp / f"pred_{method}_again.csv"
    cli_ok(["predict", trained[method], data, "--out", again])
    pd.testing.assert_frame_equal(df, pd.read_csv(again))  # fixed Gibbs seed: reproducible


@pytest.mark.parametrize("method", ["mtl", "sgnn-ebm", "stl"])
def test_predict_precision_on_a_multitask_dir(trained, data, tmp, method) -> None:
    """bf16 inference stays close to float32; a bad --precision is refused."""
    base = ["predict", trained[method], data]
    cli_ok([*base, "--out", tmp / f"p32_{method}.csv"])
    cli_ok([*base, "--out", tmp / f"p16_{method}.csv", "--precision", "bf16-mixed"])
    cols = [f"{t}_pred" for t in TASKS]
    p32 = pd.read_csv(tmp / f"p32_{method}.csv")[cols].to_numpy()
    p16 = pd.read_csv(tmp / f"p16_{method}.csv")[cols].to_numpy()
    assert np.array_equal(np.isnan(p32), np.isnan(p16))
    ok = ~np.isnan(p32)
    assert ((p16[ok] >= 0) & (p16[ok] <= 1)).all()
    # independent heads: bf16 rounding only; Gibbs marginals are also Monte Carlo estimates
    atol = 0.2 if method == "sgnn-ebm" else 0.03
    np.testing.assert_allclose(p16[ok], p32[ok], atol=atol)
    bad = runner.invoke(
        app, [str(a) for a in [*base, "--out", tmp / "x.csv", "--precision", "fp8"]]
    )
    cli_user_error(bad, "--precision")


def test_known_labels_condition_sgnn_ebm_and_are_noted_elsewhere(trained, data, tmp) -> None:
    """Measured labels are clamped in SGNN-EBM's Gibbs sampling, exactly as the API does it."""
    from fewmol.data.store import featurize_to_graphset
    from fewmol.data.tables import read_smiles
    from fewmol.multitask.predict import evidence_from_table, load_predictor

    out = tmp / "p_known.csv"
    result = cli_ok(["predict", trained["sgnn-ebm"], data, "--out", out, "--known-labels"])
    assert "conditioning on known labels in 4 task column(s)" in " ".join(result.stderr.split())
    df = pd.read_csv(out)
    inp = pd.read_csv(data, dtype=str, keep_default_na=False)
    valid = df["valid"].to_numpy(bool)
    for t in TASKS:  # a measured label is its own prediction
        known = valid & inp[t].isin(["0", "1"]).to_numpy()
        assert known.sum() > 10
        np.testing.assert_array_equal(df.loc[known, f"{t}_pred"], inp.loc[known, t].astype(float))
    predictor = load_predictor(trained["sgnn-ebm"])
    table = read_smiles(data, None)
    graphs = featurize_to_graphset(table.smiles, predictor.featurizer)
    expected = predictor.predict(graphs, evidence=evidence_from_table(table, TASKS))
    got = df.loc[valid, [f"{t}_pred" for t in TASKS]].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # the unmeasured labels move: SGNN-EBM's pair potentials couple them to the measured ones
    free = np.isnan(evidence_from_table(table, TASKS))
    assert free.sum() > 10
    assert np.abs(expected[free] - predictor.predict(graphs)[free]).max() > 0.01

    plain, noted = tmp / "p_mtl.csv", tmp / "p_mtl_known.csv"
    cli_ok(["predict", trained["mtl"], data, "--out", plain])
    result = cli_ok(["predict", trained["mtl"], data, "--out", noted, "--known-labels"])
    assert "--known-labels ignored" in " ".join(result.stderr.split())
    pd.testing.assert_frame_equal(pd.read_csv(plain), pd.read_csv(noted))

    smiles_only = tmp / "smiles_only.csv"
    inp[["smiles"]].to_csv(smiles_only, index=False)
    bad = runner.invoke(
        app,
        [
            str(a)
            for a in [
                "predict",
                trained["sgnn-ebm"],
                smiles_only,
                "--out",
                tmp / "y.csv",
                "--known-labels",
            ]
        ],
    )
    cli_user_error(bad, "--known-labels", "no column", "has_N")


@pytest.mark.parametrize("spec", ["matrix", "learned", "none"])
def test_task_graph_sources(tmp, data, spec) -> None:
    if spec == "matrix":
        m = pd.DataFrame(np.eye(4) * 0, index=TASKS, columns=TASKS)
        m.loc["has_N", "has_N_copy"] = m.loc["has_N_copy", "has_N"] = 0.9
        m.loc["many_O", "aromatic"] = m.loc["aromatic", "many_O"] = 0.4
        graph_arg = tmp / "sim.csv"
        m.to_csv(graph_arg)
    else:
        graph_arg = spec
    d = tmp / f"graph_{spec}"
    cli_ok(
        ["multitask", data, "--method", "sgnn", "--task-graph", graph_arg, "--out", d, *TWO_EPOCHS]
    )
    graph = json.loads((d / "task_graph.json").read_text())
    edges = {tuple(sorted((TASKS[a], TASKS[b]))) for a, b in graph["edges"]}
    if spec == "matrix":
        assert edges == {("has_N", "has_N_copy"), ("aromatic", "many_O")}
    elif spec == "none":
        assert edges == set()
    else:
        assert "learned" in graph["source"]
        assert ("has_N", "has_N_copy") in edges  # the copied task is found from labels alone


def test_relation_file_with_an_unknown_task_exits_2(tmp, data) -> None:
    bad = tmp / "bad_relations.csv"
    bad.write_text("task_a,task_b,weight\nhas_N,has_N_copy,1\nmany_O,not_a_task,0.5\n")
    out = tmp / "bad_rel_run"
    result = runner.invoke(
        app, ["multitask", str(data), "--task-graph", str(bad), "--out", str(out), *SMALL]
    )
    cli_user_error(result, "not_a_task", "unknown task")
    assert not out.exists()


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("smiles,compound id\nCCO,1\nCCN,2\nCCC,3\n", ["no label columns"]),
        ("", ["empty"]),
        ("smiles,a,b\nCCO,0,0.5\nCCN,1,2.5\nCCC,,1\n", ["binary labels", "'b'"]),
    ],
    ids=["no-task-columns", "empty-file", "non-binary-labels"],
)
def test_bad_tables_exit_2(tmp, content, fragments) -> None:
    path = tmp / "bad_table.csv"
    path.write_text(content)
    result = runner.invoke(app, ["multitask", str(path), "--out", str(tmp / "bad"), *SMALL])
    cli_user_error(result, *fragments)


def test_a_missing_file_names_the_multitask_sets(tmp) -> None:
    result = runner.invoke(
        app, ["multitask", str(tmp / "no_such_assays.csv"), "--out", str(tmp / "m")]
    )
    cli_user_error(
        result, "no_such_assays.csv", "neither a file nor a known", "chembl-<k>", "kiba-mt"
    )
    assert "davis" not in result.output  # DTA sets are not multi-task inputs


def test_bad_options_exit_2(tmp, data) -> None:
    result = runner.invoke(app, ["multitask", str(data), "--method", "magic", "--out", "x"])
    cli_user_error(result, "--method must be one of")
    result = runner.invoke(app, ["multitask", str(data), "--noise", "loud", "--out", "x"])
    cli_user_error(result, "--noise must be one of fixed, adaptive, gibbs")
    result = runner.invoke(app, ["multitask", str(data), "--duplicates", "mean", "--out", "x"])
    cli_user_error(result, "--duplicates must be one of first, merge, keep")
    result = runner.invoke(app, ["multitask", str(data), "--task-graph", "nope.csv", "--out", "x"])
    cli_user_error(result, "nope.csv")


class _Killed(RuntimeError):
    pass


@pytest.mark.parametrize("method, kill_at", [("sgnn-ebm", (0, 2)), ("stl", (1, 1))])
def test_resume_after_a_kill_gives_the_same_run(tmp, data, relations, monkeypatch, method, kill_at):
    """Stop right after a checkpoint (unit, epoch), resume: same epochs and same numbers."""
    args = ["--method", method, "--task-graph", relations, "--epochs", "3", *SMALL]
    args += ["--checkpoint-every", "0"]  # a checkpoint every epoch: the kill point exists
    unbroken = tmp / f"unbroken_{method}"
    cli_ok(["multitask", data, "--out", unbroken, *args])

    real = run_mod.save_training_state

    def save_then_die(path, model, opt, state):
        real(path, model, opt, state)
        if (state["unit"], state["epochs_done"]) == kill_at:
            raise _Killed("killed after a checkpoint")

    monkeypatch.setattr(run_mod, "save_training_state", save_then_die)
    killed = tmp / f"killed_{method}"
    result = runner.invoke(app, ["multitask", str(data), "--out", str(killed), *map(str, args)])
    assert isinstance(result.exception, _Killed), result.output
    assert not (killed / "metrics.json").exists()
    monkeypatch.setattr(run_mod, "save_training_state", real)

    result = runner.invoke(app, ["multitask", str(data), "--out", str(killed), *map(str, args)])
    cli_user_error(result, "not empty", "--resume")  # a stopped run is never overwritten silently
    if method == "stl":  # task 0 finished with 3 epochs: a longer budget would mix two budgets
        longer = [str(a) for a in args]
        longer[longer.index("--epochs") + 1] = "5"
        result = runner.invoke(
            app, ["multitask", str(data), "--out", str(killed), *longer, "--resume"]
        )
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        err = " ".join(result.stderr.split())  # after the data summary lines
        assert "error: cannot resume" in err and "STL tasks finished with 3 epochs" in err, err
    cli_ok(["multitask", data, "--out", killed, *args, "--resume"])

    a = pd.read_csv(killed / "train_log.csv").drop(columns="time_s")
    b = pd.read_csv(unbroken / "train_log.csv").drop(columns="time_s")
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-6, rtol=0)
    ma = json.loads((killed / "metrics.json").read_text())
    mb = json.loads((unbroken / "metrics.json").read_text())
    assert ma["epochs_done"] == mb["epochs_done"] == 3
    assert ma["test_at_best_valid"] == pytest.approx(mb["test_at_best_valid"])
    pa = pd.read_csv(killed / "predictions.csv").filter(like="_pred")
    pb = pd.read_csv(unbroken / "predictions.csv").filter(like="_pred")
    np.testing.assert_allclose(pa.to_numpy(), pb.to_numpy(), atol=1e-5)


def test_checkpoints_follow_improvements_and_unit_ends(tmp, data, relations, monkeypatch):
    """With a long interval: a checkpoint after every improving epoch and each unit's last."""
    saved = []
    real = run_mod.save_training_state

    def spy(path, model, opt, state):
        saved.append((state["unit"], state["epochs_done"]))
        real(path, model, opt, state)

    monkeypatch.setattr(run_mod, "save_training_state", spy)
    out = tmp / "sparse_ckpt"
    args = ["--method", "stl", "--task-graph", relations, "--epochs", "4", *SMALL]
    cli_ok(["multitask", data, "--out", out, *args, "--checkpoint-every", "3600"])
    log = pd.read_csv(out / "train_log.csv")
    tasks = list(dict.fromkeys(log["task"]))
    expected = []
    for unit, task in enumerate(tasks):
        best = None
        for _, r in log[log["task"] == task].iterrows():
            v = r["valid_roc_auc"]
            # a score beats no score; while no epoch has one, the latest is kept
            if best is None or (v == v and (best != best or v > best)) or (v != v and best != best):
                best = v
                expected.append((unit, int(r["epoch"])))
            elif r["epoch"] == 4:
                expected.append((unit, 4))
    assert saved == expected
    assert len(saved) < len(log)  # some epochs neither improved nor ended a task: not saved
    assert len(log) == 4 * len(tasks)  # the log is complete all the same


def test_negative_checkpoint_interval_is_refused(tmp, data) -> None:
    result = runner.invoke(
        app, ["multitask", str(data), "--out", str(tmp / "neg"), "--checkpoint-every", "-1"]
    )
    cli_user_error(result, "--checkpoint-every must be >= 0")


def test_registry_dataset_uses_its_own_task_graph(tmp, shared_data, monkeypatch) -> None:
    monkeypatch.setenv("FEWMOL_DATA", str(shared_data))
    d = tmp / "chembl10"
    cli_ok(["multitask", "chembl-10", "--method", "sgnn-ebm", "--out", d, "--epochs", "1", *SMALL])
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["task_graph"]["source"].startswith("ChEMBL target annotations")
    assert len(cfg["task_names"]) > 100
    assert json.loads((d / "metrics.json").read_text())["n_molecules"] > 300


def test_fixed_noise_from_a_trained_sgnn(trained, data, relations, tmp) -> None:
    """--noise fixed --noise-model DIR: the NCE noise is that frozen model's predictions."""
    from fewmol.data.store import featurize_to_graphset
    from fewmol.multitask.predict import MultitaskPredictor, load_noise_model

    base = ["multitask", data, "--task-graph", relations, "--method", "sgnn-ebm"]
    out = tmp / "run_fixed_sgnn"
    cli_ok([*base, "--noise", "fixed", "--noise-model", trained["sgnn"], "--out", out, *TWO_EPOCHS])
    cfg = json.loads((out / "config.json").read_text())
    info = cfg["energy"]["noise_model"]
    assert info["method"] == "sgnn" and info["path"] == str(Path(trained["sgnn"]).resolve())
    assert len(info["weights_sha256"]) == 64
    # the frozen noise model is no part of the saved EBM: its weights file holds the EBM only
    ebm = MultitaskPredictor(out)._module(out / "model.safetensors")
    assert not ebm._noise_net
    noise_net, _ = load_noise_model(trained["sgnn"], TASKS, "hu2019")
    module = MultitaskPredictor(out)._module(out / "model.safetensors")
    module._noise_net = (noise_net.eval(),)
    table = pd.read_csv(data, dtype=str, keep_default_na=False)
    graphs = featurize_to_graphset([s for s in table["smiles"] if Chem.MolFromSmiles(s)][:20])
    batch = graphs.collate(np.arange(len(graphs)))
    expected = MultitaskPredictor(trained["sgnn"]).predict(graphs)
    np.testing.assert_allclose(module.fixed_noise(batch).numpy(), expected, atol=1e-5)

    # user errors: the wrong kind of dir, other tasks, or a noise model without --noise fixed
    bad = runner.invoke(app, [str(a) for a in [*base, "--noise", "fixed", "--noise-model", tmp,
                                               "--out", tmp / "x1", *TWO_EPOCHS]])  # fmt: skip
    cli_user_error(bad, "not a multi-task model dir")
    fewer = ["--target-cols", ",".join(TASKS[::-1])]  # the same tasks in another order
    bad = runner.invoke(app, [str(a) for a in [*base, "--noise", "fixed", "--noise-model",
                                               trained["sgnn"], *fewer, "--out", tmp / "x2",
                                               *TWO_EPOCHS]])  # fmt: skip
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "predicts other tasks" in " ".join(bad.stderr.split())
    bad = runner.invoke(app, [str(a) for a in [*base, "--noise-model", trained["sgnn"],
                                               "--out", tmp / "x3", *TWO_EPOCHS]])  # fmt: skip
    cli_user_error(bad, "--noise fixed")


def test_long_format_csv_trains_a_multitask_model(tmp, data) -> None:
    wide = pd.read_csv(data, dtype=str, keep_default_na=False)
    long = wide.melt(id_vars="smiles", var_name="assay", value_name="active")
    long = long[(long["active"] != "") | (long["assay"] == TASKS[0])]  # bad SMILES stay in
    long = long.sample(frac=1.0, random_state=1)
    path = tmp / "long.csv"
    long.to_csv(path, index=False)
    out = tmp / "run_long"
    result = cli_ok(["multitask", path, "--task-col", "assay", "--label-col", "active",
                     "--out", out, "--method", "mtl", "--epochs", "1", *SMALL])  # fmt: skip
    assert "replicates merged into them" in result.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert sorted(cfg["task_names"]) == sorted(TASKS)
    bad = pd.read_csv(out / "bad_rows.csv")
    assert bad["reason"].str.startswith("invalid SMILES").any()  # reported, not fatal
    assert (bad["line"] == bad["row"] + 2).all()
    cli_user_error(["multitask", path, "--task-col", "assay", "--out", tmp / "x"],
                   "--task-col and --label-col go together")  # fmt: skip


def test_long_pchembl_table_with_a_threshold(tmp, data) -> None:
    wide = pd.read_csv(data, dtype=str, keep_default_na=False)
    long = wide.melt(id_vars="smiles", var_name="target", value_name="active")
    long = long[long["active"] != ""].reset_index(drop=True)
    rng = np.random.default_rng(0)
    # the same classes as pChEMBL-like values: actives 6.5-8, inactives 4-5.5
    act = long["active"].astype(int).to_numpy()
    long["pchembl"] = np.where(
        act == 1, rng.uniform(6.5, 8, len(long)), rng.uniform(4, 5.5, len(long))
    )
    path = tmp / "pchembl_long.csv"
    long.drop(columns="active").to_csv(path, index=False)
    out = tmp / "run_pchembl"
    result = cli_ok(["multitask", path, "--task-col", "target", "--label-col", "pchembl",
                     "--threshold", "6", "--out", out, "--method", "mtl", "--epochs", "1",
                     *SMALL])  # fmt: skip
    assert "--threshold 6: " in result.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert sorted(cfg["task_names"]) == sorted(TASKS)
    cli_user_error(["multitask", "chembl-10", "--threshold", "6", "--out", tmp / "y"],
                   "--threshold apply to CSVs")  # fmt: skip


def _predict_matches_training(d: Path, data: Path, out: Path, atol: float) -> None:
    """`fewmol predict d data` gives every task's column as the run's own predictions.csv."""
    cli_ok(["predict", d, data, "--out", out])
    cols = [f"{t}_pred" for t in TASKS]
    train = pd.read_csv(d / "predictions.csv")
    got = pd.read_csv(out).set_index("row").loc[train["row"], cols].to_numpy()
    np.testing.assert_allclose(got, train[cols].to_numpy(), atol=atol)


def test_tilted_sgnn_ebm_trains_records_its_energy_and_predicts(data, relations, tmp) -> None:
    d = tmp / "run_tilt"
    base = ["multitask", data, "--task-graph", relations, "--method", "sgnn-ebm"]
    cli_ok([*base, "--tilt", "--out", d, *TWO_EPOCHS])
    energy = json.loads((d / "config.json").read_text())["energy"]
    assert energy["tilt"] is True and energy["noise"] == "adaptive"
    _predict_matches_training(d, data, tmp / "pred_tilt.csv", atol=0.2)
    # the tilt needs the adaptive noise (the only one a model dir carries to new molecules)
    bad = [*base, "--tilt", "--noise", "fixed", "--out", tmp / "tilt_fixed", *TWO_EPOCHS]
    cli_user_error(bad, "--tilt", "--noise adaptive")
    cli_user_error(["multitask", data, "--method", "mtl", "--tilt", "--out", tmp / "t2"], "--tilt")


def test_gibbs_noise_sgnn_ebm_trains_records_its_energy_and_predicts(data, relations, tmp) -> None:
    d = tmp / "run_gibbs"
    base = ["multitask", data, "--task-graph", relations, "--method", "sgnn-ebm"]
    cli_ok([*base, "--noise", "gibbs", "--noise-sweeps", "3", "--fill-missing", "--out", d,
            *TWO_EPOCHS])  # fmt: skip
    energy = json.loads((d / "config.json").read_text())["energy"]
    assert energy["noise"] == "gibbs" and energy["noise_sweeps"] == 3
    assert energy["fill_missing"] is True and "tilt" not in energy
    log = pd.read_csv(d / "train_log.csv")
    assert log["train_nce"].notna().all() and log["train_bce"].notna().all()  # SGNN trains too
    _predict_matches_training(d, data, tmp / "pred_gibbs.csv", atol=0.2)
    cli_user_error([*base, "--noise", "gibs", "--out", tmp / "g2"], "fixed, adaptive, gibbs")
    # a config.json edited by hand into something unbuildable: a model-file error, no traceback
    orig = (d / "config.json").read_text()
    for key, part, value, fragments in (
        ("energy", "noise", "bogus", ("config.json: energy:", "bogus")),
        ("energy", "gibbs_sweeps", 0, ("gibbs_sweeps must be an integer >= 1",)),
        ("energy", "lambda", "strong", ("config.json: energy:",)),
        ("structured", "state_dim", "big", ("config.json cannot build its net",)),
        ("structured", None, None, ("config.json cannot build its net: it lacks 'structured'",)),
        ("task_names", None, None, ("config.json lacks 'task_names'",)),
    ):
        cfg = json.loads(orig)
        if part is None:
            del cfg[key]
        else:
            cfg[key][part] = value
        (d / "config.json").write_text(json.dumps(cfg))
        cli_user_error(["predict", d, data, "--out", tmp / "p.csv"], *fragments)
    (d / "config.json").write_text(orig)
    cli_user_error(["multitask", data, "--method", "mtl", "--fill-missing", "--out", tmp / "g3",
                    *TWO_EPOCHS], "--fill-missing is for --method sgnn-ebm")  # fmt: skip


def test_bilinear_sgnn_trains_records_its_head_and_predicts(data, relations, tmp) -> None:
    d = tmp / "run_bilinear"
    base = ["multitask", data, "--task-graph", relations, "--method", "sgnn", "--bilinear"]
    cli_ok([*base, "--out", d, *TWO_EPOCHS])
    assert json.loads((d / "config.json").read_text())["structured"]["bilinear"] is True
    _predict_matches_training(d, data, tmp / "pred_bilinear.csv", atol=1e-5)
    cli_user_error(["multitask", data, "--method", "mtl", "--bilinear", "--out", tmp / "b2"])


def test_a_lone_training_molecule_is_a_user_error(tmp) -> None:
    # scaffold split of two molecules: benzene trains alone, ethanol is the test set; one
    # molecule makes no batch (batch norm), so nothing would train and no model be written
    path = tmp / "two.csv"
    path.write_text("smiles,t1,t2\nCCO,1,0\nc1ccccc1,0,1\n")
    out = tmp / "lone"
    cli_user_error(
        ["multitask", path, "--out", out, "--split", "scaffold", *TWO_EPOCHS],
        "training split holds one molecule",
        "'train': 1",
    )
    assert not (out / "model.safetensors").exists()


def test_without_validation_the_last_epoch_is_kept_and_the_nan_explained(tmp) -> None:
    path = tmp / "four.csv"
    path.write_text("smiles,t1,t2\nCCO,1,0\nCCC,0,1\nCCCC,1,1\nc1ccccc1,0,1\n")
    out = tmp / "novalid"
    result = cli_ok(
        ["multitask", path, "--out", out, "--split", "scaffold", "--epochs", "3", *SMALL]
    )
    text = " ".join(result.output.split())
    assert "at the last epoch, 3 (no validation score to choose by)" in text
    assert "no task has both classes among the 1 test molecules" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split_sizes"]["valid"] == 0
    assert metrics["best_epoch"] == 3  # not the first epoch, which nothing chose


def test_stl_jobs_trains_the_same_models_in_processes_and_resumes(trained, data, tmp) -> None:
    d = tmp / "stl_jobs"
    args = ["multitask", data, "--method", "stl", "--out", d, *TWO_EPOCHS, "--stl-jobs", "2"]
    result = cli_ok(args)
    assert "stl: 2 processes, one part of the tasks each" in result.stderr
    one = json.loads((trained["stl"] / "metrics.json").read_text())
    two = json.loads((d / "metrics.json").read_text())
    for key in ("best_valid", "test_at_best_valid", "test_at_last_epoch", "best_epoch_per_task"):
        assert two[key] == pytest.approx(one[key]), key
    assert sorted(p.name for p in (d / "tasks").iterdir()) == [
        f"task_{t:04d}.safetensors" for t in range(4)
    ]
    cols = [f"{t}_pred" for t in TASKS]
    pd.testing.assert_frame_equal(
        pd.read_csv(d / "predictions.csv")[cols],
        pd.read_csv(trained["stl"] / "predictions.csv")[cols],
    )
    # --resume after both parts finished: nothing trains again, the merge is redone
    before = (d / "parts/part0of2/stl_part.json").stat().st_mtime_ns
    cli_ok([*args, "--resume"])
    assert (d / "parts/part0of2/stl_part.json").stat().st_mtime_ns == before
    assert json.loads((d / "metrics.json").read_text())["test_at_best_valid"] == pytest.approx(
        two["test_at_best_valid"]
    )
    # --resume continues a run the way it was started
    one_process = ["multitask", data, "--method", "stl", "--out", d, *TWO_EPOCHS, "--resume"]
    cli_user_error(one_process, "holds an STL run in 2 parts", "--stl-jobs 2")
    in_parts = [*one_process[:5], trained["stl"], *TWO_EPOCHS, "--resume", "--stl-jobs", "2"]
    cli_user_error(in_parts, "holds a one-process STL run; resume it without --stl-jobs")


def test_stl_jobs_is_for_stl_on_one_device(data, tmp) -> None:
    base = ["multitask", data, "--out", tmp / "bad_jobs", *TWO_EPOCHS, "--stl-jobs", "2"]
    cli_user_error([*base, "--method", "mtl"], "--stl-jobs is for --method stl")
    cli_user_error([*base, "--method", "stl", "--strategy", "ddp"], "one device each")


def test_an_stl_dir_is_no_encoder_to_start_from_or_embed_with(trained, data, tmp) -> None:
    stl = trained["stl"]
    why = "is an STL run: one GIN per task"
    out = tmp / "from_stl"
    cli_user_error(["multitask", data, "--init", stl, "--out", out, *TWO_EPOCHS], why)
    assert not out.exists()  # refused before anything was read or written
    cli_user_error(["finetune", data, "--init", stl, "--out", tmp / "ft_from_stl"], why)
    cli_user_error(["embed", stl, data, "--out", tmp / "emb.parquet"], why)
    assert not (tmp / "emb.parquet").exists()
