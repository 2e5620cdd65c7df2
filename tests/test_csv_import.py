"""`import-csv`: the Superstore sample against a real node, checked with pandas over the file.

The file is not part of the repository: it is read from ../shared/data (SHARED_DATA)
and the Superstore tests are skipped when it is absent. The hand-written files are
imported into their own stores, so they never touch the Superstore counts.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan

from analytics_service.config import Settings
from analytics_service.importers import csv_import
from analytics_service.importers.csv_import import (
    ImportReport,
    MappingError,
    import_csv,
    line_amounts,
    load_mapping,
)
from tests.conftest import run_import


def command_env(monkeypatch, settings: Settings, cwd: Path) -> None:
    """The environment `main` builds its Settings() from: this module's node and prefix."""
    monkeypatch.setenv("ELASTICSEARCH_URL", settings.elasticsearch_url)
    monkeypatch.setenv("ES_LOCAL_DIR", str(Path(settings.es_local_dir).resolve()))  # before chdir
    monkeypatch.setenv("INDEX_PREFIX", settings.index_prefix)
    monkeypatch.chdir(cwd)  # no stray .env


def store_query(store_id: str) -> dict:
    return {"term": {"store_id": store_id}}


def count(es: Elasticsearch, index: str, store_id: str) -> int:
    return es.count(index=index, query=store_query(store_id))["count"]


def totals(es: Elasticsearch, prefix: str, store_id: str) -> dict:
    """Counts and sums as stored, computed by Elasticsearch."""
    items = es.search(
        index=f"{prefix}-order-items",
        size=0,
        query=store_query(store_id),
        aggs={
            "revenue": {"sum": {"field": "line_revenue"}},
            "cogs": {"sum": {"field": "line_cogs"}},
            "units": {"sum": {"field": "quantity"}},
        },
    )["aggregations"]
    customers = es.search(
        index=f"{prefix}-orders",
        size=0,
        query=store_query(store_id),
        aggs={
            "ids": {"terms": {"field": "customer.customer_id", "size": 10000}},
        },
    )["aggregations"]["ids"]
    assert customers["sum_other_doc_count"] == 0
    return {
        "lines": count(es, f"{prefix}-order-items", store_id),
        "orders": count(es, f"{prefix}-orders", store_id),
        "products": count(es, f"{prefix}-products", store_id),
        "customers": {b["key"] for b in customers["buckets"]},
        "revenue": items["revenue"]["value"],
        "cogs": items["cogs"]["value"],
        "units": items["units"]["value"],
    }


# --- the Superstore sample ------------------------------------------------------------


