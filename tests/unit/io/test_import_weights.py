"""fewmol.io.pretrain_gnns: published pretrain-gnns GIN weights -> fewmol encoder, no pickle."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from fewmol.chem.featurize import featurize_smiles
from fewmol.data.collate import GraphSet
from fewmol.errors import InvalidInputError
from fewmol.io.modeldir import load_pretrained_encoder
from fewmol.io.pretrain_gnns import (
    build_converted_encoder,
    convert_state_dict,
    import_pretrain_gnns,
    read_state_dict,
)

LAYERS, DIM = 3, 8
SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "F/C=C/Cl", "C[C@H](N)C#N", "[Na+].[Cl-]", "C"]


def their_state_dict(seed: int = 0) -> collections.OrderedDict[str, torch.Tensor]:
    """Random weights in pretrain-gnns' GNN key layout (what chem/model_gin/*.pth hold)."""
    g = torch.Generator().manual_seed(seed)
    sd: collections.OrderedDict[str, torch.Tensor] = collections.OrderedDict()
    sd["x_embedding1.weight"] = torch.randn(120, DIM, generator=g)
    sd["x_embedding2.weight"] = torch.randn(3, DIM, generator=g)
    for i in range(LAYERS):
        sd[f"gnns.{i}.mlp.0.weight"] = torch.randn(2 * DIM, DIM, generator=g) * 0.3
        sd[f"gnns.{i}.mlp.0.bias"] = torch.randn(2 * DIM, generator=g)
        sd[f"gnns.{i}.mlp.2.weight"] = torch.randn(DIM, 2 * DIM, generator=g) * 0.3
        sd[f"gnns.{i}.mlp.2.bias"] = torch.randn(DIM, generator=g)
        sd[f"gnns.{i}.edge_embedding1.weight"] = torch.randn(6, DIM, generator=g)
        sd[f"gnns.{i}.edge_embedding2.weight"] = torch.randn(3, DIM, generator=g)
    for i in range(LAYERS):
        sd[f"batch_norms.{i}.weight"] = torch.rand(DIM, generator=g) + 0.5
        sd[f"batch_norms.{i}.bias"] = torch.randn(DIM, generator=g)
        sd[f"batch_norms.{i}.running_mean"] = torch.randn(DIM, generator=g)
        sd[f"batch_norms.{i}.running_var"] = torch.rand(DIM, generator=g) + 0.5
        sd[f"batch_norms.{i}.num_batches_tracked"] = torch.tensor(1234)
    return sd


def reference_forward(sd, x, edge_index, edge_attr) -> torch.Tensor:
    """pretrain-gnns' GNN.forward (eval mode, JK last), written out from chem/model.py:
    self-loops as extra edges of type (4, 0), messages x_j + e_ji summed at the target,
    MLP, batch norm with running statistics, ReLU except after the last layer."""
    n = x.shape[0]
    loops = torch.arange(n)
    ei = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
    ea = torch.cat([edge_attr, torch.tensor([[4, 0]]).repeat(n, 1)])
    h = sd["x_embedding1.weight"][x[:, 0]] + sd["x_embedding2.weight"][x[:, 1]]
    for i in range(LAYERS):
        e = sd[f"gnns.{i}.edge_embedding1.weight"][ea[:, 0]]
        e = e + sd[f"gnns.{i}.edge_embedding2.weight"][ea[:, 1]]
        agg = torch.zeros_like(h).index_add(0, ei[1], h[ei[0]] + e)
        hidden = torch.relu(agg @ sd[f"gnns.{i}.mlp.0.weight"].T + sd[f"gnns.{i}.mlp.0.bias"])
        out = hidden @ sd[f"gnns.{i}.mlp.2.weight"].T + sd[f"gnns.{i}.mlp.2.bias"]
        mean, var = sd[f"batch_norms.{i}.running_mean"], sd[f"batch_norms.{i}.running_var"]
        out = (out - mean) / torch.sqrt(var + 1e-5) * sd[f"batch_norms.{i}.weight"]
        h = out + sd[f"batch_norms.{i}.bias"]
        if i < LAYERS - 1:
            h = torch.relu(h)
    return h


def _batch():
    gs = GraphSet.from_graphs([featurize_smiles(s) for s in SMILES])
    return gs.collate(np.arange(len(SMILES)))


