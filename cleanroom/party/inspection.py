"""`cleanroom inspect EXPORT`: sniff an export a retailer has never shown the product, and propose the
spec's section for it (table, file options, column mapping, formats, absent columns).

The file's shape (encoding, separator) comes from its first MiB; every column is then profiled over the
whole file in one streaming polars pass: how many cells are filled, how many distinct values (HyperLogLog
estimate), and which share of them parses as an integer, an amount (decimal point or comma), a GTIN, an
email, or a date/timestamp in each candidate format. Names suggest a canonical column; values confirm it
(a column named like a date that does not parse as one is not proposed as the purchase time). Runs on the
party's own host: it prints a profile of the party's own file, never cell values.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from cleanroom.spec.columns import CANONICAL_COLUMNS, KEY_COLUMNS
from cleanroom.spec.sources import CanonicalTable

SNIFF_BYTES = 1 << 20
SEPARATORS = ",;\t|"
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y%m%d")
TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
)
PATTERNS = {
    "integer": r"^-?[0-9]+$",
    "amount": r"^-?[0-9]+(\.[0-9]{1,6})?$",  # whole amounts too: 12 beside 12.5
    "amount_comma": r"^-?[0-9]+(,[0-9]{1,6})?$",
    "gtin": r"^[0-9]{8,14}$",
    "email": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    "phone": r"^\+?[0-9 ()/-]{7,20}$",
}
PARSES = 0.98  # a column "is" a type when this share of its filled cells parse as it

# Export column names (lower case, without spaces, dashes and underscores) that suggest a canonical column.
NAME_HINTS: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customerid",
        "customer",
        "custid",
        "clientid",
        "client",
        "kundennr",
        "kunde",
        "userid",
        "user",
        "loyaltyid",
        "memberid",
        "cardno",
    ),
    "product_id": (
        "productid",
        "product",
        "sku",
        "stockcode",
        "itemid",
        "item",
        "article",
        "artikel",
        "artikelnr",
        "ean",
        "gtin",
        "upc",
        "plu",
    ),
    "transaction_id": ("transactionid", "lineid", "positionid", "position", "txid", "orderlineid"),
    "basket_id": (
        "basketid",
        "basket",
        "invoice",
        "invoiceno",
        "orderid",
        "order",
        "receipt",
        "receiptid",
        "bonid",
        "bon",
        "ticket",
    ),
    "quantity": ("quantity", "qty", "units", "menge", "anzahl", "count", "kilos", "weight"),
    "unit_price_cents": (
        "unitprice",
        "price",
        "preis",
        "priceperunit",
        "pricepkilo",
        "priceperkilo",
        "einzelpreis",
    ),
    "line_total_cents": ("linetotal", "total", "amount", "sales", "revenue", "value", "umsatz", "betrag", "spend"),
    "purchased_at": (
        "purchasedat",
        "invoicedate",
        "orderdate",
        "date",
        "datetime",
        "timestamp",
        "time",
        "soldat",
        "zeitpunkt",
        "datum",
        "transactiondate",
    ),
    "full_name": ("fullname", "name", "customername"),
    "email": ("email", "mail", "emailaddress"),
    "phone": ("phone", "telephone", "telefon", "tel", "mobile", "phonenumber"),
    "postcode": ("postcode", "zip", "zipcode", "plz", "postalcode"),
    "birth_date": ("birthdate", "dateofbirth", "dob", "geburtsdatum", "birthday"),
    "signup_date": ("signupdate", "signup", "registered", "memberSince".lower(), "angemeldetam", "joined"),
    "product_name": ("productname", "description", "name", "bezeichnung", "title"),
    "category": ("category", "department", "aisle", "warengruppe", "categoryname", "productgroup"),
    "brand": ("brand", "marke", "manufacturer"),
    "list_price_cents": ("listprice", "listenpreis", "rrp", "msrp", "price"),
    "store_id": ("storeid", "store", "shop", "branch", "filiale", "storenumber", "storeno"),
    "period_start": ("periodstart", "weekstart", "week", "period", "woche", "date", "day"),
    "units": ("units", "unitssold", "qty", "quantity", "stueck", "menge"),
    "sales_cents": ("sales", "revenue", "turnover", "umsatz", "dollars", "amount", "value"),
}
# What a canonical column's values must look like to be proposed.
NEEDS = {
    "quantity": ("integer",),
    "unit_price_cents": ("integer", "amount", "amount_comma"),
    "line_total_cents": ("integer", "amount", "amount_comma"),
    "list_price_cents": ("integer", "amount", "amount_comma"),
    "email": ("email",),
    "purchased_at": ("timestamp", "date"),
    "birth_date": ("date",),
    "signup_date": ("date",),
    "period_start": ("date",),
    "units": ("integer",),
    "sales_cents": ("integer", "amount", "amount_comma"),
}


@dataclass(frozen=True)
class FileShape:
    format: str  # csv | parquet
    encoding: str = "utf-8"  # as the spec names it
    separator: str = ","


@dataclass
class ColumnProfile:
    name: str
    dtype: str
    filled: int
    distinct: int
    shares: dict[str, float] = field(default_factory=dict)  # pattern or format -> share of filled cells
    date_format: str | None = None
    kind: str = "text"  # integer | amount | amount_comma | date | timestamp | gtin | email | phone | text
    kinds: list[str] = field(default_factory=list)  # every type its values fit, most specific first

    @property
    def naive(self) -> bool:
        """A timestamp without a UTC offset: its zone must be declared."""
        if self.dtype.startswith("Datetime"):
            return "time_zone=None" in self.dtype
        return self.kind == "timestamp" and self.date_format is not None and "%z" not in self.date_format

    @property
    def shown(self) -> str:
        """What its values look like, for people."""
        plain = {"gtin": "8-14 digits", "amount_comma": "amount (decimal comma)"}
        return self.date_format or plain.get(self.kind, self.kind)

    @property
    def key(self) -> str:
        return re.sub(r"[^a-z0-9]", "", self.name.lower())


@dataclass
class Inspection:
    path: Path
    shape: FileShape
    rows: int
    columns: list[ColumnProfile]
    table: CanonicalTable
    mapping: dict[str, ColumnProfile]  # canonical -> export column

    @property
    def decimal_comma(self) -> bool:
        money = [
            self.mapping[c]
            for c in ("unit_price_cents", "line_total_cents", "list_price_cents", "sales_cents")
            if c in self.mapping
        ]
        return any(p.kind == "amount_comma" for p in money)

    def spec_section(self, location: str) -> dict:
        """The proposed `data.tables.<table>` entry (compliance fields left for the party to fill)."""
        columns: dict[str, object] = {}
        for canonical, profile in self.mapping.items():
            options: dict[str, object] = {"source": profile.name}
            if (
                canonical.endswith("_cents")
                and profile.kind in ("amount", "amount_comma")
                and "integer" not in profile.kinds
            ):
                options["unit"] = "decimal"
            if canonical in ("purchased_at", "birth_date", "signup_date", "period_start") and profile.date_format:
                options["format"] = profile.date_format
            if canonical == "purchased_at" and profile.naive:
                options["time_zone"] = "UTC"  # a guess: `notes` asks for the real zone
            if canonical == "product_id" and profile.kind == "gtin" and self.table is CanonicalTable.PRODUCTS:
                options["gtin"] = True
            columns[canonical] = options if len(options) > 1 else profile.name
        section: dict[str, object] = {"location": location}
        if self.shape.format == "csv":
            if self.shape.separator != ",":
                section["separator"] = self.shape.separator
            if self.shape.encoding != "utf-8":
                section["encoding"] = self.shape.encoding
            if self.decimal_comma:
                section["decimal_comma"] = True
        section["columns"] = columns
        mapped = {p.name for p in self.mapping.values()}
        ignored = [c.name for c in self.columns if c.name not in mapped]
        if ignored:
            section["ignore_columns"] = ignored
        absent = [c for c in CANONICAL_COLUMNS[self.table] if c not in self.mapping]
        if absent:
            section["absent"] = absent
        return section

    @property
    def notes(self) -> list[str]:
        """What the proposal cannot know: the party adds or checks these before `check-spec`."""
        notes = ["add purpose, lawful_basis and retention_days (the spec refuses the table without them)"]
        stamp = self.mapping.get("purchased_at")
        if stamp is not None and stamp.naive:
            notes.append(f"{stamp.name} has no UTC offset: set time_zone to the zone of those local times")
        for canonical in ("unit_price_cents", "line_total_cents", "list_price_cents", "sales_cents"):
            money = self.mapping.get(canonical)
            if money is not None and money.kind == "integer":
                notes.append(
                    f"{money.name} holds whole numbers: read as cents (1299); if they are currency units (12), "
                    f"map it as {{source: {money.name}, unit: decimal}}"
                )
        for key in KEY_COLUMNS[self.table]:
            if key not in self.mapping:
                notes.append(
                    f"no column looks like {key}: map it under columns (every {self.table.value} export has it)"
                )
        return notes


def sniff(path: Path) -> FileShape:
    """Encoding and separator of a CSV from its first MiB (Parquet carries its own)."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if path.suffix == ".parquet" or head[:4] == b"PAR1":
        return FileShape("parquet")
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
        encoding = "utf-8"
    except UnicodeDecodeError:
        # Windows-1252 puts printable characters (euro sign, quotes) in 0x80-0x9f, Latin-1 control codes.
        encoding = "cp1252" if re.search(rb"[\x80-\x9f]", head) else "latin-1"
    text = head.decode(encoding, errors="replace")
    lines = text.splitlines()[:200]
    if len(text) >= SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    try:
        separator = csv.Sniffer().sniff("\n".join(lines), delimiters=SEPARATORS).delimiter
    except csv.Error:
        counts = {s: lines[0].count(s) for s in SEPARATORS} if lines else {",": 0}
        separator = max(counts, key=counts.__getitem__)
    return FileShape("csv", encoding, separator)


