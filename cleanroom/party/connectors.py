"""Connectors: find a table's export (local CSV/Parquet or S3), check it as a file, and scan it lazily
into canonical column names. Every problem is a DataContractError naming party, file, column and fix.

Runs inside the party's own process; S3 objects are fetched into the party's own `cache/`.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cleanroom.errors import DataContractError
from cleanroom.party.canonical import SCHEMAS, TableSchema
from cleanroom.spec.columns import ABSENT_DEFAULTS
from cleanroom.spec.models import Party
from cleanroom.spec.sources import CanonicalTable, Encoding, SourceFormat, TableSource

CACHE_DIR = Path("cache")
IGNORED_PREFIX = "__ignored__"
READ_CHUNK = 16 << 20


@dataclass(frozen=True)
class LocatedExport:
    """A table's export as a local file the party can scan, with the digest of its content."""

    table: CanonicalTable
    source: TableSource
    path: Path
    label: str  # "party alpine: raw/kunden.csv": what errors and reports call it
    sha256: str  # of the export (and of its product hierarchy file, when it has one)
    lookup_path: Path | None = None  # products: the hierarchy file its categories come from

    @property
    def schema(self) -> TableSchema:
        return SCHEMAS[self.table]

    def error(self, message: str, fix: str, column: str | None = None) -> DataContractError:
        where = f"{self.label}, column {column}" if column else self.label
        return DataContractError(message, where=where, fix=fix)


def locate_export(party: Party, table: CanonicalTable, workspace: Path) -> LocatedExport:
    """Find the export, fetch it from S3 if needed, verify it is a non-empty file in the declared
    encoding (transcoding to UTF-8 in the party's cache when it is not UTF-8), and hash its content
    (with the product hierarchy file it takes categories from, if any)."""
    assert party.data is not None, "only data parties have exports"
    located = _locate(party, table, workspace)
    lookup = located.source.category_from
    if lookup is None:
        return located
    path = workspace / lookup.location
    if not path.is_file() or path.stat().st_size == 0:
        raise DataContractError(
            "the product hierarchy file is missing or empty",
            where=f"party {party.name}: {lookup.location}",
            fix="export it there, or correct data.tables.products.category_from.location",
        )
    combined = hashlib.sha256(f"{located.sha256}:{_sha256(path)}".encode()).hexdigest()
    return LocatedExport(located.table, located.source, located.path, located.label, combined, path)


def _locate(party: Party, table: CanonicalTable, workspace: Path) -> LocatedExport:
    assert party.data is not None
    source = party.data.tables[table]
    label = f"party {party.name}: {source.location}"
    if source.location.startswith("s3://"):
        path = _fetch_from_s3(source, table, workspace, label)
    else:
        path = workspace / source.location
    if not path.is_file():
        raise DataContractError("file not found", where=label, fix=f"export the {table.value} table to that path")
    if path.stat().st_size == 0:
        raise DataContractError("file is empty", where=label, fix="re-export the table with its header row")
    if source.resolved_format is SourceFormat.PARQUET:
        return LocatedExport(table, source, path, label, _sha256(path))
    if source.encoding is Encoding.UTF8:
        return LocatedExport(table, source, path, label, _sha256_checking_utf8(path, label))
    digest = _sha256(path)
    return LocatedExport(table, source, _transcode(path, source.encoding, workspace, table), label, digest)


@dataclass(frozen=True)
class ColumnPlan:
    """Which canonical columns come from which export column, and which the export does not have."""

    read: dict[str, str]  # canonical -> export column
    absent: list[str]  # read as null, or as their default (products without a category: "uncategorized")


