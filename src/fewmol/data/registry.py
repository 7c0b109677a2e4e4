"""Named datasets: what each one is, where its file lives, and how to fetch and check it.

``resolve(name)`` looks in this order and returns the first hit:

1. the copy bundled inside the package (small MoleculeNet sets; smiles + label columns only);
2. ``data_dir`` (the ``--data-dir`` option);
3. every directory in ``$FEWMOL_DATA`` (``os.pathsep``-separated);
4. the download cache (``$FEWMOL_CACHE/data``, else ``$XDG_CACHE_HOME/fewmol/data``, else
   ``~/.cache/fewmol/data``) holding an earlier download;
5. a download of ``spec.url`` into the cache, checked against ``spec.sha256`` and moved into
   place with an atomic rename (a failed or tampered download leaves no file behind).

Data directories are laid out like ``../shared/data`` (see SOURCES.md there), e.g.
``DIR/moleculenet/HIV.csv.gz`` or ``DIR/dta/davis/``. A plain ``.csv`` is accepted where the
layout names ``.csv.gz`` and the other way round, so a file saved straight from its URL works.

``spec.sha256`` is the hash of the bytes served at ``spec.url``. Where a copy on disk is a
gzipped form of a plain-text original, :func:`verify` hashes the decompressed bytes instead.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from fewmol.errors import DatasetNotFoundError, FewmolError, InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

TaskType = Literal["classification", "regression", "dta", "multitask", "3d", "unlabeled"]
Metric = Literal["roc_auc", "rmse", "mse", "mae"]
Split = Literal["scaffold", "random", "deepdta"]
Origin = Literal["bundled", "data_dir", "$FEWMOL_DATA", "cache"]

TASK_TYPES: tuple[str, ...] = get_args(TaskType)
METRICS: tuple[str, ...] = get_args(Metric)
SPLITS: tuple[str, ...] = get_args(Split)

DATA_ENV = "FEWMOL_DATA"
CACHE_ENV = "FEWMOL_CACHE"
BUNDLED_DIR = Path(__file__).resolve().with_name("bundled")
DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(DatasetNotFoundError):
    """A dataset file could not be downloaded (network error, HTTP error, bad URL)."""


class ChecksumMismatchError(DownloadError):
    """A downloaded file's sha256 differs from the registry's; the file was deleted."""


@dataclass(frozen=True)
class DatasetSpec:
    """One named dataset: columns, task, default protocol, location and provenance."""

    name: str
    description: str
    task_type: TaskType
    smiles_col: str
    # None = every column except smiles_col and exclude_cols (resolved against the file header).
    target_cols: tuple[str, ...] | None
    metric: Metric | None
    split: Split
    # Relative to a data root laid out like ../shared/data: a file, or a directory (see files).
    relpath: str
    url: str | None
    sha256: str | None
    n_rows: int
    n_tasks: int | None = None
    bundled: bool = False
    source: str = ""
    licence: str = ""
    exclude_cols: tuple[str, ...] = ()
    # Extra columns kept in the bundled copy besides smiles + targets (bace: pIC50).
    keep_cols: tuple[str, ...] = ()
    # Directory datasets: files that must exist under relpath, and the CSV load_frame reads.
    files: tuple[str, ...] = ()
    table: str | None = None

    def __post_init__(self) -> None:
        if self.task_type not in TASK_TYPES:
            raise ValueError(f"{self.name}: task_type {self.task_type!r} not in {TASK_TYPES}")
        if self.metric is not None and self.metric not in METRICS:
            raise ValueError(f"{self.name}: metric {self.metric!r} not in {METRICS}")
        if self.split not in SPLITS:
            raise ValueError(f"{self.name}: split {self.split!r} not in {SPLITS}")
        if self.url is not None and (self.sha256 is None or not _SHA256_RE.match(self.sha256)):
            raise ValueError(f"{self.name}: a url needs a 64-hex sha256, got {self.sha256!r}")
        if self.target_cols is not None:
            object.__setattr__(self, "target_cols", tuple(self.target_cols))
            if self.n_tasks is None:
                object.__setattr__(self, "n_tasks", len(self.target_cols))
        elif self.n_tasks is None:
            raise ValueError(f"{self.name}: target_cols=None needs n_tasks")

    @property
    def is_dir(self) -> bool:
        """True for multi-file datasets stored as a directory (davis, kiba, qm9)."""
        return bool(self.files)

    @property
    def bundled_path(self) -> Path:
        """Where the bundled copy lives inside the package (exists only if ``bundled``)."""
        return BUNDLED_DIR / f"{self.name}.csv.gz"


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

_GL = (
    "https://raw.githubusercontent.com/GLambard/Molecules_Dataset_Collection/"
    "beb35cd0b76db5adef6cb1fa55807e4cd309aaed/originals/"
)
_DC = "https://raw.githubusercontent.com/deepchem/deepchem/"
_HIPS = (
    "https://raw.githubusercontent.com/HIPS/neural-fingerprint/"
    "d26dae3a293a736261fee307b28b37e548c5f218/data/"
)
_DEEPDTA = "https://github.com/hkmztrk/DeepDTA/tree/a546a8433a6822e958f36171c4356ad6f414d623/data/"
_GL_SRC = "GLambard/Molecules_Dataset_Collection originals/ (file commit 874041b)"
_MIT_GL = "MIT (GLambard repo); data originally from MoleculeNet"

TOX21_TASKS = (
    "NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
    "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53",
)  # fmt: skip
MUV_TASKS = (
    "MUV-466", "MUV-548", "MUV-600", "MUV-644", "MUV-652", "MUV-689", "MUV-692", "MUV-712",
    "MUV-713", "MUV-733", "MUV-737", "MUV-810", "MUV-832", "MUV-846", "MUV-852", "MUV-858",
    "MUV-859",
)  # fmt: skip
SIDER_TASKS = (
    "Hepatobiliary disorders",
    "Metabolism and nutrition disorders",
    "Product issues",
    "Eye disorders",
    "Investigations",
    "Musculoskeletal and connective tissue disorders",
    "Gastrointestinal disorders",
    "Social circumstances",
    "Immune system disorders",
    "Reproductive system and breast disorders",
    "Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
    "General disorders and administration site conditions",
    "Endocrine disorders",
    "Surgical and medical procedures",
    "Vascular disorders",
    "Blood and lymphatic system disorders",
    "Skin and subcutaneous tissue disorders",
    "Congenital, familial and genetic disorders",
    "Infections and infestations",
    "Respiratory, thoracic and mediastinal disorders",
    "Psychiatric disorders",
    "Renal and urinary disorders",
    "Pregnancy, puerperium and perinatal conditions",
    "Ear and labyrinth disorders",
    "Cardiac disorders",
    "Nervous system disorders",
    "Injury, poisoning and procedural complications",
)
QM9_TARGETS = (
    "Dipole_debye", "Polarizability_bohr3", "HOMO_au", "LUMO_au", "HOMO_LUMO_gap_au",
    "R2_bohr2", "ZPVE_au", "InternalEnergy_0K_au", "InternalEnergy_298K_au",
    "Enthalphy_298K_au", "GibbsFreeEnergy_298K_au", "Heatcapacity_Cv_cal_mol_K",
)  # fmt: skip
_DTA_FILES = (
    "ligands_can.txt",
    "proteins.txt",
    "Y.npy",
    "folds/train_fold_setting1.txt",
    "folds/test_fold_setting1.txt",
)

_SPECS_LIST: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="bbbp",
        description="Blood-brain barrier penetration (MoleculeNet BBBP)",
        task_type="classification", smiles_col="smiles", target_cols=("p_np",),
        metric="roc_auc", split="scaffold", relpath="moleculenet/BBBP.csv",
        url=_GL + "BBBP.csv",
        sha256="d07a38487aeac5cee5508413e468043ef3097451d2a112701c2d60be9ec6b662",
        n_rows=2050, bundled=True, source=_GL_SRC + "; Martins et al. 2012", licence=_MIT_GL,
        exclude_cols=("num", "name"),
    ),
    DatasetSpec(
        name="tox21",
        description="Tox21 2014 challenge, 12 nuclear-receptor / stress-response assays",
        task_type="classification", smiles_col="smiles", target_cols=TOX21_TASKS,
        metric="roc_auc", split="scaffold", relpath="moleculenet/tox21.csv",
        url=_GL + "tox21.csv",
        sha256="7d7e7facd853a63e79ddce4e9c3fcb7a0d83a1c300b603031c0f2c64fbe77761",
        n_rows=7831, bundled=True, source=_GL_SRC + "; Tox21 Challenge 2014", licence=_MIT_GL,
        exclude_cols=("mol_id",),
    ),
    DatasetSpec(
        name="toxcast",
        description="ToxCast in-vitro assays (617 tasks = every column but smiles)",
        task_type="classification", smiles_col="smiles", target_cols=None, n_tasks=617,
        metric="roc_auc", split="scaffold", relpath="moleculenet/toxcast_data.csv.gz",
        url=_DC + "7024c026a305ef6804a15f07fb3d81205d243140/"
        "examples/toxcast/processing/toxcast_data.csv.gz",
        sha256="56041515e0bb63c1787a26ecdbeb2bd7ae1f538681caa1b03f768853cf81b1a7",
        n_rows=8615, bundled=True,
        source="deepchem/deepchem examples/toxcast/processing/toxcast_data.csv.gz @ 7024c02 "
        "(blob c0f60632); Richard et al. 2016",
        licence="MIT (deepchem)",
    ),
    DatasetSpec(
        name="sider",
        description="SIDER side effects grouped into 27 system-organ classes",
        task_type="classification", smiles_col="smiles", target_cols=SIDER_TASKS,
        metric="roc_auc", split="scaffold", relpath="moleculenet/sider.csv",
        url=_GL + "sider.csv",
        sha256="71efc6ac4ca82d6545bc512509863281be0f17234afd7adaf71a71899988302e",
        n_rows=1427, bundled=True, source=_GL_SRC + "; Kuhn et al. 2016", licence=_MIT_GL,
    ),
    DatasetSpec(
        name="clintox",
        description="ClinTox: FDA approval and clinical-trial toxicity",
        task_type="classification", smiles_col="smiles",
        target_cols=("FDA_APPROVED", "CT_TOX"),
        metric="roc_auc", split="scaffold", relpath="moleculenet/clintox.csv",
        url=_GL + "clintox.csv",
        sha256="0bd655529cebe6d94addd48b8afdab6fa0438b4503a470866231793f235d7e61",
        n_rows=1484, bundled=True, source=_GL_SRC + "; Gayvert et al. 2016", licence=_MIT_GL,
    ),
    DatasetSpec(
        name="muv",
        description="Maximum Unbiased Validation, 17 PubChem assays (84% labels missing)",
        task_type="classification", smiles_col="smiles", target_cols=MUV_TASKS,
        metric="roc_auc", split="scaffold", relpath="moleculenet/muv.csv.gz",
        url=_DC + "d5e33097fe6dfad808b1502e0649e5e2769c83a0/datasets/muv.csv.gz",
        sha256="93c8b4a37c5996c76e57d5f3f065fb8b7cf1c19067011eff2293fd2a94ce274a",
        n_rows=93127,
        source="deepchem/deepchem datasets/muv.csv.gz @ d5e3309 (blob be51761f); "
        "Rohrer & Baumann 2009",
        licence="MIT (deepchem)", exclude_cols=("mol_id",),
    ),
    DatasetSpec(
        name="hiv",
        description="DTP AIDS antiviral screen: HIV replication inhibition (CM+CA = 1)",
        task_type="classification", smiles_col="smiles", target_cols=("HIV_active",),
        metric="roc_auc", split="scaffold", relpath="moleculenet/HIV.csv.gz",
        url=_GL + "HIV.csv",
        sha256="54713c3205055055ea4214e8c4b0d22d93af7e54ad2c48f4edc866e161e57262",
        n_rows=41127, source=_GL_SRC + "; DTP AIDS antiviral screen", licence=_MIT_GL,
        exclude_cols=("activity",),
    ),
    DatasetSpec(
        name="bace",
        description="BACE-1 inhibitors, binary label Class (pIC50 kept as an extra column)",
        task_type="classification", smiles_col="smiles", target_cols=("Class",),
        metric="roc_auc", split="scaffold", relpath="moleculenet/bace.csv.gz",
        url=_GL + "bace.csv",
        sha256="d36f089649984f7bfaa4589ccc3ae907b831780a01ccfd065a5b604939e1a5df",
        n_rows=1513, bundled=True, source=_GL_SRC + "; Subramanian et al. 2016",
        licence=_MIT_GL, keep_cols=("pIC50",),
    ),
    DatasetSpec(
        name="esol",
        description="ESOL (Delaney) aqueous solubility, log mol/L",
        task_type="regression", smiles_col="smiles",
        target_cols=("measured log solubility in mols per litre",),
        metric="rmse", split="scaffold", relpath="moleculenet/delaney-processed.csv",
        url=_GL + "ESOL_delaney-processed.csv",
        sha256="8c06a76f0c6487d29ab0f903e6a7a7139f189ab3c1178f159c8be8964602f189",
        n_rows=1128, bundled=True, source=_GL_SRC + "; Delaney 2004", licence=_MIT_GL,
    ),
    DatasetSpec(
        name="freesolv",
        description="FreeSolv hydration free energy, kcal/mol (experimental)",
        task_type="regression", smiles_col="smiles", target_cols=("expt",),
        metric="rmse", split="scaffold", relpath="moleculenet/SAMPL.csv",
        url=_GL + "FreeSolv_SAMPL.csv",
        sha256="ab5895d914ee87cb563bd7b9611e869527bba45bec6b014d34dc495a0f9dcb72",
        n_rows=642, bundled=True, source=_GL_SRC + "; Mobley & Guthrie 2014", licence=_MIT_GL,
        exclude_cols=("iupac", "calc"),
    ),
    DatasetSpec(
        name="lipo",
        description="Lipophilicity (AstraZeneca logD7.4 deposited in ChEMBL)",
        task_type="regression", smiles_col="smiles", target_cols=("exp",),
        metric="rmse", split="scaffold", relpath="moleculenet/Lipophilicity.csv",
        url=_GL + "Lipophilicity.csv",
        sha256="aed41590cb30609d51d8e08ad3ff06495a76e80e211358801f596b10da69bacd",
        n_rows=4200, bundled=True, source=_GL_SRC + "; AstraZeneca via ChEMBL",
        licence=_MIT_GL, exclude_cols=("CMPD_CHEMBLID",),
    ),
    DatasetSpec(
        name="malaria",
        description="P. falciparum growth inhibition (Gamo et al. 2010), regression",
        task_type="regression", smiles_col="smiles", target_cols=("activity",),
        metric="rmse", split="scaffold", relpath="moleculenet/malaria-processed.csv",
        url=_HIPS + "2015-06-03-malaria/malaria-processed.csv",
        sha256="2cea95027569d94a05093f0e1ea9ae174b721298380d1dfc33f2eb802a0cf008",
        n_rows=9999,
        source="HIPS/neural-fingerprint data/2015-06-03-malaria @ d26dae3; Gamo et al. 2010",
        licence="MIT (Harvard)",
    ),
    DatasetSpec(
        name="cep",
        description="Harvard Clean Energy Project power conversion efficiency, regression",
        task_type="regression", smiles_col="smiles", target_cols=("PCE",),
        metric="rmse", split="scaffold", relpath="moleculenet/cep-processed.csv.gz",
        url=_HIPS + "2015-06-02-cep-pce/cep-processed.csv",
        sha256="99c3def57a412e0ac3922194d0605b6a8a9056938706a44bc4ba1d35fe8bc8c0",
        n_rows=29978,
        source="HIPS/neural-fingerprint data/2015-06-02-cep-pce @ d26dae3; "
        "Hachmann et al. 2011",
        licence="MIT (Harvard)",
    ),
    DatasetSpec(
        name="davis",
        description="Davis kinase Kd, 68 drugs x 442 kinases (use pKd); DeepDTA setting-1 folds",
        task_type="dta", smiles_col="smiles", target_cols=(), n_tasks=1,
        metric="mse", split="deepdta", relpath="dta/davis", url=None, sha256=None,
        n_rows=30056, files=_DTA_FILES,
        source=f"hkmztrk/DeepDTA data/davis @ a546a84 ({_DEEPDTA}davis); Y.npy converted from "
        "DeepDTA's pickle Y; Davis et al. 2011",
        licence="DeepDTA repo states no licence",
    ),
    DatasetSpec(
        name="kiba",
        description="KIBA scores, 2111 drugs x 229 kinases; DeepDTA setting-1 folds",
        task_type="dta", smiles_col="smiles", target_cols=(), n_tasks=1,
        metric="mse", split="deepdta", relpath="dta/kiba", url=None, sha256=None,
        n_rows=118254, files=_DTA_FILES,
        source=f"hkmztrk/DeepDTA data/kiba @ a546a84 ({_DEEPDTA}kiba); Y.npy converted from "
        "DeepDTA's pickle Y; Tang et al. 2014",
        licence="DeepDTA repo states no licence",
    ),
    DatasetSpec(
        name="chembl",
        description="ChEMBL 5thresh: 691 target tasks, pChEMBL-like activities in [4, 11] "
        "(threshold them for classification), 0.55% dense",
        task_type="multitask", smiles_col="smiles", target_cols=None, n_tasks=691,
        metric="roc_auc", split="random", relpath="chembl_multitask/chembl_5thresh.csv.gz",
        url=_DC + "14855aa7a6648faeb148058a6808c5c6e73daee9/datasets/chembl_5thresh.csv.gz",
        sha256="84724fc5967c7e4a750d458bf9937b8bd0a9171f5b0b6b1551b7d70487b4295b",
        n_rows=23871,
        source="deepchem/deepchem datasets/chembl_5thresh.csv.gz @ 14855aa (blob bb260e3e); "
        "ChEMBL, Gaulton et al. 2012",
        licence="MIT (deepchem); ChEMBL data CC BY-SA 3.0",
    ),
    DatasetSpec(
        name="qm9",
        description="QM9 DFT geometries (with H) + 12 properties, 130831 molecules",
        task_type="3d", smiles_col="SMILES", target_cols=QM9_TARGETS,
        metric="mae", split="random", relpath="qm9", url=None, sha256=None,
        n_rows=130831, files=("qm9_geom.npz", "qm9_props.csv.gz"), table="qm9_props.csv.gz",
        source="PyPI qm9pack==1.0.3 data/qm9_part{1,2,3}.csv, converted to npz + csv.gz "
        "without changing values; Ramakrishnan et al. 2014",
        licence="MIT (qm9pack)",
    ),
    DatasetSpec(
        name="moses",
        description="MOSES training set: 1.58M drug-like SMILES, unlabeled (pre-training)",
        task_type="unlabeled", smiles_col="SMILES", target_cols=(),
        metric=None, split="random", relpath="unlabeled/moses_train.csv.gz",
        url="https://media.githubusercontent.com/media/molecularsets/moses/"
        "b94468cab4590ced03a98c26a35d3c1e0647d9c9/moses/dataset/data/train.csv.gz",
        sha256="786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c",
        n_rows=1584663,
        source="molecularsets/moses moses/dataset/data/train.csv.gz (Git LFS; same bytes as "
        "PyPI molsets==0.3.1); Polykovskiy et al. 2020",
        licence="MIT",
    ),
)  # fmt: skip

_SPECS: dict[str, DatasetSpec] = {s.name: s for s in _SPECS_LIST}


# --------------------------------------------------------------------------------------------
# Looking up specs
# --------------------------------------------------------------------------------------------


def list_specs() -> list[DatasetSpec]:
    """All registered datasets, in registry order."""
    return list(_SPECS_LIST)


def names() -> list[str]:
    """All registered dataset names, in registry order."""
    return [s.name for s in _SPECS_LIST]


def is_registered(name: str) -> bool:
    """True when ``name`` (case-insensitive) is a registry name."""
    return name.strip().lower() in _SPECS


def get_spec(name: str | DatasetSpec) -> DatasetSpec:
    """The spec for a registry name (case-insensitive); unknown names list every valid one."""
    if isinstance(name, DatasetSpec):
        return name
    key = str(name).strip().lower()
    if key in _SPECS:
        return _SPECS[key]
    import difflib

    close = difflib.get_close_matches(key, list(_SPECS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise DatasetNotFoundError(
        f"unknown dataset {name!r}.{hint} Valid names: {', '.join(_SPECS)}. "
        "To use your own data, pass a CSV path instead of a name."
    )


def resolve_target_cols(spec: DatasetSpec, columns: Iterable[str]) -> tuple[str, ...]:
    """The spec's target columns checked against ``columns`` (None -> all but smiles/excluded)."""
    cols = [str(c) for c in columns]
    if spec.target_cols is None:
        skip = {spec.smiles_col, *spec.exclude_cols, *spec.keep_cols}
        return tuple(c for c in cols if c not in skip)
    present = set(cols)
    missing = [c for c in spec.target_cols if c not in present]
    if missing:
        raise InvalidInputError(
            f"dataset {spec.name!r}: target column(s) {missing} not in the file; "
            f"its columns are: {_short_list(cols)}"
        )
    return spec.target_cols