def scan(path: Path, shape: FileShape) -> pl.LazyFrame:
    """Every column as text (Parquet columns keep their types)."""
    if shape.format == "parquet":
        return pl.scan_parquet(path)
    with path.open("rb") as handle:
        header_line = handle.readline().decode(shape.encoding, errors="replace")
    header = next(csv.reader([header_line], delimiter=shape.separator))
    # Non-UTF-8 cells are read lossily here: the profile needs their shape, not their letters.
    encoding = "utf8" if shape.encoding == "utf-8" else "utf8-lossy"
    return pl.scan_csv(path, separator=shape.separator, infer_schema=False, encoding=encoding, new_columns=header)


def profile(frame: pl.LazyFrame, sample_rows: int = 100_000) -> tuple[int, list[ColumnProfile]]:
    """Every candidate type and format is tried on the first `sample_rows` rows; then one streaming pass
    over the whole file counts rows, filled cells, distinct values and the share of filled cells that
    parse as what the sample suggested (what the report shows is the whole file's)."""
    schema = frame.collect_schema()
    sample = frame.head(sample_rows).select(_candidate_counts(schema)).collect().row(0, named=True)
    kinds = {name: _kinds(dtype, _shares(sample, i)) for i, (name, dtype) in enumerate(schema.items())}
    exprs: list[pl.Expr] = [pl.len().alias("__rows")]
    for i, name in enumerate(schema):
        cell = _cell(name)
        exprs += [cell.count().alias(f"{i}|filled"), cell.approx_n_unique().alias(f"{i}|distinct")]
        exprs += [_parses(cell, label).sum().alias(f"{i}|{label}") for label in kinds[name] if label in LABELS]
    totals = frame.select(exprs).collect(engine="streaming").row(0, named=True)
    profiles = []
    for i, (name, dtype) in enumerate(schema.items()):
        shares = _shares(totals, i)
        filled = int(totals[f"{i}|filled"])  # HyperLogLog may overshoot a little on small columns
        column = ColumnProfile(name, str(dtype), filled, min(int(totals[f"{i}|distinct"]), filled), shares)
        column.kinds = _kinds(dtype, shares) if shares else kinds[name]
        column.kind = next(iter(column.kinds), "text").split(" ", 1)[0]
        column.date_format = next((k.split(" ", 1)[1] for k in column.kinds if " " in k), None)
        profiles.append(column)
    return int(totals["__rows"]), profiles