def plan_columns(export: LocatedExport, required_for: Callable[[set[str]], set[str]]) -> ColumnPlan:
    """Map the export's header to canonical columns. `required_for(available)`: what the approved analyses
    need, given the canonical columns the export has. A required column that is missing, and an export
    column that is neither mapped nor ignored, are errors (all of them in one)."""
    names = _export_columns(export)
    declared_absent = set(export.source.absent)
    lookup = export.source.category_from
    available = {
        c for c in export.schema.names if c not in declared_absent and export.source.column(c).source in names
    }
    required = required_for(available)
    read, absent, missing = {}, [], []
    for canonical in export.schema.names:
        name = export.source.column(canonical).source
        if lookup is not None and canonical == "category":
            name = lookup.key  # the category comes from the hierarchy file, by this column
            if name in names:
                read[canonical] = name
            else:
                missing.append(f"{canonical} (the key '{name}' of data.tables.products.category_from)")
        elif canonical not in declared_absent and name in names:
            read[canonical] = name
        elif canonical in required and canonical not in declared_absent:
            missing.append(f"{canonical} (export column '{name}')")
        else:
            absent.append(canonical)
    if missing:
        raise export.error(
            f"missing column(s) an approved analysis needs: {', '.join(missing)}",
            fix="export the column, map the canonical name to yours under data.tables.*.columns, or declare it "
            "under data.tables.*.absent (`cleanroom check-spec` then says which analysis cannot run)",
        )
    extra = sorted(set(names) - set(read.values()) - set(export.source.ignore_columns))
    if extra:
        raise export.error(
            f"unexpected column(s) {', '.join(extra)}",
            fix="map them, or list them under ignore_columns so a changed export is noticed on purpose",
        )
    return ColumnPlan(read, absent)


def scan_export(export: LocatedExport, plan: ColumnPlan) -> pl.LazyFrame:
    """The export's mapped columns under canonical names, as exported (CSV cells stay text), absent ones
    as null text. Ignored columns come along under IGNORED_PREFIX: polars checks a row's field count
    only when every column is read (a row with an extra field was silently cut), so the counting pass
    reads them too."""
    if export.source.resolved_format is SourceFormat.PARQUET:
        frame = pl.scan_parquet(export.path)
    else:
        frame = pl.scan_csv(export.path, infer_schema=False, encoding="utf8", separator=export.source.separator)
    names = frame.collect_schema().names()
    ignored = [pl.col(c).alias(IGNORED_PREFIX + c) for c in export.source.ignore_columns if c in names]
    columns = []
    for canonical in export.schema.names:
        if canonical in plan.read:
            columns.append(pl.col(plan.read[canonical]).alias(canonical))
        else:
            columns.append(pl.lit(ABSENT_DEFAULTS.get((export.table, canonical)), pl.String).alias(canonical))
    frame = frame.select(*columns, *ignored)
    if export.lookup_path is None:
        return frame
    # The category column holds the hierarchy key so far: the file's name for it replaces it.
    named = frame.with_columns(pl.col("category").cast(pl.String)).join(
        category_lookup(export), left_on="category", right_on="__key", how="left", maintain_order="left"
    )
    return named.with_columns(pl.col("__name").alias("category")).drop("__name")


