"""SD files as tables: fields, record lines, unreadable records, streaming, refusals."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from fewmol.data.sdf import is_sdf_path, read_sdf_table
from fewmol.data.tables import long_to_wide, open_smiles_stream, read_smiles, read_table
from fewmol.errors import InvalidInputError

# a carbon with five carbon neighbours: the block parses, sanitisation rejects it
PENTAVALENT = (
    "bad\n     RDKit          2D\n\n  6  5  0  0  0  0  0  0  0  0999 V2000\n"
    + "".join(
        f"{x:10.4f}{y:10.4f}    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n"
        for x, y in [(0, 0), (1.5, 0), (-1.5, 0), (0, 1.5), (0, -1.5), (1, 1)]
    )
    + "".join(f"  1{j:3d}  1  0\n" for j in range(2, 7))
    + "M  END\n>  <pIC50>\n6.5\n\n"
)


def _block(smiles: str, name: str, fields: dict[str, str], three_d: bool = False) -> str:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    if three_d:
        AllChem.EmbedMolecule(mol, randomSeed=1)
    else:
        mol = Chem.RemoveHs(mol)
    mol.SetProp("_Name", name)
    text = Chem.MolToMolBlock(mol)
    for k, v in fields.items():
        text += f">  <{k}>  (1)\n{v}\n\n"
    return text


@pytest.fixture
def sdf(tmp_path) -> Path:
    records = [
        _block("CCO", "ethanol", {"pIC50": "5.1", "assay": "A1"}),
        _block("c1ccccc1O", "phenol", {"pIC50": "6.3", "note": "two\nlines"}),
        PENTAVALENT,
        _block("C[C@H](N)C(=O)O", "L-alanine 3D", {"pIC50": "7.0"}, three_d=True),
        _block("CCO", "ethanol again", {"pIC50": "5.3"}),
    ]
    path = tmp_path / "cpds.sdf"
    path.write_text("$$$$\n".join(records) + "$$$$\n")
    return path


def _start_lines(path: Path) -> list[int]:
    lines = path.read_text().splitlines()
    return [1] + [i + 2 for i, line in enumerate(lines[:-1]) if line.startswith("$$$$")]


def test_read_sdf_fields_lines_and_failures(sdf):
    t = read_sdf_table(sdf)
    df = t.frame
    assert list(df.columns) == ["smiles", "name", "pIC50", "assay", "note"]
    assert df["name"].tolist()[:2] == ["ethanol", "phenol"]
    assert df["smiles"].tolist()[0] == "CCO" and df["smiles"][2] == ""
    assert df["assay"].tolist() == ["A1", "", "", "", ""]  # a field a record lacks: empty
    assert df["note"][1] == "two\nlines"
    assert df["pIC50"][2] == "6.5"  # an unreadable record keeps its fields
    assert "[H]" not in df["smiles"][3] and "@" in df["smiles"][3]  # stereo from 3D, no Hs
    assert Chem.CanonSmiles(df["smiles"][3]) == Chem.CanonSmiles("C[C@H](N)C(=O)O")
    assert t.lines.tolist() == _start_lines(sdf)
    assert set(t.failures) == {2} and "valence" in t.failures[2].lower()


def test_read_table_reports_records_by_line(sdf):
    table = read_table(sdf)
    assert table.target_names == ["pIC50"]  # 'name' and text fields are not labels
    assert table.task_type == "regression"
    bad = table.bad_rows.set_index("row")
    starts = _start_lines(sdf)
    assert bad.loc[2, "line"] == starts[2] and "valence" in bad.loc[2, "reason"].lower()
    assert bad.loc[4, "line"] == starts[4]
    assert f"duplicate of row 0 (line {starts[0]}" in bad.loc[4, "reason"]
    assert table.rows.tolist() == [0, 1, 3]
    with pytest.raises(InvalidInputError, match="valence"):
        read_table(sdf, on_invalid="error", duplicates="keep")


def test_compressed_sdf_and_suffixes(sdf, tmp_path):
    gz = tmp_path / "cpds.sdf.gz"
    gz.write_bytes(gzip.compress(sdf.read_bytes()))
    assert read_table(gz, duplicates="keep").smiles == read_table(sdf, duplicates="keep").smiles
    assert is_sdf_path("a.SD") and is_sdf_path("a.sdf.xz") and not is_sdf_path("a.csv")


def test_stream_matches_the_whole_read(sdf):
    whole = read_smiles(sdf)
    stream = open_smiles_stream(sdf)
    assert stream.count_rows() == 5
    chunks = list(stream.chunks(2))
    assert [c.offset for c in chunks] == [0, 2, 4]
    assert sum(c.n_kept for c in chunks) == whole.n_kept
    second = chunks[1].bad_rows
    assert second["row"].tolist() == [0] and second["line"].tolist() == [_start_lines(sdf)[2]]
    assert "valence" in second["reason"][0].lower()
    assert list(chunks[2].raw.columns) == list(whole.raw.columns)


def test_refusals(sdf, tmp_path):
    empty = tmp_path / "empty.sdf"
    empty.write_text("\n\n")
    with pytest.raises(InvalidInputError, match="no SD records"):
        read_table(empty)
    with pytest.raises(InvalidInputError, match="long format"):
        long_to_wide(sdf, "name", "pIC50")
    lone = tmp_path / "lone.sdf"
    lone.write_text(PENTAVALENT)
    with pytest.raises(InvalidInputError, match="no valid rows"):
        read_table(lone)


def test_field_named_smiles_keeps_the_structure_first(tmp_path):
    path = tmp_path / "s.sdf"
    path.write_text(_block("CCN", "x", {"SMILES": "CCO", "y": "1"}) + "$$$$\n")
    df = read_sdf_table(path).frame
    assert list(df.columns)[:2] == ["structure_smiles", "name"]
    assert read_table(path, target_cols=["y"]).smiles == ["CCN"]
    assert np.array_equal(read_sdf_table(path).lines, [1])