LABELS = [*PATTERNS, *(f"timestamp {f}" for f in TIMESTAMP_FORMATS), *(f"date {f}" for f in DATE_FORMATS)]


def _cell(name: str) -> pl.Expr:
    text = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _parses(cell: pl.Expr, label: str) -> pl.Expr:
    if label in PATTERNS:
        return cell.str.contains(PATTERNS[label])
    kind, fmt = label.split(" ", 1)
    if kind == "date":
        return cell.str.to_date(fmt, strict=False).is_not_null()
    return cell.str.to_datetime(fmt, strict=False, time_zone="UTC" if "%z" in fmt else None).is_not_null()


def _candidate_counts(schema: pl.Schema) -> list[pl.Expr]:
    exprs = []
    for i, (name, dtype) in enumerate(schema.items()):
        cell = _cell(name)
        exprs.append(cell.count().alias(f"{i}|filled"))
        if not dtype.is_temporal():
            exprs += [_parses(cell, label).sum().alias(f"{i}|{label}") for label in LABELS]
    return exprs


def _shares(totals: dict, i: int) -> dict[str, float]:
    filled = totals[f"{i}|filled"]
    prefix = f"{i}|"
    return {
        key[len(prefix) :]: (value / filled if filled else 0.0)
        for key, value in totals.items()
        if key.startswith(prefix) and key[len(prefix) :] in LABELS
    }