# --------------------------------------------------------------------------------------------
# Finding files on disk
# --------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Download cache: ``$FEWMOL_CACHE/data``, else ``${XDG_CACHE_HOME:-~/.cache}/fewmol/data``."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "data"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fewmol" / "data"


def data_roots(data_dir: str | os.PathLike[str] | None = None) -> list[tuple[Origin, Path]]:
    """The directories searched, in order: ``data_dir``, each ``$FEWMOL_DATA`` entry, the cache."""
    roots: list[tuple[Origin, Path]] = []
    if data_dir is not None and str(data_dir) != "":
        roots.append(("data_dir", Path(data_dir).expanduser()))
    for part in os.environ.get(DATA_ENV, "").split(os.pathsep):
        if part.strip():
            roots.append(("$FEWMOL_DATA", Path(part.strip()).expanduser()))
    roots.append(("cache", cache_dir()))
    return roots


def _toggle_gz(rel: str) -> str:
    return rel[: -len(".gz")] if rel.endswith(".gz") else rel + ".gz"


def _download_relpath(spec: DatasetSpec) -> str:
    """Where a download of spec.url goes under the cache (keeps the URL's compression)."""
    assert spec.url is not None
    url_gz = spec.url.split("?", 1)[0].endswith(".gz")
    if url_gz == spec.relpath.endswith(".gz"):
        return spec.relpath
    return _toggle_gz(spec.relpath)


