"""fewmol.data.tables.open_smiles_stream: chunked reading that equals read_smiles."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from fewmol.chem.mol import Hygiene
from fewmol.data.tables import open_smiles_stream, read_smiles
from fewmol.errors import InvalidInputError

TINY = Path(__file__).resolve().parents[2] / "data" / "tiny.csv"


def _collect(path: Path, chunk: int, start_row: int = 0, hygiene: Hygiene = Hygiene()):
    rows, smiles, bad, n, offsets = [], [], [], start_row, []
    for t in open_smiles_stream(path).chunks(chunk, hygiene, start_row):
        assert t.offset == n  # chunks are contiguous
        offsets.append(t.offset)
        rows += (t.rows + t.offset).tolist()
        smiles += t.smiles
        bad += [(r + t.offset, why) for r, why in zip(t.bad_rows["row"], t.bad_rows["reason"])]
        assert len(t.raw) == t.n_input
        n += t.n_input
    return rows, smiles, bad, n, offsets


@pytest.fixture
def messy(tmp_path) -> Path:
    """tiny.csv with a blank line inside and blank lines (and an empty record) at the end."""
    lines = TINY.read_text().splitlines()
    lines.insert(20, "")
    path = tmp_path / "messy.csv"
    path.write_text("\n".join(lines) + "\n\n,,,,\n\n")
    return path


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 50, 10_000])
@pytest.mark.parametrize("which", ["tiny", "messy"])
def test_chunks_equal_read_smiles(chunk: int, which: str, messy: Path) -> None:
    path = TINY if which == "tiny" else messy
    full = read_smiles(path)
    rows, smiles, bad, n, _ = _collect(path, chunk)
    assert n == full.n_input  # trailing blank lines dropped, as read_smiles drops them
    assert rows == full.rows.tolist() and smiles == full.smiles
    assert bad == list(zip(full.bad_rows["row"], full.bad_rows["reason"]))


def test_start_row_resumes_mid_file() -> None:
    full = read_smiles(TINY)
    rows, smiles, _, n, offsets = _collect(TINY, 10, start_row=25)
    assert offsets[0] == 25 and n == full.n_input
    keep = full.rows >= 25
    assert rows == full.rows[keep].tolist()
    assert smiles == [s for s, k in zip(full.smiles, keep) if k]


def test_hygiene_applies_to_chunks() -> None:
    h = Hygiene(strip_salts=True, standardize=True)
    _, smiles, _, _, _ = _collect(TINY, 8, hygiene=h)
    assert smiles == read_smiles(TINY, hygiene=h).smiles
    assert "O=C(O)c1ccccc1" in smiles and not any("." in s for s in smiles)  # no salts left


def test_compressed_and_row_count(tmp_path) -> None:
    gz = tmp_path / "tiny.csv.gz"
    gz.write_bytes(gzip.compress(TINY.read_bytes()))
    stream = open_smiles_stream(gz)
    assert stream.smiles_col == "Canonical SMILES" and stream.count_rows() == 76
    assert _collect(gz, 9)[1] == read_smiles(TINY).smiles


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "is empty"),
        ("smiles,y\n", "only a header"),
        ("a,b\n1,2\n3,4\n", "cannot tell which column"),
    ],
)
def test_unusable_files_fail_before_streaming(tmp_path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=fragment):
        open_smiles_stream(path)


def test_missing_file_and_column(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        open_smiles_stream(tmp_path / "none.csv")
    with pytest.raises(InvalidInputError, match="column 'nope' not found"):
        open_smiles_stream(TINY, "nope")
    with pytest.raises(InvalidInputError, match="chunk size"):
        next(open_smiles_stream(TINY).chunks(0))


def test_ragged_row_later_in_file_is_a_user_error(tmp_path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("smiles,y\n" + "CCO,1\n" * 1500 + "CCN,1,extra,fields\n")
    with pytest.raises(InvalidInputError, match="cannot parse"):
        list(open_smiles_stream(path).chunks(500))
