"""Real exports onboard with a spec alone: a consortium from the 1990s (weekly trends) whose retailers
export in their own shapes (an online shop's invoice lines with line totals, Latin-1, semicolons and
decimal commas, SKUs with letters and no phone numbers; a grocer's Parquet with per-kilo prices of four
decimals, no line ids and no product categories), priced in pounds. Every secure total equals a
plaintext total computed here from the same rows with Python's Decimal, independent of the product's
parsing."""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
import yaml

from cleanroom.analyses.category_month_sales import GRID_FILE as CATEGORY_MONTH_FILE
from cleanroom.demo_data import generate_consortium
from cleanroom.errors import ConfigurationError, DataContractError
from cleanroom.party.preparation import prepare_party
from cleanroom.secure import AggregateRequest
from cleanroom.secure.engine import InProcessEngine
from cleanroom.spec import pin_spec
from cleanroom.spec.loader import load_spec
from tests.conftest import home

PERIOD = date(1997, 1, 1)
LONDON, BERLIN = ZoneInfo("Europe/London"), ZoneInfo("Europe/Berlin")
COMMON = {"lawful_basis": "gdpr-legitimate-interests", "retention_days": 90, "purpose": "market statistics"}


def online_shop(raw: Path) -> list[tuple[str, datetime, int]]:
    """Invoice lines as an online shop exports them; returns (category, moment, line cents) per line."""
    customers = pl.read_csv(raw / "customers.csv", infer_schema=False)
    products = pl.read_csv(raw / "products.csv", infer_schema=False)
    lines = pl.read_csv(raw / "transactions.csv", infer_schema=False)
    sku = {g: f"SKU-{g[-5:]}A" for g in products["gtin"]}
    customers.select(
        pl.col("customer_id").alias("CustomerID"), pl.col("email").alias("Email"), pl.lit("UK").alias("Country")
    ).write_csv(raw / "customers.csv", separator=";")
    products.select(
        pl.col("gtin").replace_strict(sku).alias("StockCode"),
        pl.col("product_name").alias("Description"),
        (pl.col("category") + "").alias("Category"),
    ).write_csv(raw / "products.csv", separator=";")
    category_of = dict(zip(products["gtin"], products["category"]))
    rows, truth = [], []
    for line in lines.iter_rows(named=True):
        moment = datetime.fromisoformat(line["purchased_at"]).astimezone(LONDON).replace(tzinfo=None)
        total = int(line["quantity"]) * int(line["unit_price_cents"])
        text = f"{total // 100},{total % 100:02d}"  # a decimal comma
        rows.append(
            (
                line["basket_id"],
                sku[line["gtin"]],
                line["quantity"],
                moment.strftime("%d/%m/%Y %H:%M"),
                text,
                line["customer_id"],
                "España" if len(rows) % 3 else "Österreich",  # not UTF-8 once written as Latin-1
            )
        )
        truth.append(
            (category_of[line["gtin"]], moment.replace(tzinfo=LONDON, second=0), total, int(line["quantity"]))
        )
    header = "Invoice;StockCode;Quantity;InvoiceDate;LineTotal;CustomerID;Country\n"
    body = "".join(";".join(map(str, row)) + "\n" for row in rows)
    (raw / "transactions.csv").write_bytes((header + body).encode("latin-1"))
    return truth


def online_shop_tables() -> dict:
    return {
        "customers": COMMON
        | {
            "location": "raw/customers.csv",
            "separator": ";",
            "encoding": "latin-1",
            "columns": {"customer_id": "CustomerID", "email": "Email"},
            "ignore_columns": ["Country"],
            "absent": ["full_name", "phone", "postcode", "birth_date", "signup_date"],
        },
        "products": COMMON
        | {
            "location": "raw/products.csv",
            "separator": ";",
            "columns": {"product_id": "StockCode", "product_name": "Description", "category": "Category"},
            "absent": ["brand", "list_price_cents"],
        },
        "transactions": COMMON
        | {
            "location": "raw/transactions.csv",
            "separator": ";",
            "encoding": "latin-1",
            "decimal_comma": True,
            "columns": {
                "basket_id": "Invoice",
                "product_id": "StockCode",
                "quantity": "Quantity",
                "customer_id": "CustomerID",
                "line_total_cents": {"source": "LineTotal", "unit": "decimal"},
                "purchased_at": {
                    "source": "InvoiceDate",
                    "format": "%d/%m/%Y %H:%M",
                    "time_zone": "Europe/London",
                },
            },
            "ignore_columns": ["Country"],
            "absent": ["transaction_id", "unit_price_cents"],
        },
    }