def _candidates(spec: DatasetSpec, root: Path) -> list[Path]:
    if spec.is_dir:
        rels = [spec.relpath, Path(spec.relpath).name]
    else:
        base = Path(spec.relpath).name
        rels = [spec.relpath, _toggle_gz(spec.relpath), base, _toggle_gz(base)]
    out: list[Path] = []
    for rel in rels:
        p = root / rel
        if p not in out:
            out.append(p)
    return out


def _missing_files(spec: DatasetSpec, directory: Path) -> list[str]:
    return [f for f in spec.files if not (directory / f).is_file()]


def find_local(
    name: str | DatasetSpec,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    use_bundled: bool = True,
) -> tuple[Path, Origin] | None:
    """Where the dataset is on disk now, and from which source; None if it must be fetched."""
    spec = get_spec(name)
    if use_bundled and spec.bundled and spec.bundled_path.is_file():
        return spec.bundled_path, "bundled"
    for origin, root in data_roots(data_dir):
        for cand in _candidates(spec, root):
            if spec.is_dir:
                if cand.is_dir() and not _missing_files(spec, cand):
                    return cand, origin
            elif cand.is_file():
                return cand, origin
    return None


def resolve(
    name: str | DatasetSpec,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    use_bundled: bool = True,
) -> Path:
    """Path of the dataset's file (or directory): bundled, data_dir, $FEWMOL_DATA, cache, URL."""
    spec = get_spec(name)
    hit = find_local(spec, data_dir, use_bundled=use_bundled)
    if hit is not None:
        return hit[0]
    if download and spec.url is not None:
        return fetch(spec)
    raise DatasetNotFoundError(_not_found_message(spec, data_dir, download))