def _kinds(dtype: pl.DataType, shares: dict[str, float]) -> list[str]:
    """What a column's values are, most specific first ("gtin", "integer", "timestamp %d/%m/%Y %H:%M")."""
    if dtype.is_temporal():
        return ["date" if dtype == pl.Date else "timestamp"]
    if dtype.is_integer():
        return ["integer"]
    if dtype.is_float() or dtype.is_decimal():
        return ["amount"]
    ok = {label for label, share in shares.items() if share >= PARSES}
    # The format that parses most cells wins (31/12 rules out month-first); timestamps before dates.
    stamps = sorted((shares[k], k) for k in ok if k.startswith("timestamp "))
    dates = sorted((shares[k], k) for k in ok if k.startswith("date "))
    kinds = [k for k in ("gtin", "integer", "amount", "amount_comma", "email") if k in ok]
    kinds += [stamps[-1][1]] if stamps else []
    kinds += [dates[-1][1]] if dates else []
    kinds += ["phone"] if "phone" in ok and not kinds else []
    return kinds or ["text"]


def propose(columns: list[ColumnProfile], table: CanonicalTable | None) -> tuple[CanonicalTable, dict]:
    """The table the columns look like, and a canonical column for each export column a name suggests and
    whose values fit (first match by name order wins; each export column is used once)."""
    candidates = [table] if table else list(CanonicalTable)
    best: tuple[int, CanonicalTable, dict[str, ColumnProfile]] | None = None
    for option in candidates:
        mapping = _mapping(columns, option)
        score = len(mapping) + sum(2 for key in KEY_COLUMNS[option] if key in mapping) - len(KEY_COLUMNS[option])
        if best is None or score > best[0]:
            best = (score, option, mapping)
    assert best is not None
    return best[1], best[2]


def _mapping(columns: list[ColumnProfile], table: CanonicalTable) -> dict[str, ColumnProfile]:
    mapping: dict[str, ColumnProfile] = {}
    used: set[str] = set()
    for canonical in CANONICAL_COLUMNS[table]:
        hints = NAME_HINTS.get(canonical, ())
        ranked = sorted((hints.index(c.key), c) for c in columns if c.key in hints and c.name not in used)
        for _, column in ranked:
            fits = {k.split(" ", 1)[0] for k in column.kinds}
            if canonical in NEEDS and not fits & set(NEEDS[canonical]):
                continue
            mapping[canonical] = column
            used.add(column.name)
            break
    return mapping


def inspect_export(path: Path, table: CanonicalTable | None = None) -> Inspection:
    shape = sniff(path)
    rows, columns = profile(scan(path, shape))
    chosen, mapping = propose(columns, table)
    return Inspection(path, shape, rows, columns, chosen, mapping)