def grocer(raw: Path) -> list[tuple[str, datetime, int]]:
    """A grocer's Parquet: prices per kilo with four decimals, no line ids, no categories (so every
    product is "uncategorized"); quantities above the default bound of 1000 on some lines."""
    products = pl.read_csv(raw / "products.csv", infer_schema=False)
    lines = pl.read_csv(raw / "transactions.csv", infer_schema=False)
    products.select(pl.col("gtin").alias("sku"), pl.col("product_name").alias("name")).write_parquet(
        raw / "products.parquet"
    )
    (raw / "products.csv").unlink()
    prices = [Decimal(p) / 100 + Decimal("0.0037") for p in lines["unit_price_cents"]]
    quantities = [int(q) * (1200 if i % 97 == 0 else 1) for i, q in enumerate(lines["quantity"])]
    moments = [datetime.fromisoformat(t).astimezone(BERLIN).replace(tzinfo=None) for t in lines["purchased_at"]]
    pl.DataFrame(
        {
            "customer": lines["customer_id"],
            "sku": lines["gtin"],
            "kilos": quantities,
            "price_per_kilo": [float(p) for p in prices],
            "sold_at": moments,
        }
    ).write_parquet(raw / "lines.parquet")
    (raw / "transactions.csv").unlink()
    truth = []
    for price, quantity, moment in zip(prices, quantities, moments):
        cents = (Decimal(str(float(price))) * quantity * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        truth.append(("uncategorized", moment.replace(tzinfo=BERLIN), int(cents), quantity))
    return truth


def grocer_tables() -> dict:
    return {
        "customers": COMMON | {"location": "raw/customers.csv"},
        "products": COMMON
        | {
            "location": "raw/products.parquet",
            "columns": {"product_id": "sku", "product_name": "name"},
            "absent": ["category", "brand", "list_price_cents"],
        },
        "transactions": COMMON
        | {
            "location": "raw/lines.parquet",
            "columns": {
                "customer_id": "customer",
                "product_id": "sku",
                "quantity": "kilos",
                "unit_price_cents": {"source": "price_per_kilo", "unit": "decimal"},
                "purchased_at": {"source": "sold_at", "time_zone": "Europe/Berlin"},
            },
            "absent": ["transaction_id", "basket_id"],
        },
    }


@pytest.fixture(scope="module")
def nineties(small_workspace, small_spec, tmp_path_factory) -> tuple[Path, dict[str, Path], dict]:
    """The small consortium's keys and nodes with 1997 data in three shapes and a spec that maps them."""
    root = tmp_path_factory.mktemp("nineties")
    homes = {}
    for party in small_spec.spec.data_parties:
        homes[party.name] = root / party.name
        shutil.copytree(home(small_workspace, party.name) / "secrets", homes[party.name] / "secrets")
    generate_consortium(homes, period_start=PERIOD, seed=5, scale=0.15)
    truth = {"northwind": online_shop(homes["northwind"] / "raw"), "harbor": grocer(homes["harbor"] / "raw")}
    raw = yaml.safe_load(small_spec.path.read_text())
    raw["currency"] = "GBP"
    tables = {"northwind": online_shop_tables(), "harbor": grocer_tables()}
    for party in raw["parties"]:
        if party["name"] in tables:
            party["data"]["tables"] = tables[party["name"]]
        if party["name"] == "harbor":
            party["data"]["bounds"] = {"max_quantity": 20_000, "max_line_total": 50_000_000}
    categories = [*small_spec.spec.category_month_sales.categories, "uncategorized"]
    raw["analyses"] = [
        {
            "id": "category-month-sales",
            "kind": "category_month_sales",
            "objective": "market-trends",
            "categories": categories,
            "period_start": "1996-12-30",  # the Monday of ISO week 1997-W01
            "grain": "week",
            "periods": 52,
            "time_zone": "Europe/London",
        },
        {
            "id": "customer-overlap",
            "kind": "customer_overlap",
            "objective": "shared-customers",
            "join_keys": ["email", "phone"],
        },
    ]
    path = root / "consortium.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path, homes, truth


def test_three_export_shapes_onboard_with_a_spec_and_secure_equals_plaintext(nineties) -> None:
    path, homes, truth = nineties
    spec = pin_spec(path).spec
    assert spec.earliest_purchase == date(1991, 1, 1)  # five years before the period: 1997 dates are fine
    for party in spec.data_parties:
        summary = prepare_party(spec, party.name, homes[party.name])
        assert summary.status == "ok" and not summary.quarantined, (party.name, summary)

    analysis = spec.category_month_sales
    players = [p.name for p in spec.compute_parties]
    request = AggregateRequest(
        protocol=spec.secure_computation.protocol,
        players=players,
        cells=analysis.cells,
        min_group_size=1,
        input_paths={p: str(version(homes[p]) / CATEGORY_MONTH_FILE) for p in players},
    )
    revealed = InProcessEngine().secure_totals(request)

    truth = truth | {"alpine": alpine_truth(homes["alpine"] / "raw")}
    expected: dict[tuple[str, str], int] = defaultdict(int)
    units: dict[tuple[str, str], int] = defaultdict(int)
    for party in players:
        for category, moment, cents, quantity in truth[party]:
            year, week, _ = moment.astimezone(LONDON).date().isocalendar()
            expected[category, f"{year}-W{week:02d}"] += cents
            units[category, f"{year}-W{week:02d}"] += quantity
    cells = [(c, m) for c in analysis.categories for m in analysis.period_labels]
    plain = [expected[cell] for cell in cells] + [units[cell] for cell in cells]  # sales, then units sold
    assert sum(plain) > 0 and sum(expected[("uncategorized", m)] for m in analysis.period_labels) > 0
    # Exact to the cent; a cell nobody bought in is suppressed (no contributing customer) rather than 0.
    assert [v if v is not None else 0 for v in revealed.sales_cents] == plain
    assert all(v is not None for v, p in zip(revealed.sales_cents, plain) if p)


def alpine_truth(raw: Path) -> list[tuple[str, datetime, int, int]]:
    """The demo's German layout (Parquet, decimal euros, Vienna local time), read here independently."""
    alpine = pl.read_parquet(raw / "bons.parquet")
    category_of = dict(
        pl.read_csv(raw / "artikel.csv", infer_schema=False).select("ean", "warengruppe").iter_rows()
    )
    vienna = ZoneInfo("Europe/Vienna")
    return [
        (category_of[ean], moment.replace(tzinfo=vienna), int(Decimal(price) * 100) * quantity, quantity)
        for ean, price, quantity, moment in alpine.select("ean", "preis_eur", "menge", "zeitpunkt").iter_rows()
    ]


def version(workspace: Path) -> Path:
    from cleanroom.party.versions import current_version

    found = current_version(workspace)
    assert found is not None
    return found


def test_an_analysis_that_needs_an_absent_column_is_refused_at_spec_check(nineties, tmp_path) -> None:
    """A grocer with order sequences only (no prices, no dates): refused before any data is read,
    naming the analysis, the party and each column, in one message."""
    path, _, _ = nineties
    raw = yaml.safe_load(path.read_text())
    harbor = next(p for p in raw["parties"] if p["name"] == "harbor")
    harbor["data"]["tables"]["transactions"]["absent"] = ["transaction_id", "basket_id", "purchased_at"]
    harbor["data"]["tables"]["transactions"]["columns"].pop("purchased_at")
    harbor["data"]["tables"]["customers"]["absent"] = ["email", "phone"]
    broken = tmp_path / "consortium.yaml"
    broken.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigurationError) as caught:
        load_spec(broken)
    message = caught.value.one_line()
    assert "analyses[0] (category_month_sales) needs transactions.purchased_at, which party harbor" in message
    assert (
        "analyses[1] (customer_overlap) matches on email, phone; party harbor declares every one absent" in message
    )
    assert message.count("fix:") <= 1