@pytest.fixture(scope="module")
def frame(superstore_path) -> pd.DataFrame:
    """The file as pandas reads it, independently of the importer."""
    df = pd.read_csv(superstore_path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    for column in ("Sales", "Discount", "Profit"):
        df[column] = df[column].astype(float)
    df["Quantity"] = df["Quantity"].astype(int)
    df["order_date"] = pd.to_datetime(df["Order Date"], format="%d/%m/%y")
    df["ship_date"] = pd.to_datetime(df["Ship Date"], format="%d/%m/%y")
    df["line"] = df.groupby("Order ID").cumcount() + 1  # lines keep file order within an order
    return df


@pytest.fixture(scope="module")
def imported(settings, es, prefix, superstore_path) -> tuple[ImportReport, float]:
    started = time.monotonic()
    report = run_import(settings, superstore_path, "superstore")
    elapsed = time.monotonic() - started
    es.indices.refresh(index=f"{prefix}-*")
    return report, elapsed


def test_dates_in_the_file_are_day_first(frame):
    # Ship dates follow order dates by 0..11 days only when read as dd/mm/yy.
    gap = (frame["ship_date"] - frame["order_date"]).dt.days
    assert gap.between(0, 11).all()
    assert frame.loc[0, "Order Date"] == "03/01/19" and frame.loc[0, "order_date"] == pd.Timestamp("2019-01-03")


def test_superstore_import_matches_the_file(imported, frame, es, prefix, settings):
    report, elapsed = imported
    assert report.ok, [str(p) for p in report.errors]
    assert elapsed < 60, f"import took {elapsed:.1f} s"

    per_order = frame.drop_duplicates("Order ID")  # an order's fields come from its first line
    expected = {
        "lines": len(frame),
        "orders": frame["Order ID"].nunique(),
        "customers": set(per_order["Customer ID"]),
        "revenue": frame["Sales"].sum(),
        "profit": frame["Profit"].sum(),
        "units": int(frame["Quantity"].sum()),
        "products": frame["Product ID"].nunique(),
    }
    assert (expected["lines"], expected["orders"], len(expected["customers"])) == (10194, 5111, 801)

    stored = totals(es, prefix, settings.default_store_id)
    assert stored["lines"] == expected["lines"]
    assert stored["orders"] == expected["orders"]
    assert stored["customers"] == expected["customers"]
    assert stored["revenue"] == pytest.approx(expected["revenue"], abs=0.01)
    assert stored["revenue"] - stored["cogs"] == pytest.approx(expected["profit"], abs=0.01)
    assert stored["units"] == expected["units"]
    assert stored["products"] == expected["products"]

    # The command's own summary says the same.
    assert (report.rows, report.lines, report.orders, report.customers, report.products, report.quantity) == (
        expected["lines"],
        expected["lines"],
        expected["orders"],
        len(expected["customers"]),
        expected["products"],
        expected["units"],
    )
    assert report.sales == pytest.approx(expected["revenue"], abs=0.01)
    assert report.profit == pytest.approx(expected["profit"], abs=0.01)
    assert (report.indexed, report.duplicates, report.failed_orders) == (expected["orders"], 0, 0)
    assert report.product_indexed == expected["products"]


def test_customer_id_conflicts_are_reported_not_hidden(imported, frame):
    """The file has 804 customer ids, but two orders carry four ids each (HO-15231..15234,
    all "Harry Olson"): an order has one customer, the first line's, and the others are
    reported as warnings with their lines."""
    report, _ = imported
    assert frame["Customer ID"].nunique() == 804
    conflicts = [p for p in report.warnings if p.column == "Customer ID"]
    assert sorted(p.order_id for p in conflicts) == ["CA-2021-121465", "CA-2022-130494"]
    assert {p.line for p in conflicts} == {5012, 7194}
    renamed = [p for p in report.warnings if p.column == "Product Name"]
    multi_name = frame.groupby("Product ID")["Product Name"].nunique()
    assert len(renamed) == int((multi_name > 1).sum())


def test_sales_per_year_match(imported, frame, es, prefix, settings):
    buckets = es.search(
        index=f"{prefix}-order-items",
        size=0,
        query=store_query(settings.default_store_id),
        aggs={
            "years": {
                "date_histogram": {
                    "field": "created_at",
                    "calendar_interval": "year",
                    "time_zone": settings.default_timezone,
                },
                "aggs": {"revenue": {"sum": {"field": "line_revenue"}}},
            },
        },
    )["aggregations"]["years"]["buckets"]
    stored = {b["key_as_string"][:4]: b["revenue"]["value"] for b in buckets}
    expected = frame.groupby(frame["order_date"].dt.year)["Sales"].sum()
    assert sorted(stored) == [str(y) for y in expected.index] == ["2019", "2020", "2021", "2022"]
    for year, sales in expected.items():
        assert stored[str(year)] == pytest.approx(sales, abs=0.01), year


def test_every_line_keeps_its_amounts_and_order(imported, frame, es, prefix, settings):
    """Line by line: revenue = Sales, discount = rate * list price, cogs = Sales - Profit."""
    fields = ["order_id", "line", "product_id", "quantity", "unit_price", "discount", "line_revenue", "line_cogs"]
    docs = pd.DataFrame(
        [
            h["_source"]
            for h in scan(
                es,
                index=f"{prefix}-order-items",
                query={"query": store_query(settings.default_store_id), "_source": fields},
            )
        ]
    )
    merged = frame.merge(
        docs,
        left_on=["Order ID", "line"],
        right_on=["order_id", "line"],
        how="outer",
        indicator=True,
        validate="one_to_one",
    )
    assert (merged["_merge"] == "both").all()
    assert (merged["product_id"] == merged["Product ID"]).all()
    assert (merged["quantity"] == merged["Quantity"]).all()
    assert (merged["line_revenue"] - merged["Sales"]).abs().max() < 1e-9
    assert (merged["line_cogs"] - (merged["Sales"] - merged["Profit"])).abs().max() < 1e-9
    list_price = merged["quantity"] * merged["unit_price"]
    discounted = merged[merged["Discount"] > 0]
    assert (
        (discounted["discount"] / (discounted["quantity"] * discounted["unit_price"])) - discounted["Discount"]
    ).abs().max() < 1e-9
    assert (merged.loc[merged["Discount"] == 0, "discount"] == 0).all()
    assert (merged["discount"] <= list_price + 1e-9).all() and (merged["discount"] >= 0).all()


def test_order_fields(imported, es, prefix, settings):
    doc = es.get(index=f"{prefix}-orders", id=f"{settings.default_store_id}:US-2019-103800")["_source"]
    assert doc["created_at"].startswith("2019-01-03T00:00:00")
    assert doc["shipped_at"].startswith("2019-01-07T00:00:00")
    assert doc["status"] == "delivered" and doc["is_sale"] is True
    assert doc["customer"] == {
        "customer_id": "DP-13000",
        "name": "Darren Powers",
        "segment": "Consumer",
        "country": "United States",
        "region": "Central",
        "state": "Texas",
        "city": "Houston",
        "postal_code": "77095",
        "email": None,
    }
    assert doc["attributes"] == {"ship_mode": "Standard Class"}
    assert doc["local"]["date"] == "2019-01-03"
    canadian = es.get(index=f"{prefix}-orders", id=f"{settings.default_store_id}:CA-2019-115238")["_source"]
    assert canadian["customer"]["country"] == "Canada" and canadian["customer"]["postal_code"] == "M7A"


def test_reimport_through_the_command_changes_nothing(
    imported, es, prefix, settings, superstore_path, monkeypatch, capsys, tmp_path
):
    before = totals(es, prefix, settings.default_store_id)
    command_env(monkeypatch, settings, tmp_path)
    rc = csv_import.main([str(superstore_path), "--mapping", "superstore", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert "orders: indexed 0, duplicates 5,111, stale 0, errors 0" in out
    assert "products: indexed 0, duplicates 1,862" in out
    for line in (
        "lines                  10,194",
        "orders                  5,111",
        "customers                 801",
        "quantity total         38,654",
        "sales total         2,326,534.35",
        "profit total          292,296.81",
    ):
        assert line in out
    es.indices.refresh(index=f"{prefix}-*")
    after = totals(es, prefix, settings.default_store_id)
    assert after["lines"] == before["lines"] and after["orders"] == before["orders"]
    assert after["products"] == before["products"] and after["customers"] == before["customers"]
    assert after["revenue"] == pytest.approx(before["revenue"], abs=1e-6)
    assert after["units"] == before["units"]


def test_dry_run_writes_nothing(superstore_path, settings, es, prefix):
    report = asyncio.run(
        import_csv(superstore_path, "superstore", None, store_id="dry", progress=False, limit=100, settings=settings)
    )
    assert report.dry_run and report.ok and report.orders == 100
    es.indices.refresh(index=f"{prefix}-*")
    assert count(es, f"{prefix}-orders", "dry") == 0


# --- hand-written files ---------------------------------------------------------------

SMALL_MAPPING = {
    "name": "small",
    "delimiter": ";",
    "decimal": ",",
    "date_format": ["%d/%m/%Y", "iso"],
    "timezone": "America/Sao_Paulo",
    "group_by": "Pedido",
    "order": {
        "status": {"column": "Situacao", "map": {"entregue": "delivered", "pago": "paid"}},
        "created_at": "Data",
        "customer.customer_id": "Cliente",
    },
    "item": {"product_id": "SKU", "name": "Produto", "quantity": "Qtd"},
    "amounts": {"unit_price": "Preco", "discount_amount": "Desconto", "unit_cost": "Custo"},
}

SMALL_CSV = """Pedido;Data;Situacao;Cliente;SKU;Produto;Qtd;Preco;Desconto;Custo
p-1;05/03/2024;entregue;c-1;A;Caneca;2;10,50;1,00;4
p-1;05/03/2024;entregue;c-1;B;Prato;1;20;;
p-2;06/03/2024;pago;c-2;A;Caneca;two;10,50;0;4
p-3;31/02/2024;pago;c-3;B;Prato;1;20;0;8
p-4;2024-03-07T15:30:00;pago;c-1;C;Copo;3;5;0,5;2
"""


def test_bad_rows_are_reported_by_line_and_the_rest_stored(tmp_path, settings, es, prefix, monkeypatch, capsys):
    path = tmp_path / "pedidos.csv"
    path.write_text(SMALL_CSV, encoding="utf-8")
    report = run_import(settings, path, load_mapping(SMALL_MAPPING), store_id="small")

    assert not report.ok
    assert [(p.line, p.column, p.order_id) for p in report.errors] == [(4, "Qtd", "p-2"), (5, "Data", "p-3")]
    assert "not a whole number" in report.errors[0].message or "not a number" in report.errors[0].message
    assert "31/02/2024" in report.errors[1].message
    assert (report.rows, report.lines, report.orders, report.failed_rows, report.failed_orders) == (5, 3, 2, 2, 2)
    assert report.sales == pytest.approx(2 * 10.5 - 1 + 20 + 3 * 5 - 0.5)
    assert report.lines_without_cost == 1

    es.indices.refresh(index=f"{prefix}-*")
    assert count(es, f"{prefix}-orders", "small") == 2
    assert count(es, f"{prefix}-order-items", "small") == 3
    p1 = es.get(index=f"{prefix}-orders", id="small:p-1")["_source"]
    assert p1["created_at"] == "2024-03-05T03:00:00+00:00"  # 00:00 in Sao Paulo (UTC-3)
    assert p1["status"] == "delivered" and p1["gross_revenue"] == pytest.approx(40.0)
    assert p1["cogs"] == pytest.approx(8.0) and p1["lines_without_cost"] == 1
    p4 = es.get(index=f"{prefix}-orders", id="small:p-4")["_source"]
    assert p4["created_at"] == "2024-03-07T18:30:00+00:00"

    # The command says so too, by line, and exits non-zero; a file mapping works like a built-in one.
    mapping_file = tmp_path / "pedidos.json"
    mapping_file.write_text(json.dumps(SMALL_MAPPING))
    command_env(monkeypatch, settings, tmp_path)
    rc = csv_import.main(
        [
            str(path),
            "--mapping",
            str(mapping_file),
            "--store-id",
            "small",
            "--no-progress",
            "--errors-csv",
            str(tmp_path / "problems.csv"),
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 1, out + err
    assert "line 4, column 'Qtd', order p-2" in out and "line 5, column 'Data', order p-3" in out
    assert "orders: indexed 0, duplicates 2" in out
    problems = pd.read_csv(tmp_path / "problems.csv")
    assert list(problems["line"]) == [4, 5]


# A file of orders, dates, customers, products, quantities and line revenues, every order paid.
PAID_ORDERS_MAPPING = {
    "group_by": "Order",
    "order": {"status": {"value": "paid"}, "created_at": "Date", "customer.customer_id": "Customer"},
    "item": {"product_id": "Product", "quantity": "Qty"},
    "amounts": {"line_revenue": "Revenue"},
}


def test_one_bad_line_keeps_its_whole_order_out(tmp_path, settings, es, prefix):
    path = tmp_path / "orders.csv"
    path.write_text(
        "Order,Date,Customer,Product,Qty,Revenue\n"
        "o-1,2024-01-02,c-1,A,1,10\n"
        "o-2,2024-01-02,c-2,A,1,10\n"
        "o-1,2024-01-02,c-1,B,1,abc\n"
        "o-1,2024-01-03,c-1,C,1,5\n"
        ",2024-01-02,c-3,A,1,10\n"
        "o-3,2024-01-04,c-3,A,1,10,extra\n",
        encoding="utf-8",
    )
    report = run_import(settings, path, load_mapping(PAID_ORDERS_MAPPING), store_id="whole")
    where = [(p.line, p.column, p.order_id) for p in report.errors]
    assert (4, "Revenue", "o-1") in where  # the bad cell
    assert (2, None, "o-1") in where  # its order's other lines, not stored either
    assert (6, "Order", None) in where  # no order id
    assert (7, None, "o-3") in where  # wrong number of fields
    assert [(p.line, p.column) for p in report.warnings] == [(5, "Date")]  # o-1's lines disagree on the date
    assert (report.orders, report.lines, report.failed_rows) == (1, 1, 5)
    es.indices.refresh(index=f"{prefix}-*")
    assert count(es, f"{prefix}-orders", "whole") == 1
    assert count(es, f"{prefix}-order-items", "whole") == 1


def test_the_command_names_the_store_it_wrote_to(tmp_path, settings, es, prefix, monkeypatch, capsys):
    """The last lines say which store the orders went to; without --store-id, that it was the
    default store (DEFAULT_STORE_ID, beside ./dev up's sample data) and how to choose another."""
    path = tmp_path / "orders.csv"
    path.write_text("Order,Date,Customer,Product,Qty,Revenue\no-1,2024-01-02,c-1,A,1,10\n", encoding="utf-8")
    mapping = tmp_path / "paid.json"
    mapping.write_text(json.dumps(PAID_ORDERS_MAPPING))
    command_env(monkeypatch, settings, tmp_path)
    monkeypatch.setenv("DEFAULT_STORE_ID", "told-default")  # not the Superstore's store
    where = f"(index prefix {prefix}, Elasticsearch {settings.elasticsearch_url})"

    assert csv_import.main([str(path), "--mapping", str(mapping), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"imported 1 order into store 'told-default' {where}" in out
    assert "no --store-id given: 'told-default' is the default store (DEFAULT_STORE_ID)" in out
    assert "pass --store-id S to import into a store of its own" in out

    assert csv_import.main([str(path), "--mapping", str(mapping), "--no-progress", "--store-id", "told"]) == 0
    out = capsys.readouterr().out
    assert f"imported 1 order into store 'told' {where}" in out and "no --store-id given" not in out
    es.indices.refresh(index=f"{prefix}-*")
    assert count(es, f"{prefix}-orders", "told-default") == count(es, f"{prefix}-orders", "told") == 1

    assert csv_import.main([str(path), "--mapping", str(mapping), "--dry-run", "--store-id", "dry-told"]) == 0
    assert "dry run: would import 1 order into store 'dry-told'" in capsys.readouterr().out


def test_a_refused_order_is_reported_with_its_line(tmp_path, settings):
    path = tmp_path / "future.csv"
    path.write_text(
        "Order,Date,Customer,Product,Qty,Revenue\no-1,2024-01-02,c-1,A,1,10\no-2,1980-01-02,c-1,A,1,10\n",
        encoding="utf-8",
    )
    report = run_import(settings, path, load_mapping(PAID_ORDERS_MAPPING), store_id="refused")
    assert [(p.line, p.column, p.order_id) for p in report.errors] == [(3, "Date", "o-2")]
    assert "1990" in report.errors[0].message
    assert (report.orders, report.indexed, report.failed_orders) == (1, 1, 1)


# --- the mapping and the amount conventions (no Elasticsearch) --------------------------


def test_builtin_mapping_loads_by_name_and_path():
    by_name = load_mapping("superstore")
    by_path = load_mapping(csv_import.MAPPINGS_DIR / "superstore.json")
    assert by_name.group_by == by_path.group_by == "Order ID"
    assert set(by_name.amounts) == {"line_revenue", "discount_rate", "line_profit"}
    with pytest.raises(MappingError, match="built-in"):
        load_mapping("no-such-mapping")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": "red"}, "unknown key"),
        ({"amounts": {"discount_rate": "D"}}, "exactly one of unit_price, line_gross, line_revenue"),
        ({"amounts": {"line_revenue": "S", "line_cost": "C", "line_profit": "P"}}, "at most one"),
        ({"item": {"product_id": "P", "quantity": "Q", "unit_price": "U"}}, "amounts"),
        ({"order": {"created_at": "D", "customer.customer_id": "C"}}, "order.status"),
        ({"order": {"status": {"value": "done"}, "created_at": "D", "customer.customer_id": "C"}}, "must be one of"),
        ({"order": {"status": {"value": "paid"}, "created_at": "D", "customer.id": "C"}}, "not an Order field"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
        (
            {"group_by": None, "order": {"status": {"value": "paid"}, "created_at": "D", "customer.customer_id": "C"}},
            "group_by",
        ),
    ],
)
def test_mapping_mistakes_are_named(change, message):
    base = {
        "group_by": "O",
        "order": {"status": {"value": "paid"}, "created_at": "D", "customer.customer_id": "C"},
        "item": {"product_id": "P", "quantity": "Q"},
        "amounts": {"line_revenue": "S"},
    }
    base.update(change)
    if base.get("group_by") is None:
        base.pop("group_by")
    with pytest.raises(MappingError, match=message):
        load_mapping(base)


def test_amount_conventions():
    cols = {"line_revenue": "Sales", "discount_rate": "Discount", "line_profit": "Profit", "quantity": "Q"}
    a = line_amounts(2, {"line_revenue": 16.448, "discount_rate": 0.2, "line_profit": 5.5512}, cols)
    assert a.unit_price == pytest.approx(10.28) and a.discount == pytest.approx(4.112)
    assert 2 * a.unit_price - a.discount == pytest.approx(16.448, abs=1e-12)
    assert 2 * a.unit_cost == pytest.approx(16.448 - 5.5512, abs=1e-12)
    # A rate of 1 cannot give the list price back: the revenue is kept, without a discount.
    a = line_amounts(3, {"line_revenue": 9.0, "discount_rate": 1.0, "line_profit": None}, cols)
    assert (a.unit_price, a.discount, a.unit_cost) == (3.0, 0.0, None) and a.note
    with pytest.raises(csv_import.CellError) as bad:
        line_amounts(1, {"line_revenue": 10.0, "discount_rate": 0.0, "line_profit": 11.0}, cols)
    assert bad.value.column == "Profit"
    with pytest.raises(csv_import.CellError) as bad:
        line_amounts(1, {"line_revenue": 10.0, "discount_rate": 1.5, "line_profit": None}, cols)
    assert bad.value.column == "Discount"

    cols = {"unit_price": "P", "discount_rate": "R", "line_cost": "C", "quantity": "Q"}
    a = line_amounts(4, {"unit_price": 5.0, "discount_rate": 0.25, "line_cost": 8.0}, cols)
    assert (a.unit_price, a.discount, a.unit_cost) == (5.0, 5.0, 2.0)
    cols = {"line_gross": "G", "discount_amount": "D", "unit_cost": "C", "quantity": "Q"}
    a = line_amounts(2, {"line_gross": 30.0, "discount_amount": 6.0, "unit_cost": 4.0}, cols)
    assert (a.unit_price, a.discount, a.unit_cost) == (15.0, 6.0, 4.0)
    with pytest.raises(csv_import.CellError, match="exceeds"):
        line_amounts(2, {"line_gross": 30.0, "discount_amount": 31.0, "unit_cost": None}, cols)
    cols = {"line_revenue": "S", "discount_amount": "D", "quantity": "Q"}
    a = line_amounts(2, {"line_revenue": 18.0, "discount_amount": 2.0}, cols)
    assert (a.unit_price, a.discount, a.unit_cost) == (10.0, 2.0, None)
    with pytest.raises(csv_import.CellError, match="greater than 0"):
        line_amounts(0, {"line_revenue": 18.0, "discount_amount": 2.0}, cols)


def test_command_usage_errors(tmp_path, capsys):
    csv_path = tmp_path / "x.csv"
    csv_path.write_text("a,b\n1,2\n", encoding="utf-8")
    assert csv_import.main([str(csv_path), "--mapping", "superstore", "--dry-run"]) == 2
    assert "not in the header" in capsys.readouterr().err
    assert csv_import.main([str(tmp_path / "missing.csv"), "--mapping", "superstore"]) == 2
    assert csv_import.main([str(csv_path), "--mapping", "superstore", "--batch-size", "0"]) == 2