def _not_found_message(
    spec: DatasetSpec, data_dir: str | os.PathLike[str] | None, download: bool
) -> str:
    lines = [f"dataset {spec.name!r} was not found. Looked in:"]
    for origin, root in data_roots(data_dir):
        where = root / spec.relpath
        note = ""
        if spec.is_dir and where.is_dir():
            note = f" (exists but lacks: {', '.join(_missing_files(spec, where))})"
        lines.append(f"  - {where}  [{origin}]{note}")
    if not os.environ.get(DATA_ENV):
        lines.append(f"  (${DATA_ENV} is not set)")
    if spec.is_dir:
        what = f"a directory DIR/{spec.relpath}/ holding: {', '.join(spec.files)}"
    else:
        what = f"the file at DIR/{spec.relpath} (plain or gzipped)"
    lines.append(
        f"Fix: pass --data-dir DIR (or set ${DATA_ENV}=DIR) where DIR contains {what}; "
        "DIR is laid out like the project's shared/data directory."
    )
    if spec.url is None:
        lines.append(f"fewmol cannot download {spec.name!r} by itself. Source: {spec.source}.")
    elif not download:
        lines.append(f"Downloading was disabled; it can be fetched from {spec.url}.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Checksums and downloads
# --------------------------------------------------------------------------------------------


def file_sha256(path: str | os.PathLike[str], decompress: bool = False) -> str:
    """sha256 of a file's bytes, or of its gunzipped bytes when ``decompress`` is true."""
    h = hashlib.sha256()
    opener = gzip.open if decompress else open
    with opener(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(name: str | DatasetSpec, path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds the bytes served at the spec's URL (gzipped copies accepted)."""
    spec = get_spec(name)
    if spec.sha256 is None:
        raise FewmolError(f"dataset {spec.name!r} has no registered sha256 to check against")
    path = Path(path)
    if file_sha256(path) == spec.sha256:
        return True
    url_gz = (spec.url or "").endswith(".gz")
    if path.suffix == ".gz" and not url_gz:
        return file_sha256(path, decompress=True) == spec.sha256
    return False


@contextmanager
def _progress(total: int | None, label: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; a no-op otherwise."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def fetch(name: str | DatasetSpec, cache: str | os.PathLike[str] | None = None) -> Path:
    """Download the spec's URL into the cache, check sha256, atomically rename; return the path."""
    spec = get_spec(name)
    if spec.url is None or spec.sha256 is None:
        raise DatasetNotFoundError(_not_found_message(spec, None, False))
    dest = Path(cache).expanduser() if cache is not None else cache_dir()
    dest = dest / _download_relpath(spec)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as e:
        raise DownloadError(f"cannot write the download cache at {dest.parent}: {e}") from e
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    try:
        request = urllib.request.Request(spec.url, headers={"User-Agent": "fewmol"})
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as resp,
        ):
            length = resp.headers.get("Content-Length") if resp.headers else None
            total = int(length) if length and length.isdigit() else None
            with _progress(total, f"downloading {spec.name}") as advance:
                while chunk := resp.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    advance(len(chunk))
        got = h.hexdigest()
        if got != spec.sha256:
            raise ChecksumMismatchError(
                f"sha256 mismatch for dataset {spec.name!r} downloaded from {spec.url}: "
                f"expected {spec.sha256}, got {got}. The partial file was deleted; the source "
                "may have changed or the download was corrupted. Retry, or place a trusted copy "
                f"under --data-dir / ${DATA_ENV} at DIR/{spec.relpath}."
            )
        os.replace(tmp, dest)
    except FewmolError:
        tmp.unlink(missing_ok=True)
        raise
    except (OSError, ValueError, urllib.error.URLError) as e:
        tmp.unlink(missing_ok=True)
        raise DownloadError(
            f"could not download dataset {spec.name!r} from {spec.url}: {e}. If this machine is "
            f"offline, fetch that file elsewhere and put it at DIR/{spec.relpath} (plain or "
            f"gzipped), then pass --data-dir DIR or set ${DATA_ENV}=DIR."
        ) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


# --------------------------------------------------------------------------------------------
# Loading tables
# --------------------------------------------------------------------------------------------


def table_path(name: str | DatasetSpec, path: str | os.PathLike[str]) -> Path:
    """The CSV to read for a resolved dataset path (the directory's table for dir datasets)."""
    spec = get_spec(name)
    path = Path(path)
    if not spec.is_dir:
        return path
    if spec.table is None:
        raise FewmolError(
            f"dataset {spec.name!r} ({spec.task_type}) is a directory of files "
            f"({', '.join(spec.files)}), not one table; use its dedicated loader."
        )
    return path / spec.table


def load_frame(
    name: str | DatasetSpec,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    target_cols: Sequence[str] | None = None,
    download: bool = True,
) -> pd.DataFrame:
    """The dataset as a frame: smiles column (str) then target columns (float, empty -> NaN)."""
    import pandas as pd

    spec = get_spec(name)
    path = table_path(spec, resolve(spec, data_dir, download=download))
    header = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    if spec.smiles_col not in header:
        raise InvalidInputError(
            f"dataset {spec.name!r}: SMILES column {spec.smiles_col!r} not in {path}; "
            f"its columns are: {_short_list(header)}"
        )
    if target_cols is None:
        cols = resolve_target_cols(spec, header)
    else:
        cols = tuple(target_cols)
        missing = [c for c in cols if c not in header]
        if missing:
            raise InvalidInputError(
                f"dataset {spec.name!r}: column(s) {missing} not in {path}; "
                f"its columns are: {_short_list(header)}"
            )
    try:
        frame = pd.read_csv(
            path,
            usecols=[spec.smiles_col, *cols],
            dtype={spec.smiles_col: str, **{c: "float64" for c in cols}},
            keep_default_na=False,
            na_values={c: ["", "nan", "NaN"] for c in cols},
        )
    except ValueError as e:
        raise InvalidInputError(f"dataset {spec.name!r}: non-numeric label in {path}: {e}") from e
    return frame[[spec.smiles_col, *cols]]


def _short_list(items: Sequence[str], n: int = 12) -> str:
    shown = ", ".join(repr(c) for c in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


__all__ = [
    "BUNDLED_DIR",
    "ChecksumMismatchError",
    "DatasetSpec",
    "DownloadError",
    "cache_dir",
    "data_roots",
    "fetch",
    "file_sha256",
    "find_local",
    "get_spec",
    "is_registered",
    "list_specs",
    "load_frame",
    "names",
    "resolve",
    "resolve_target_cols",
    "table_path",
    "verify",
]