def test_validation_bounds_come_from_the_spec_per_party(nineties, tmp_path) -> None:
    """The grocer sells 1,200 kilos on some lines: its spec bound allows them; without it, the default
    bound (1,000) quarantines exactly those lines, and the purchase-date bound follows `history_from`."""
    from cleanroom.party.export_check import check_party, rule_rows

    path, homes, _ = nineties
    raw = yaml.safe_load(path.read_text())
    harbor = next(p for p in raw["parties"] if p["name"] == "harbor")
    del harbor["data"]["bounds"]
    raw["history_from"] = "1997-06-01"
    changed = tmp_path / "consortium.yaml"
    changed.write_text(yaml.safe_dump(raw, sort_keys=False))
    check = check_party(load_spec(changed), "harbor", homes["harbor"])
    failing = {r["rule"]: r for r in rule_rows(check) if r["failing_rows"]}
    quantity = failing["transactions.quantity:expect_column_values_to_be_between"]
    lines = pl.read_parquet(homes["harbor"] / "raw/lines.parquet")
    assert quantity["failing_rows"] == (lines["kilos"] > 1000).sum() > 0 and quantity["bound"] == "1 to 1000"
    dates = failing["transactions.purchased_at:expect_column_values_to_be_between"]
    assert dates["bound"].startswith("1997-06-01") and 0 < dates["failing_rows"] < len(lines)