def category_lookup(export: LocatedExport) -> pl.LazyFrame:
    """The product hierarchy file as (key, category name), both text; read whole (it is small)."""
    lookup = export.source.category_from
    assert lookup is not None and export.lookup_path is not None
    where = f"{export.label.split(':', 1)[0]}: {lookup.location}"
    try:
        if export.lookup_path.suffix == ".parquet":
            table = pl.read_parquet(export.lookup_path)
        else:
            text = export.lookup_path.read_bytes().decode(lookup.encoding.value)
            table = pl.read_csv(text.encode(), separator=lookup.separator, infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as exc:
        raise DataContractError(
            "the product hierarchy file cannot be read",
            where=where,
            fix="check its format, separator and encoding (data.tables.products.category_from)",
        ) from exc
    missing = [c for c in (lookup.key, lookup.category) if c not in table.columns]
    if missing:
        raise DataContractError(
            f"the product hierarchy file has no column {', '.join(missing)}",
            where=where,
            fix=f"its columns are {', '.join(table.columns)}: correct category_from.key / .category",
        )
    pairs = table.select(
        pl.col(lookup.key).cast(pl.String).alias("__key"), pl.col(lookup.category).cast(pl.String).alias("__name")
    )
    if pairs["__key"].is_duplicated().any():
        raise DataContractError(
            f"the product hierarchy file names a category twice for some {lookup.key}",
            where=where,
            fix="keep one row per key",
        )
    return pairs.lazy()


def malformed_csv(export: LocatedExport) -> DataContractError:
    """The one line for an export polars could not split into rows: the first bad line, found with
    Python's csv module (only on this error path: it is slow but exact)."""
    header_fields, line = None, 0
    try:
        with open(export.path, newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle, strict=True, delimiter=export.source.separator):
                line += 1
                header_fields = header_fields or len(row)
                if len(row) != header_fields and row:
                    return export.error(
                        f"line {line} has {len(row)} fields, the header {header_fields}",
                        fix="quote fields that contain a comma, or correct that line",
                    )
    except csv.Error:
        return export.error(
            f"line {line + 1}: a quoted field is not closed",
            fix="close the quote, or double a quote character inside a quoted field",
        )
    # Not polars' own text: it quotes the cell it could not parse, and this line leaves the party.
    return export.error("cannot be parsed as CSV", fix="check the file's quoting, separators and field counts")


def _export_columns(export: LocatedExport) -> list[str]:
    try:
        if export.source.resolved_format is SourceFormat.PARQUET:
            return pl.scan_parquet(export.path).collect_schema().names()
        return (
            pl.scan_csv(export.path, n_rows=0, infer_schema=False, separator=export.source.separator)
            .collect_schema()
            .names()
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise export.error(
            f"cannot be read as {export.source.resolved_format.value}",
            fix="check the file's format (data.tables.*.format) and that it is complete",
        ) from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256_checking_utf8(path: Path, label: str) -> str:
    """One streaming pass: content digest plus a strict UTF-8 check that names the first bad line."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    lines_before = 0
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines_before + chunk.count(b"\n", 0, exc.start) + 1
                raise DataContractError(
                    f"line {line} is not valid UTF-8 (mixed encodings in one file)",
                    where=label,
                    fix="re-export the whole file as UTF-8, or declare its encoding (data.tables.*.encoding)",
                ) from None
            lines_before += chunk.count(b"\n")
    return digest.hexdigest()


def _transcode(path: Path, encoding: Encoding, workspace: Path, table: CanonicalTable) -> Path:
    """Latin-1 / CP1252 exports become UTF-8 in the party's cache, streamed in chunks."""
    target = workspace / CACHE_DIR / f"{table.value}.utf8.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    decoder = codecs.getincrementaldecoder(encoding.value)("strict")
    with path.open("rb") as source, temporary.open("w", encoding="utf-8", newline="") as out:
        while chunk := source.read(READ_CHUNK):
            out.write(decoder.decode(chunk))
        out.write(decoder.decode(b"", final=True))
    temporary.replace(target)
    return target


def _fetch_from_s3(source: TableSource, table: CanonicalTable, workspace: Path, label: str) -> Path:
    """Download the object into the party's cache (streamed, multipart); reuse it while its ETag holds."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = source.location.removeprefix("s3://").split("/", 1)
    suffix = ".parquet" if source.resolved_format is SourceFormat.PARQUET else ".csv"
    target = workspace / CACHE_DIR / f"{table.value}{suffix}"
    etag_file = target.with_suffix(target.suffix + ".etag")
    client = boto3.client("s3", endpoint_url=source.endpoint_url)
    try:
        etag = client.head_object(Bucket=bucket, Key=key)["ETag"]
        if target.exists() and etag_file.exists() and etag_file.read_text() == etag:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".part")
        client.download_file(bucket, key, str(temporary))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        if code in ("404", "NoSuchKey", "NoSuchBucket"):
            raise DataContractError(
                "object not found", where=label, fix=f"export the {table.value} table to that bucket and key"
            ) from exc
        raise DataContractError(
            f"S3 refused the object ({code})",
            where=label,
            fix="check the bucket, key and this party's AWS credentials (AWS_* environment variables)",
        ) from exc
    except BotoCoreError as exc:
        raise DataContractError(
            "S3 is unreachable", where=label, fix="check data.tables.*.endpoint_url and the network"
        ) from exc
    temporary.replace(target)
    etag_file.write_text(etag)
    return target