@pytest.mark.parametrize("legacy", [False, True])
def test_converted_encoder_computes_what_pretrain_gnns_computes(tmp_path, legacy) -> None:
    sd = their_state_dict()
    path = tmp_path / "contextpred.pth"
    # legacy: the pre-1.6 file format of the published weights (saved with torch 1.0.1)
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
    tensors, info = convert_state_dict(read_state_dict(path))
    assert info == {"num_layers": LAYERS, "dim": DIM, "prefix": "", "ignored": []}
    enc = build_converted_encoder(tensors, info)
    b = _batch()
    with torch.no_grad():
        ours = enc(b.x, b.edge_index, b.edge_attr)
        ref = reference_forward(sd, b.x, b.edge_index, b.edge_attr)
    assert torch.allclose(ours, ref, atol=1e-5), (ours - ref).abs().max()
    assert int(enc.batch_norms[0].num_batches_tracked) == 1234


def test_import_writes_an_encoder_dir_that_finetune_loads(tmp_path) -> None:
    sd = their_state_dict(1)
    path = tmp_path / "masking.pth"
    torch.save(sd, path)
    info = import_pretrain_gnns(path, tmp_path / "enc")
    enc, cfg = load_pretrained_encoder(tmp_path / "enc")
    assert cfg["kind"] == "encoder" and cfg["featurizer"] == "hu2019"
    assert cfg["encoder"]["num_layers"] == LAYERS and cfg["encoder"]["dim"] == DIM
    assert cfg["imported_from"]["sha256"] == info["imported_from"]["sha256"]
    assert cfg["imported_from"]["loader"] == "torch.load(weights_only=True)"
    b = _batch()
    enc.eval()
    with torch.no_grad():
        ref = reference_forward(sd, b.x, b.edge_index, b.edge_attr)
        assert torch.allclose(enc(b.x, b.edge_index, b.edge_attr), ref, atol=1e-5)


def test_whole_model_files_keep_only_the_gin(tmp_path) -> None:
    sd = their_state_dict()
    # pretrain-gnns' GNN_graphpred: GIN under "gnn.", a prediction head beside it
    graphpred = {f"gnn.{k}": v for k, v in sd.items()}
    graphpred["graph_pred_linear.weight"] = torch.randn(2, DIM)
    torch.save(graphpred, tmp_path / "a.pth")
    tensors, info = convert_state_dict(read_state_dict(tmp_path / "a.pth"))
    assert info["prefix"] == "gnn." and info["ignored"] == ["graph_pred_linear.weight"]
    # GraphMVP's *_model_complete.pth: {"model": state dict, ...}
    torch.save({"model": sd, "AE_2D_3D_model": {"w": torch.zeros(1)}}, tmp_path / "b.pth")
    again, _ = convert_state_dict(read_state_dict(tmp_path / "b.pth"))
    assert all(torch.equal(tensors[k], again[k]) for k in tensors)


class _Payload:
    """An object whose unpickling would run a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_file_with_pickled_objects_is_refused_without_running_them(tmp_path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": their_state_dict(), "extra": _Payload(marker)}, path)
    for legacy in (False, True):
        torch.save({"model": their_state_dict(), "extra": _Payload(marker)}, path,
                   _use_new_zipfile_serialization=not legacy)  # fmt: skip
        with pytest.raises(InvalidInputError, match="pickled Python objects") as err:
            import_pretrain_gnns(path, tmp_path / "out")
        assert "system" in str(err.value)  # names what it refused
    assert not marker.exists()
    assert not (tmp_path / "out" / "encoder.safetensors").exists()


def test_other_files_are_clear_errors(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        read_state_dict(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(InvalidInputError, match="not a readable PyTorch weight file"):
        read_state_dict(tmp_path / "junk.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(InvalidInputError, match="not a state dict"):
        read_state_dict(tmp_path / "list.pth")
    sd = their_state_dict()
    gat = {k: v for k, v in sd.items() if "mlp" not in k}
    gat["gnns.0.att"] = torch.zeros(1, 2, 2 * DIM)
    with pytest.raises(InvalidInputError, match="GAT"):
        convert_state_dict(gat)
    wrong_vocab = dict(sd, **{"x_embedding1.weight": torch.zeros(121, DIM)})
    with pytest.raises(InvalidInputError, match=r"\(120, 8\)"):
        convert_state_dict(wrong_vocab)
    missing = {k: v for k, v in sd.items() if k != "gnns.1.mlp.2.bias"}
    with pytest.raises(InvalidInputError, match="lacks gnns.1.mlp.2.bias"):
        convert_state_dict(missing)
    with pytest.raises(InvalidInputError, match="x_embedding1"):
        convert_state_dict({"weight": torch.zeros(2)})