def test_inspect_proposes_a_mapping_that_passes_party_check(nineties, tmp_path) -> None:
    """`cleanroom inspect` on the online shop's and the grocer's files: the shape is sniffed, and the
    proposed sections (plus what it asks the party to add) check clean against the spec."""
    from cleanroom.party.export_check import check_party
    from cleanroom.party.inspection import inspect_export

    path, homes, _ = nineties
    raw = yaml.safe_load(path.read_text())
    proposals = {}
    for party, files in {
        "northwind": ("customers.csv", "products.csv", "transactions.csv"),
        "harbor": ("customers.csv", "products.parquet", "lines.parquet"),
    }.items():
        tables = {}
        for name in files:
            found = inspect_export(homes[party] / "raw" / name)
            tables[found.table.value] = found.spec_section(f"raw/{name}") | COMMON
            proposals[party, name] = found
        if party == "northwind":
            tables["transactions"]["columns"]["purchased_at"]["time_zone"] = "Europe/London"  # `notes` asks
        else:
            tables["transactions"]["columns"]["purchased_at"]["time_zone"] = "Europe/Berlin"
        next(p for p in raw["parties"] if p["name"] == party)["data"]["tables"] = tables

    invoices = proposals["northwind", "transactions.csv"]
    shape = invoices.shape
    assert (invoices.table.value, shape.encoding, shape.separator) == ("transactions", "latin-1", ";")
    assert invoices.decimal_comma and invoices.mapping["line_total_cents"].name == "LineTotal"
    assert invoices.mapping["purchased_at"].date_format == "%d/%m/%Y %H:%M"
    assert invoices.mapping["basket_id"].name == "Invoice" and invoices.mapping["product_id"].name == "StockCode"
    assert any("time_zone" in note for note in invoices.notes)
    grocer_lines = proposals["harbor", "lines.parquet"]
    assert grocer_lines.mapping["unit_price_cents"].name == "price_per_kilo"
    assert grocer_lines.mapping["quantity"].name == "kilos"
    assert grocer_lines.mapping["customer_id"].name == "customer"
    assert proposals["harbor", "products.parquet"].table.value == "products"

    proposed = tmp_path / "consortium.yaml"
    proposed.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(proposed)
    for party in ("northwind", "harbor"):
        check = check_party(spec, party, homes[party])
        assert check.error() is None, (party, check.error())


