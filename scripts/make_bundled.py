"""Build src/fewmol/data/bundled/<name>.csv.gz from the shared data directory.

For every registry dataset with ``bundled=True`` this keeps the SMILES column, the target
columns and the spec's ``keep_cols`` (in that order), with every value copied unchanged
(the csv module, no number parsing), rows in source order, ``\\n`` line endings, and writes
it gzipped with a zero timestamp so that reruns give the same bytes. Before reading, the
source file is checked against the registry's sha256.

Usage: python scripts/make_bundled.py [--src ../shared/data] [--out src/fewmol/data/bundled]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SRC = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "src" / "fewmol" / "data" / "bundled"

if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from fewmol.data import registry  # noqa: E402


def _open_text(path: Path) -> io.TextIOBase:
    """Open a plain or gzipped CSV as text with universal newlines left to the csv module."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def kept_columns(spec: registry.DatasetSpec, header: list[str]) -> list[str]:
    """Columns a bundled copy keeps: smiles, targets, then the spec's keep_cols."""
    targets = registry.resolve_target_cols(spec, header)
    cols = [spec.smiles_col, *targets, *spec.keep_cols]
    missing = [c for c in cols if c not in header]
    if missing:
        raise SystemExit(f"{spec.name}: columns {missing} missing from the source header")
    if len(set(header)) != len(header):
        raise SystemExit(f"{spec.name}: duplicate column names in the source header")
    return cols


def subset_csv(spec: registry.DatasetSpec, source: Path) -> bytes:
    """The bundled CSV (uncompressed bytes) built from a source file in the shared layout."""
    with _open_text(source) as f:
        reader = csv.reader(f)
        header = next(reader)
        cols = kept_columns(spec, header)
        idx = [header.index(c) for c in cols]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(cols)
        n = 0
        for lineno, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise SystemExit(f"{source}:{lineno}: {len(row)} fields, header has {len(header)}")
            writer.writerow([row[i] for i in idx])
            n += 1
    if n != spec.n_rows:
        raise SystemExit(f"{spec.name}: {n} rows in {source}, registry says {spec.n_rows}")
    return buf.getvalue().encode("utf-8")


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (no file name, mtime 0, level 9)."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Write every bundled dataset; print each file's size and the total."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help="shared data root")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="bundled output dir")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for spec in registry.list_specs():
        if not spec.bundled:
            continue
        source = args.src / spec.relpath
        if not registry.verify(spec, source):
            raise SystemExit(f"{source}: sha256 differs from the registry's {spec.sha256}")
        data = gzip_bytes(subset_csv(spec, source))
        dest = args.out / f"{spec.name}.csv.gz"
        tmp = dest.with_suffix(".gz.tmp")
        tmp.write_bytes(data)
        tmp.replace(dest)
        total += len(data)
        print(f"{dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest}: {len(data):,} B")
    print(f"total: {total:,} B")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
