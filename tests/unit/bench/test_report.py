"""Results pages from stored per-run JSON files."""

from __future__ import annotations

import json

from fewmol.bench.protocols import PROTOCOLS, get_protocol
from fewmol.bench.report import aggregate, caption, markdown_table, write_report


def _record(tmp_path, protocol, dataset, seed, test, epochs=100):
    p = tmp_path / protocol / "none" / dataset / f"seed{seed}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    rec = {
        "protocol": protocol,
        "method": "none",
        "dataset": dataset,
        "seed": seed,
        "metric": PROTOCOLS[protocol].metric,
        "test": test,
        "epochs": epochs,
        "wall_time_s": 60.0,
        "n_molecules": 100,
        "git_commit": "0123456789abc",
        "hardware": "test",
        "command": "fewmol bench run",
    }
    p.write_text(json.dumps(rec))
    return rec


def test_mean_and_std_over_seeds():
    recs = [
        {
            "method": "none",
            "dataset": "bbbp",
            "seed": s,
            "test": t,
            "epochs": 100,
            "wall_time_s": 1.0,
            "n_molecules": 5,
        }
        for s, t in enumerate([0.6, 0.7, 0.8])
    ]
    a = aggregate(recs)[("none", "bbbp")]
    assert abs(a["mean"] - 0.7) < 1e-12 and abs(a["std"] - 0.0816496580927726) < 1e-12
    assert a["n"] == 3 and a["seeds"] == [0, 1, 2]


def test_classification_table_in_percent_with_paper_row_and_epoch_notes():
    proto = get_protocol("classification")
    recs = [
        {
            "method": "none",
            "dataset": "bbbp",
            "seed": 0,
            "test": 0.65,
            "epochs": 10,
            "wall_time_s": 1.0,
            "n_molecules": 5,
        }
    ]
    text = markdown_table(proto, recs)
    assert "65.0 ± 0.0 [10 ep] (n=1)" in text
    assert "| none (paper) | 65.4 (2.4) |" in text
    assert "(65.00 over 1)" in text  # no full average until every dataset is in


def test_cells_trained_below_float32_are_marked():
    proto = get_protocol("classification")
    base = {"method": "none", "seed": 0, "epochs": 100, "wall_time_s": 1.0, "n_molecules": 5}
    recs = [
        {**base, "dataset": "bbbp", "test": 0.65},  # written before --precision: float32
        {**base, "dataset": "bace", "test": 0.7, "precision": "bf16-mixed"},
        {**base, "dataset": "sider", "test": 0.6, "precision": "32-true"},
    ]
    text = markdown_table(proto, recs)
    assert "70.0 ± 0.0 [bf16-mixed] (n=1)" in text
    assert "65.0 ± 0.0 (n=1)" in text and "60.0 ± 0.0 (n=1)" in text
    assert text.count("[bf16-mixed]") == 1
    assert "precision 32-true (bbbp, sider); bf16-mixed (bace)" in caption(proto, recs)
    assert "precision" not in caption(proto, [recs[0], recs[2]])  # all float32: not mentioned


def test_regression_report_keeps_units_and_is_deterministic(tmp_path):
    for seed, rmse in enumerate([1.1, 1.3]):
        _record(tmp_path, "regression", "esol", seed, rmse)
    proto = get_protocol("regression")
    path = write_report(proto, tmp_path)
    first = path.read_text()
    assert "# regression: test rmse, scaffold split" in first
    assert "1.200 ± 0.100 (n=2)" in first
    assert "| none (paper) | 1.178 | 0.744 | 1.127 | 1.254 | – |" in first
    assert write_report(proto, tmp_path).read_text() == first


def _run(method, dataset, seed, test, init=None, wall=None, epochs=100):
    rec = {
        "method": method,
        "dataset": dataset,
        "seed": seed,
        "test": test,
        "epochs": epochs,
        "wall_time_s": 1.0,
        "n_molecules": 5,
        "init": init,
        "pretraining": None if wall is None else {"wall_time_s": wall},
    }
    return rec


def test_score_against_pretraining_time_averages_common_datasets_only(tmp_path):
    from fewmol.bench.report import plot_score_vs_pretrain_time, score_vs_pretrain_time

    proto = get_protocol("classification")
    recs = [
        _run("none", "bbbp", 0, 0.60),
        _run("none", "bace", 0, 0.70),
        _run("none", "sider", 0, 0.99),  # only "none" has sider: not averaged
        _run("graphmvp-c", "bbbp", 0, 0.70, init="pre/", wall=7200.0),
        _run("graphmvp-c", "bace", 0, 0.80, init="pre/", wall=7200.0),
        _run("rf", "bbbp", 0, 0.90, epochs=None),  # no encoder: not a point
        _run("attrmask", "bbbp", 0, 0.5, init="old/"),  # budget unknown: no x to place it at
        _run("attrmask", "bace", 0, 0.5, init="old/"),
    ]
    points, common = score_vs_pretrain_time(proto, recs)
    assert common == ["bbbp", "bace"]
    assert [(m, h) for m, h, _ in points] == [("none", 0.0), ("graphmvp-c", 2.0)]
    assert [round(y, 6) for _, _, y in points] == [65.0, 75.0]
    path = plot_score_vs_pretrain_time(proto, recs, tmp_path / "p.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = path.read_bytes()
    plot_score_vs_pretrain_time(proto, recs, path)
    assert path.read_bytes() == first  # deterministic
    none_only = [r for r in recs if r["method"] == "none"]
    assert plot_score_vs_pretrain_time(proto, none_only, tmp_path / "q.png") is None


def test_point_labels_avoid_each_other_and_the_markers():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

    from fewmol.bench.report import place_point_labels

    # a cluster like the 2D baselines': close in time and in score
    pts = [
        ("none", 0.0, 60.7),
        ("contextpred", 0.12, 60.55),
        ("edgepred", 0.27, 61.3),
        ("infograph", 0.29, 61.05),
        ("gpt-gnn", 0.2, 61.2),
        ("g-motif", 0.33, 60.9),
        ("graphmvp-c", 1.15, 66.7),
        ("graphmvp-no-vrr", 1.29, 66.9),
    ]
    fig = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.scatter([x for _, x, _ in pts], [y for _, _, y in pts], s=40)
    ax.margins(x=0.15, y=0.1)
    fig.draw_without_rendering()
    anns = place_point_labels(ax, pts)
    assert sorted(a.get_text() for a in anns) == sorted(n for n, _, _ in pts)
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in anns]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (anns[i].get_text(), anns[j].get_text())
    r = 3.0 * fig.dpi / 72.0
    for px, py in ax.transData.transform([(x, y) for _, x, y in pts]):
        marker = Bbox.from_extents(px - r, py - r, px + r, py + r)
        assert not any(b.overlaps(marker) for b in boxes)
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 for b in boxes)