def overlap_of(spec_raw: dict, homes: dict[str, Path], folder: Path, kinds: tuple[str, ...]) -> dict:
    """Prepare every party under `spec_raw` in a copy of its node folder, then run the PSI blinding
    in-process on the prepared join keys (the exchange is tested in test_psi): the overlap counts."""
    from cleanroom.party.psi_session import own_key_rows
    from cleanroom.psi.ecdh import blind_own, new_scalar, reblind
    from cleanroom.psi.overlap import overlap_counts

    folder.mkdir()
    path = folder / "consortium.yaml"
    path.write_text(yaml.safe_dump(spec_raw, sort_keys=False))
    spec = load_spec(path)
    scalars, blinded = {}, {}
    for party in spec.data_parties:
        workspace = folder / party.name
        shutil.copytree(homes[party.name], workspace, ignore=shutil.ignore_patterns("prepared", "gx", "cache"))
        assert prepare_party(spec, party.name, workspace).status == "ok"
        scalars[party.name] = new_scalar()
        blinded[party.name] = blind_own(
            own_key_rows(version(workspace), kinds, party.name), kinds, scalars[party.name]
        )
    for name in blinded:
        for other, scalar in scalars.items():
            if other != name:
                blinded[name] = reblind(blinded[name], scalar)
    return overlap_counts(blinded)


def test_join_keys_exported_hashed_or_as_a_shared_loyalty_id_match_like_plain_ones(nineties, tmp_path) -> None:
    """The online shop exports its emails already hashed with the consortium's agreed secret (the
    recipe in the README); two retailers carry a shared loyalty card id, written differently. The PSI
    counts equal those of everyone's plain emails, and the loyalty id alone finds what the email finds."""
    import hashlib
    import hmac

    path, homes, _ = nineties
    raw = yaml.safe_load(path.read_text())
    overlap = {"id": "customer-overlap", "kind": "customer_overlap", "objective": "shared-customers"}
    plain = raw | {"analyses": [raw["analyses"][0], overlap | {"join_keys": ["email"]}]}
    expected = overlap_of(plain, homes, tmp_path / "plain", ("email",))

    secret = bytes(range(32))
    hashed_homes = {name: tmp_path / "sources" / name for name in homes}
    for name, source in homes.items():
        shutil.copytree(source, hashed_homes[name], ignore=shutil.ignore_patterns("prepared", "gx", "cache"))
        (hashed_homes[name] / "secrets" / "join-key.key").write_text(secret.hex())
    customers = hashed_homes["northwind"] / "raw" / "customers.csv"
    frame = pl.read_csv(customers, separator=";", infer_schema=False)
    digest = [
        hmac.new(secret, b"email:" + e.strip().lower().encode(), hashlib.sha256).hexdigest()
        for e in frame["Email"]
    ]
    frame.with_columns(pl.Series("Email", digest)).write_csv(customers, separator=";")

    def card(email: str, style: int) -> str:
        number = hashlib.sha1(email.strip().lower().encode()).hexdigest()[:8]
        return f"lc-{number[:4]}-{number[4:]}" if style else f"LC {number.upper()}"

    harbor = hashed_homes["harbor"] / "raw" / "customers.csv"
    frame = pl.read_csv(harbor, infer_schema=False)
    frame.with_columns(pl.Series("loyalty_id", [card(e, 1) for e in frame["email"]])).write_csv(harbor)
    alpine = hashed_homes["alpine"] / "raw" / "kunden.csv"
    frame = pl.read_csv(alpine, infer_schema=False)
    frame.with_columns(pl.Series("karte", [card(e, 0) for e in frame["mail"]])).write_csv(alpine)

    hashed = yaml.safe_load(yaml.safe_dump(plain))
    for party in hashed["parties"]:
        customers = party["data"]["tables"]["customers"]
        if party["name"] == "northwind":
            customers["columns"]["email"] = {"source": "Email", "hashed": True}
        if party["name"] in ("northwind", "fjord"):  # no loyalty card: declared, so the overlap knows
            customers["absent"] = [*customers.get("absent", []), "loyalty_id"]
        if party["name"] == "alpine":  # matches on its card only: its emails are not used
            customers["columns"]["loyalty_id"] = "karte"
            del customers["columns"]["email"]
            customers["ignore_columns"] = [*customers.get("ignore_columns", []), "mail"]
            customers["absent"] = ["email"]
    hashed["analyses"][1]["join_keys"] = ["email", "loyalty_id"]
    counts = overlap_of(hashed, hashed_homes, tmp_path / "hashed", ("email", "loyalty_id"))
    assert expected[("harbor", "alpine")] > 0 and expected[("northwind", "harbor")] > 0
    for group, count in counts.items():
        if "alpine" not in group:  # hashed emails against plain ones hashed with the secret
            assert count == expected[group], group
    # the card alone finds whom the email found; alpine shares no key kind with the others
    assert counts[("harbor", "alpine")] == expected[("harbor", "alpine")]
    assert counts[("northwind", "alpine")] == counts[("alpine", "fjord")] == 0 < expected[("alpine", "fjord")]


