"""Dataset registry: names, resolution order, bundled copies, downloads with sha256 checks."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import math
from pathlib import Path

import pandas as pd
import pytest

from fewmol.data import registry
from fewmol.data.registry import (
    ChecksumMismatchError,
    DatasetSpec,
    DownloadError,
    get_spec,
    load_frame,
    resolve,
    resolve_target_cols,
)
from fewmol.errors import DatasetNotFoundError, FewmolError, InvalidInputError

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")

DESIGN_NAMES = {
    "bbbp", "tox21", "toxcast", "sider", "clintox", "muv", "hiv", "bace", "esol", "freesolv",
    "lipo", "malaria", "cep", "davis", "kiba", "chembl", "qm9", "moses",
}  # fmt: skip
BUNDLED = {"bbbp", "tox21", "toxcast", "sider", "clintox", "bace", "esol", "freesolv", "lipo"}


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees the user's $FEWMOL_DATA or cache."""
    monkeypatch.delenv("FEWMOL_DATA", raising=False)
    monkeypatch.setenv("FEWMOL_CACHE", str(tmp_path / "fewmol-cache"))
    return tmp_path / "fewmol-cache" / "data"


def _read_csv_strings(path: Path) -> tuple[list[str], list[list[str]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _local_spec(tmp_path: Path, content: bytes, *, sha: str | None = None) -> DatasetSpec:
    """A spec whose URL is a file:// URL to a small CSV written under tmp_path."""
    src = tmp_path / "upstream" / "tiny.csv"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(content)
    return dataclasses.replace(
        get_spec("esol"),
        name="tiny",
        target_cols=("y",),
        n_tasks=None,
        relpath="moleculenet/tiny.csv",
        url=src.as_uri(),
        sha256=sha or hashlib.sha256(content).hexdigest(),
        n_rows=2,
        bundled=False,
    )


TINY = b"smiles,y\nCCO,1.5\nc1ccccc1,\n"


# ------------------------------------------------------------------------------------ specs


def test_registry_has_exactly_the_design_names() -> None:
    assert set(registry.names()) == DESIGN_NAMES
    assert [s.name for s in registry.list_specs()] == registry.names()
    assert {s.name for s in registry.list_specs() if s.bundled} == BUNDLED


def test_get_spec_is_case_insensitive() -> None:
    assert get_spec(" BBBP ").name == "bbbp"
    assert registry.is_registered("Tox21")
    assert not registry.is_registered("tox22")


def test_unknown_name_lists_every_valid_name() -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        get_spec("tox22")
    msg = str(err.value)
    assert "tox22" in msg and "tox21" in msg
    for name in DESIGN_NAMES:
        assert name in msg
    assert isinstance(err.value, FewmolError)


@pytest.mark.parametrize("spec", registry.list_specs(), ids=lambda s: s.name)
def test_spec_protocol_defaults(spec: DatasetSpec) -> None:
    expected = {
        "classification": ("roc_auc", "scaffold"),
        "regression": ("rmse", "scaffold"),
        "dta": ("mse", "deepdta"),
        "multitask": ("roc_auc", "random"),
    }
    if spec.task_type in expected:
        assert (spec.metric, spec.split) == expected[spec.task_type]
    assert spec.n_tasks is not None and spec.n_rows > 0
    if spec.url is not None:
        assert spec.url.startswith("https://")
        assert spec.sha256 is not None and len(spec.sha256) == 64
    else:
        assert spec.is_dir, "only directory datasets may lack a URL"
    if spec.bundled:
        assert spec.bundled_path.is_file()


def test_specific_columns() -> None:
    assert get_spec("bbbp").target_cols == ("p_np",)
    assert get_spec("bace").smiles_col == "smiles"
    assert get_spec("bace").target_cols == ("Class",)
    assert get_spec("esol").target_cols == ("measured log solubility in mols per litre",)
    assert get_spec("clintox").target_cols == ("FDA_APPROVED", "CT_TOX")
    assert (get_spec("tox21").n_tasks, get_spec("muv").n_tasks) == (12, 17)
    assert (get_spec("sider").n_tasks, get_spec("toxcast").n_tasks) == (27, 617)
    assert get_spec("toxcast").target_cols is None


def test_resolve_target_cols() -> None:
    spec = get_spec("toxcast")
    assert resolve_target_cols(spec, ["smiles", "a", "b"]) == ("a", "b")
    hiv = get_spec("hiv")
    assert resolve_target_cols(hiv, ["smiles", "activity", "HIV_active"]) == ("HIV_active",)
    with pytest.raises(InvalidInputError, match="HIV_active"):
        resolve_target_cols(hiv, ["smiles", "activity"])


def test_invalid_spec_is_rejected() -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(get_spec("bbbp"), sha256="abc")
    with pytest.raises(ValueError):
        dataclasses.replace(get_spec("bbbp"), metric="accuracy")
    with pytest.raises(ValueError):
        dataclasses.replace(get_spec("toxcast"), n_tasks=None)


# ------------------------------------------------------------------- shared data directory


@needs_shared
@pytest.mark.parametrize("name", sorted(DESIGN_NAMES))
def test_every_name_resolves_in_shared_data(name: str) -> None:
    spec = get_spec(name)
    path = resolve(name, data_dir=SHARED, download=False)
    if spec.bundled:
        assert path == spec.bundled_path
    full = resolve(name, data_dir=SHARED, download=False, use_bundled=False)
    assert full == SHARED / spec.relpath
    if spec.is_dir:
        for f in spec.files:
            assert (full / f).is_file()
    if spec.is_dir and spec.table is None:
        return
    for p in {path, full}:
        cols = list(pd.read_csv(registry.table_path(spec, p), nrows=0).columns)
        assert spec.smiles_col in cols
        targets = resolve_target_cols(spec, cols)
        assert len(targets) == spec.n_tasks


@needs_shared
@pytest.mark.parametrize("spec", [s for s in registry.list_specs() if s.url], ids=lambda s: s.name)
def test_shared_files_match_registered_sha256(spec: DatasetSpec) -> None:
    assert registry.verify(spec, SHARED / spec.relpath)


@needs_shared
@pytest.mark.parametrize(
    "spec", [s for s in registry.list_specs() if not s.is_dir or s.table], ids=lambda s: s.name
)
def test_load_frame_shapes_and_dtypes(spec: DatasetSpec) -> None:
    frame = load_frame(spec.name, data_dir=SHARED, download=False)
    assert len(frame) == spec.n_rows
    assert list(frame.columns)[0] == spec.smiles_col
    assert frame.shape[1] == 1 + spec.n_tasks
    assert frame[spec.smiles_col].map(type).eq(str).all()
    for col in frame.columns[1:]:
        assert frame[col].dtype == "float64"
    if spec.task_type == "classification":
        values = pd.unique(frame.iloc[:, 1:].to_numpy().ravel())
        assert {v for v in values if not math.isnan(v)} == {0.0, 1.0}


@needs_shared
def test_load_frame_missing_labels_are_nan() -> None:
    frame = load_frame("tox21", data_dir=SHARED)
    assert frame["NR-AR"].isna().sum() > 0
    assert math.isnan(frame.loc[0, "NR-Aromatase"])  # first row: "0,0,1,,,0,..."
    assert frame.loc[0, "NR-AhR"] == 1.0


def test_load_frame_extra_column_and_dta_error() -> None:
    frame = load_frame("bace", target_cols=["pIC50"])
    assert list(frame.columns) == ["smiles", "pIC50"]
    assert frame["pIC50"].iloc[0] == pytest.approx(9.1549015)
    with pytest.raises(InvalidInputError, match="nope"):
        load_frame("bace", target_cols=["nope"])


@needs_shared
def test_load_frame_on_directory_dataset_without_table_errors() -> None:
    with pytest.raises(FewmolError, match="directory"):
        load_frame("davis", data_dir=SHARED)


# --------------------------------------------------------------------------- bundled copies


@needs_shared
@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_values_equal_shared_source(name: str) -> None:
    spec = get_spec(name)
    b_header, b_rows = _read_csv_strings(spec.bundled_path)
    s_header, s_rows = _read_csv_strings(SHARED / spec.relpath)
    targets = resolve_target_cols(spec, s_header)
    assert b_header == [spec.smiles_col, *targets, *spec.keep_cols]
    idx = [s_header.index(c) for c in b_header]
    assert len(b_rows) == len(s_rows) == spec.n_rows
    for b_row, s_row in zip(b_rows, s_rows, strict=True):
        assert b_row == [s_row[i] for i in idx]


@needs_shared
@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_is_what_make_bundled_builds(name: str, repo_script) -> None:
    spec = get_spec(name)
    built = repo_script("scripts/make_bundled.py").subset_csv(spec, SHARED / spec.relpath)
    assert gzip.decompress(spec.bundled_path.read_bytes()) == built


def test_bundled_total_size_is_small() -> None:
    total = sum(s.bundled_path.stat().st_size for s in registry.list_specs() if s.bundled)
    assert total < 1_000_000


# ------------------------------------------------------------------------ resolution order


def test_bundled_needs_no_data_dir_or_network() -> None:
    path = resolve("bbbp", download=False)
    assert path == get_spec("bbbp").bundled_path
    frame = load_frame("bbbp", download=False)
    assert len(frame) == 2050 and list(frame.columns) == ["smiles", "p_np"]


def test_fewmol_data_env_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "mydata"
    (root / "moleculenet").mkdir(parents=True)
    (root / "moleculenet" / "HIV.csv").write_text("smiles,activity,HIV_active\nCCO,CI,0\n")
    with pytest.raises(DatasetNotFoundError):
        resolve("hiv", download=False)
    monkeypatch.setenv("FEWMOL_DATA", str(root))
    # The layout names HIV.csv.gz; the plain CSV saved from the URL is accepted too.
    assert resolve("hiv", download=False) == root / "moleculenet" / "HIV.csv"
    frame = load_frame("hiv", download=False)
    assert frame.to_dict("list") == {"smiles": ["CCO"], "HIV_active": [0.0]}


def test_data_dir_comes_before_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "moleculenet").mkdir(parents=True)
        (root / "moleculenet" / "malaria-processed.csv").write_text("smiles,activity\nC,1\n")
    monkeypatch.setenv("FEWMOL_DATA", str(b))
    assert resolve("malaria", data_dir=a, download=False).parent.parent == a
    assert resolve("malaria", download=False).parent.parent == b
    assert registry.find_local("malaria", a) == (
        a / "moleculenet/malaria-processed.csv",
        "data_dir",
    )


def test_missing_file_message_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        resolve("malaria", data_dir=tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "moleculenet" / "malaria-processed.csv") in msg
    assert "--data-dir" in msg and "$FEWMOL_DATA" in msg


def test_directory_dataset_missing_files_are_named(tmp_path: Path) -> None:
    davis = tmp_path / "dta" / "davis"
    davis.mkdir(parents=True)
    (davis / "proteins.txt").write_text("{}")
    with pytest.raises(DatasetNotFoundError) as err:
        resolve("davis", data_dir=tmp_path)  # no URL: never downloads
    msg = str(err.value)
    assert "lacks" in msg and "Y.npy" in msg and "ligands_can.txt" in msg
    assert "DeepDTA" in msg


# ------------------------------------------------------------------------------- downloads


def test_download_file_url_into_cache(tmp_path: Path, _isolated_env: Path) -> None:
    spec = _local_spec(tmp_path, TINY)
    path = resolve(spec)
    assert path == _isolated_env / "moleculenet" / "tiny.csv"
    assert path.read_bytes() == TINY
    assert registry.verify(spec, path)
    assert list(path.parent.iterdir()) == [path]  # no temp file left over
    # A second resolve uses the cache, even with the source gone.
    (tmp_path / "upstream" / "tiny.csv").unlink()
    assert resolve(spec) == path
    assert registry.find_local(spec) == (path, "cache")
    frame = load_frame(spec)
    assert frame["y"].tolist()[0] == 1.5 and math.isnan(frame["y"].tolist()[1])


def test_download_wrong_sha256_raises_and_leaves_nothing(
    tmp_path: Path, _isolated_env: Path
) -> None:
    spec = _local_spec(tmp_path, TINY, sha="0" * 64)
    with pytest.raises(ChecksumMismatchError) as err:
        resolve(spec)
    msg = str(err.value)
    assert "0" * 64 in msg and hashlib.sha256(TINY).hexdigest() in msg
    assert isinstance(err.value, DatasetNotFoundError)
    leftovers = [p for p in _isolated_env.rglob("*") if p.is_file()]
    assert leftovers == []


def test_download_failure_is_a_clear_error(tmp_path: Path, _isolated_env: Path) -> None:
    spec = dataclasses.replace(
        _local_spec(tmp_path, TINY), url=(tmp_path / "no-such-file.csv").as_uri()
    )
    with pytest.raises(DownloadError, match="--data-dir"):
        resolve(spec)
    assert [p for p in _isolated_env.rglob("*") if p.is_file()] == []


def test_download_disabled(tmp_path: Path) -> None:
    spec = _local_spec(tmp_path, TINY)
    with pytest.raises(DatasetNotFoundError, match="Downloading was disabled"):
        resolve(spec, download=False)


def test_download_of_gz_url_keeps_gz_name(tmp_path: Path, _isolated_env: Path) -> None:
    raw = gzip.compress(TINY, mtime=0)
    spec = dataclasses.replace(_local_spec(tmp_path, raw), relpath="moleculenet/tiny.csv.gz")
    src = Path(spec.url.removeprefix("file://"))
    gz_src = src.with_name("tiny.csv.gz")
    src.rename(gz_src)
    spec = dataclasses.replace(spec, url=gz_src.as_uri())
    path = resolve(spec)
    assert path.name == "tiny.csv.gz"
    assert registry.verify(spec, path)


def test_verify_accepts_gzipped_copy_of_plain_original(tmp_path: Path) -> None:
    spec = _local_spec(tmp_path, TINY)
    gz = tmp_path / "tiny.csv.gz"
    gz.write_bytes(gzip.compress(TINY))
    assert registry.verify(spec, gz)
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(gzip.compress(TINY + b"CC,2\n"))
    assert not registry.verify(spec, bad)
    assert registry.file_sha256(gz, decompress=True) == hashlib.sha256(TINY).hexdigest()
