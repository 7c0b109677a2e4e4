"""fewmol.training: the rank-gathering helpers the Lightning modules share."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fewmol.training import gather_columns, gather_ranks, gathered_mean_loss, make_adam


class _FakeModule:
    """World of ``n`` ranks where rank r holds ``a + 100 r`` (what Lightning's all_gather
    returns: a new leading rank dimension)."""

    def __init__(self, n: int):
        self.trainer = SimpleNamespace(world_size=n)
        self.device = torch.device("cpu")
        self.n = n

    def all_gather(self, t: torch.Tensor) -> torch.Tensor:
        return torch.stack([t + 100 * r for r in range(self.n)])


def test_one_rank_returns_the_array_itself() -> None:
    a = np.arange(6.0).reshape(3, 2)
    assert gather_ranks(_FakeModule(1), a) is a


def test_ranks_are_concatenated_along_the_first_axis() -> None:
    a = np.arange(6.0).reshape(3, 2)
    g = gather_ranks(_FakeModule(2), a)
    assert g.shape == (6, 2)
    np.testing.assert_array_equal(g, np.concatenate([a, a + 100]))


def test_columns_of_batch_tuples_are_concatenated_then_gathered() -> None:
    buf = [(np.array([1.0, 2.0]), np.array([[0.1], [0.2]])), (np.array([3.0]), np.array([[0.3]]))]
    y, p = gather_columns(_FakeModule(2), buf)
    np.testing.assert_array_equal(y, [1, 2, 3, 101, 102, 103])
    assert p.shape == (6, 1)
    np.testing.assert_allclose(p[:3, 0], [0.1, 0.2, 0.3])


def test_mean_loss_weights_batches_by_size() -> None:
    rows = [(1.0, 3), (3.0, 1)]  # (loss, batch size)
    assert gathered_mean_loss(_FakeModule(1), rows) == pytest.approx(1.5)
    # rank 1's rows are (101, 103) and (103, 101): sizes shift too, so check the formula
    a = np.array(rows + [(101.0, 103), (103.0, 101)])
    want = (a[:, 0] * a[:, 1]).sum() / a[:, 1].sum()
    assert gathered_mean_loss(_FakeModule(2), rows) == pytest.approx(want)


def test_run_counters_round_trip_through_a_saved_state() -> None:
    import json
    import time

    from fewmol.training import RunCounters

    class Run(RunCounters):
        def __init__(self, best=None):
            self.epochs_done, self.log_rows, self.wall_before = 0, [], 0.0
            self.started = time.time() - 5.0
            if best is not None:
                self.best = best

    a = Run(best={"epoch": 3, "valid": 0.7})
    a.epochs_done, a.log_rows, a.wall_before = 4, [{"epoch": 1}], 10.0
    state = json.loads(json.dumps(a.counters()))  # what the checkpoint keeps: JSON
    assert state["epochs_done"] == 4 and state["best"] == {"epoch": 3, "valid": 0.7}
    assert 15.0 <= state["wall_s"] < 16.0  # earlier processes' time + this one's
    b = Run(best={"epoch": None, "valid": None})
    b.restore_counters(state)
    assert (b.epochs_done, b.log_rows, b.best) == (4, [{"epoch": 1}], {"epoch": 3, "valid": 0.7})
    assert b.wall_before == state["wall_s"]
    plain = Run()  # a run without model selection (pre-training) saves no "best"
    assert "best" not in plain.counters()


def test_make_adam_is_fused_on_cpu_and_steps_like_adam():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(7, 3), torch.nn.Linear(7, 3)
    b.load_state_dict(a.state_dict())
    fused = make_adam([{"params": list(a.parameters()), "lr": 0.01}], 0.01, 1e-4)
    plain = torch.optim.Adam(b.parameters(), lr=0.01, weight_decay=1e-4)
    assert fused.defaults["fused"] and not plain.defaults["fused"]
    x = torch.randn(16, 7)
    for _ in range(5):
        for m, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            m(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    assert make_adam([{"params": [], "lr": 0.1}], 0.1, 0.0).defaults["fused"] is None