def test_categories_from_a_product_hierarchy_file_give_the_same_grid(
    prepared_workspace, small_spec, tmp_path
) -> None:
    """A retailer whose products carry a department id, named in a separate hierarchy file (semicolons,
    Latin-1): the prepared grid equals the one from the same products with the category in a column."""
    from cleanroom.analyses.category_month_sales import GRID_FILE
    from tests.conftest import prepared

    harbor = tmp_path / "harbor"
    shutil.copytree(home(prepared_workspace, "harbor"), harbor, ignore=shutil.ignore_patterns("prepared", "gx"))
    products = pl.read_csv(harbor / "raw/products.csv", infer_schema=False)
    names = sorted(set(products["category"]))
    departments = pl.DataFrame({"department_id": [str(i) for i in range(len(names))], "department": names})
    text = departments.write_csv(separator=";")
    (harbor / "raw/departments.csv").write_bytes(text.encode("latin-1"))
    products.with_columns(pl.col("category").replace_strict({n: str(i) for i, n in enumerate(names)})).rename(
        {"category": "department_id"}
    ).write_csv(harbor / "raw/products.csv")

    raw = yaml.safe_load(small_spec.path.read_text())
    party = next(p for p in raw["parties"] if p["name"] == "harbor")
    party["data"]["tables"]["products"]["category_from"] = {
        "location": "raw/departments.csv",
        "key": "department_id",
        "category": "department",
        "separator": ";",
        "encoding": "latin-1",
    }
    path = tmp_path / "consortium.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(path)
    assert prepare_party(spec, "harbor", harbor).status == "ok"
    ours = (version(harbor) / GRID_FILE).read_bytes()
    assert ours == (prepared(prepared_workspace, "harbor") / GRID_FILE).read_bytes()

    (harbor / "raw/departments.csv").write_text("department_id;name\n0;x\n")
    with pytest.raises(DataContractError, match="has no column department"):
        prepare_party(spec, "harbor", harbor)


def weekly_store_totals(raw: Path) -> dict[tuple[str, str], tuple[int, int, set[str]]]:
    """A retailer without customer-level data: its lines summed into store x category x ISO week
    (London time), written as scanner data in its own layout; returns (category, week label) ->
    (sales cents, units, stores)."""
    products = pl.read_csv(raw / "products.csv", infer_schema=False)
    category_of = dict(zip(products["gtin"], products["category"]))
    totals: dict[tuple[str, str, date], list[int]] = defaultdict(lambda: [0, 0])
    for line in pl.read_csv(raw / "transactions.csv", infer_schema=False).iter_rows(named=True):
        day = datetime.fromisoformat(line["purchased_at"]).astimezone(LONDON).date()
        monday = day - timedelta(days=day.weekday())
        store = f"F{int(line['customer_id'][-4:]) % 7:02d}"
        cell = totals[store, category_of[line["gtin"]], monday]
        cell[0] += int(line["quantity"]) * int(line["unit_price_cents"])
        cell[1] += int(line["quantity"])
    for name in ("customers.csv", "products.csv", "transactions.csv"):
        (raw / name).unlink()
    rows = [
        f"{store};{category};{monday:%d.%m.%Y};{units};{cents // 100},{cents % 100:02d}"
        for (store, category, monday), (cents, units) in sorted(totals.items())
    ]
    (raw / "scanner.csv").write_text("Filiale;Warengruppe;Woche;Stueck;Umsatz\n" + "\n".join(rows) + "\n")
    truth: dict[tuple[str, str], tuple[int, int, set[str]]] = {}
    for (store, category, monday), (cents, units) in totals.items():
        year, week, _ = monday.isocalendar()
        sales, count, stores = truth.get((category, f"{year}-W{week:02d}"), (0, 0, set()))
        truth[category, f"{year}-W{week:02d}"] = (sales + cents, count + units, stores | {store})
    return truth


def test_store_level_totals_join_the_weekly_trend_and_equal_plaintext(nineties, tmp_path) -> None:
    """Fjord contributes weekly store x category totals (no customers): the secure weekly trend over
    all four retailers equals the plaintext one, and its cells count as a full group only from
    `min_stores_per_cell` stores. Customer-level analyses are refused while it takes part."""
    path, homes, truth = nineties
    raw = yaml.safe_load(path.read_text())
    fjord = tmp_path / "fjord"
    shutil.copytree(homes["fjord"], fjord, ignore=shutil.ignore_patterns("prepared", "gx", "cache"))
    stores = weekly_store_totals(fjord / "raw")
    party = next(p for p in raw["parties"] if p["name"] == "fjord")
    party["data"]["tables"] = {
        "store_sales": COMMON
        | {
            "location": "raw/scanner.csv",
            "separator": ";",
            "decimal_comma": True,
            "period": "week",
            "columns": {
                "store_id": "Filiale",
                "category": "Warengruppe",
                "period_start": {"source": "Woche", "format": "%d.%m.%Y"},
                "units": "Stueck",
                "sales_cents": {"source": "Umsatz", "unit": "decimal"},
            },
            "absent": ["product_id"],
        }
    }
    raw["privacy"]["min_stores_per_cell"] = 4
    with_overlap = tmp_path / "refused.yaml"
    with_overlap.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigurationError, match=r"analyses\[1\] \(customer_overlap\) needs customer-level data"):
        load_spec(with_overlap)
    raw["analyses"] = raw["analyses"][:1]
    spec_path = tmp_path / "consortium.yaml"
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(spec_path)
    assert prepare_party(spec, "fjord", fjord).status == "ok"
    analysis = spec.category_month_sales
    grid = np.frombuffer((version(fjord) / CATEGORY_MONTH_FILE).read_bytes(), "<i8").reshape(2, -1)
    cells = [(c, m) for c in analysis.categories for m in analysis.period_labels]
    k = spec.privacy.min_group_size
    assert grid[0].tolist() == [stores.get(c, (0, 0, set()))[0] for c in cells] + [
        stores.get(c, (0, 0, set()))[1] for c in cells
    ]
    groups = [k if len(stores.get(c, (0, 0, set()))[2]) >= 4 else 0 for c in cells]
    assert grid[1].tolist() == groups + groups and 0 < groups.count(k) < len(groups)

    players = [p.name for p in spec.compute_parties]
    for name in players:  # the nineties fixture's own parties, prepared under this spec
        assert prepare_party(spec, name, homes[name]).status in ("ok", "unchanged")
    paths = {p: str(version(homes[p]) / CATEGORY_MONTH_FILE) for p in players}
    request = AggregateRequest(
        protocol=spec.secure_computation.protocol,
        players=players,
        input_parties=[*players, "fjord"],
        cells=analysis.cells,
        min_group_size=1,
        input_paths=paths | {"fjord": str(version(fjord) / CATEGORY_MONTH_FILE)},
    )
    revealed = InProcessEngine().secure_totals(request)
    truth = truth | {"alpine": alpine_truth(homes["alpine"] / "raw")}
    others: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for party in players:
        for category, moment, cents, quantity in truth[party]:
            year, week, _ = moment.astimezone(LONDON).date().isocalendar()
            others[category, f"{year}-W{week:02d}"][0] += cents
            others[category, f"{year}-W{week:02d}"][1] += quantity
    empty = (0, 0, set())
    plain = [others[c][0] + stores.get(c, empty)[0] for c in cells] + [
        others[c][1] + stores.get(c, empty)[1] for c in cells
    ]
    assert sum(plain) > 0
    for i, (value, expected) in enumerate(zip(revealed.sales_cents, plain)):
        cell = cells[i % len(cells)]
        if value is not None:
            assert value == expected, cell
        else:  # nobody's customers bought there, and too few of fjord's stores: not a group
            assert others[cell] == [0, 0] and len(stores.get(cell, empty)[2]) < 4, cell
