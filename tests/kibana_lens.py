"""Kibana's side of the panels-equal-the-API checks: the saved objects' data views, a KQL
translator for the subset the panels use, and each Lens layer as the Elasticsearch request
that computes it.

The request follows what Lens asks Elasticsearch for (its esaggs expression): the layer's
query and the time range on the data view's time field (`gte` start, `lte` end, as Kibana's
time filter); bucket columns nested in columnOrder
(date_histogram with a calendar interval in Kibana's time zone, terms ordered by their column,
filters); metric columns as sum / avg / min / max / cardinality / doc count, each wrapped in a
`filter` aggregation when the column has a KQL filter; a column with a time shift is answered by
the same request over the period moved back by the shift (its date keys moved forward again);
formula columns are their tinymath tree over the other columns; static_value and time_range are
constants of the panel and the period. Not covered (no panel uses them): percentiles, ranges,
moving averages, cumulative sums, Lucene queries, pinned filters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from analytics_service.kibana.saved_objects import SavedObject

RECORDS = "___records___"  # Lens's "count of records" pseudo field
SHIFTS = {"1d": timedelta(days=1), "1w": timedelta(weeks=1), "1M": None}


# -- time ranges -------------------------------------------------------------------------------

_DATE_MATH = re.compile(r"now((?:[+-]\d+[smhd])*)(?:/([d]))?")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def kibana_range(time_from: str, time_to: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of a Kibana time range in relative date math (`now-13d/d`), as Kibana's
    calculateBounds reads it: `from` rounded down, `to` rounded up (to the last millisecond of
    its day), so the half-open end is one millisecond after that. Days in `now`'s zone
    (Kibana's dateFormat:tz). Only the forms the saved objects use are read."""

    def resolve(expr: str, round_up: bool) -> datetime:
        m = _DATE_MATH.fullmatch(expr)
        assert m, f"date math {expr!r} is not translated"
        moment = now
        for sign, amount, unit in re.findall(r"([+-])(\d+)([smhd])", m.group(1)):
            delta = timedelta(**{_UNITS[unit]: int(amount)})
            moment = moment + delta if sign == "+" else moment - delta
        if m.group(2):
            moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
            if round_up:
                moment += timedelta(days=1) - timedelta(milliseconds=1)
        return moment

    return resolve(time_from, False), resolve(time_to, True) + timedelta(milliseconds=1)


# -- KQL ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(\()|(\))|(:)|"((?:[^"\\]|\\.)*)"|([^\s():"]+))')


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"KQL: cannot read {text[pos:]!r}")
        pos = m.end()
        if m[1]:
            out.append(("(", "("))
        elif m[2]:
            out.append((")", ")"))
        elif m[3]:
            out.append((":", ":"))
        elif m[4] is not None:
            out.append(("quoted", m[4]))
        else:
            word = m[5]
            out.append(("op", word.lower()) if word.lower() in ("and", "or", "not") else ("word", word))
    return out


class _Kql:
    """Recursive descent over: or / and / not, parentheses, `field:value`, `field:(a or b)`,
    `field:"phrase"`, `field:*` (Kibana's KQL grammar, the part the panels use)."""

    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.fields: set[str] = set()

    def peek(self, kind: str, value: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        k, v = self.toks[self.i]
        return k == kind and (value is None or v == value)

    def take(self, kind: str, value: str | None = None) -> str:
        if not self.peek(kind, value):
            raise ValueError(f"KQL: expected {value or kind} at token {self.i} of {self.toks}")
        self.i += 1
        return self.toks[self.i - 1][1]

    def parse(self) -> dict[str, Any]:
        if not self.toks:
            return {"match_all": {}}
        query = self.or_()
        if self.i != len(self.toks):
            raise ValueError(f"KQL: unexpected {self.toks[self.i :]}")
        return query

    def or_(self, value_of: str | None = None) -> dict[str, Any]:
        parts = [self.and_(value_of)]
        while self.peek("op", "or"):
            self.take("op")
            parts.append(self.and_(value_of))
        return parts[0] if len(parts) == 1 else {"bool": {"should": parts, "minimum_should_match": 1}}

    def and_(self, value_of: str | None) -> dict[str, Any]:
        parts = [self.not_(value_of)]
        while self.peek("op", "and"):
            self.take("op")
            parts.append(self.not_(value_of))
        return parts[0] if len(parts) == 1 else {"bool": {"filter": parts}}

    def not_(self, value_of: str | None) -> dict[str, Any]:
        if self.peek("op", "not"):
            self.take("op")
            return {"bool": {"must_not": [self.not_(value_of)]}}
        if self.peek("("):
            self.take("(")
            inner = self.or_(value_of)
            self.take(")")
            return inner
        if value_of is not None:
            return self.value(value_of)
        name = self.take("word")
        self.take(":")
        self.fields.add(name)
        if self.peek("("):
            self.take("(")
            inner = self.or_(value_of=name)
            self.take(")")
            return inner
        return self.value(name)

    def value(self, name: str) -> dict[str, Any]:
        if self.peek("quoted"):
            return {"match_phrase": {name: self.take("quoted")}}
        word = self.take("word")
        if word == "*":
            return {"exists": {"field": name}}
        return {"match": {name: word}}


def kql_query(text: str) -> dict[str, Any]:
    return _Kql(text).parse()


def kql_fields(text: str) -> set[str]:
    parser = _Kql(text)
    parser.parse()
    return parser.fields


# -- data views ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataView:
    id: str
    index: str  # the title: the index pattern it reads
    time_field: str | None
    runtime: dict[str, Any] = field(default_factory=dict)


def data_views(objects: list[SavedObject]) -> dict[str, DataView]:
    import json

    out = {}
    for obj in objects:
        if obj["type"] == "index-pattern":
            a = obj["attributes"]
            out[obj["id"]] = DataView(
                obj["id"], a["title"], a.get("timeFieldName"), json.loads(a.get("runtimeFieldMap") or "{}")
            )
    return out


# -- Lens layers as requests -------------------------------------------------------------------


@dataclass
class Layer:
    id: str
    view: DataView
    columns: dict[str, dict[str, Any]]
    order: list[str]
    query: str  # the Lens state's KQL query

    @property
    def buckets(self) -> list[str]:
        return [c for c in self.order if self.columns[c].get("isBucketed")]

    @property
    def metrics(self) -> list[str]:
        """Metric columns Elasticsearch computes (not formulas, math, constants)."""
        return [
            c
            for c in self.order
            if not self.columns[c].get("isBucketed")
            and self.columns[c]["operationType"] not in ("formula", "math", "static_value", "time_range")
        ]


def lens_layers(lens: SavedObject, views: dict[str, DataView]) -> dict[str, Layer]:
    refs = {r["name"]: r["id"] for r in lens["references"]}
    state = lens["attributes"]["state"]
    out = {}
    for layer_id, layer in state["datasourceStates"]["formBased"]["layers"].items():
        view = views[refs[f"indexpattern-datasource-layer-{layer_id}"]]
        out[layer_id] = Layer(layer_id, view, layer["columns"], layer["columnOrder"], state["query"]["query"])
    return out


def _metric_agg(column: dict[str, Any]) -> dict[str, Any] | None:
    op = column["operationType"]
    if op == "count":
        return None if column["sourceField"] == RECORDS else {"value_count": {"field": column["sourceField"]}}
    if op == "unique_count":
        return {"cardinality": {"field": column["sourceField"]}}
    if op in ("sum", "min", "max"):
        return {op: {"field": column["sourceField"]}}
    if op == "average":
        return {"avg": {"field": column["sourceField"]}}
    if op == "last_value":
        sort = column["params"]["sortField"]
        return {"top_hits": {"size": 1, "sort": [{sort: "desc"}], "_source": [column["sourceField"]]}}
    raise ValueError(f"operation {op} is not translated")


def _metric_aggs(layer: Layer, names: list[str]) -> dict[str, Any]:
    aggs: dict[str, Any] = {}
    for cid in names:
        column = layer.columns[cid]
        agg = _metric_agg(column)
        if "filter" in column:
            aggs[cid] = {"filter": kql_query(column["filter"]["query"]), "aggs": {"v": agg} if agg else {}}
        elif agg is not None:
            aggs[cid] = agg
    return aggs


def _order_path(layer: Layer, cid: str) -> str:
    column = layer.columns[cid]
    has_agg = _metric_agg(column) is not None
    if "filter" in column:
        return f"{cid}>v" if has_agg else cid
    return cid if has_agg else "_count"


def _bucket_agg(layer: Layer, cid: str, start: datetime, end: datetime, tz: str) -> dict[str, Any]:
    column = layer.columns[cid]
    op, params = column["operationType"], column.get("params", {})
    if op == "date_histogram":
        interval = {"1d": "day", "1w": "week", "1M": "month", "1h": "hour"}[params["interval"]]
        return {
            "date_histogram": {
                "field": column["sourceField"],
                "calendar_interval": interval,
                "time_zone": tz,
                "min_doc_count": 0,
                "extended_bounds": {"min": int(start.timestamp() * 1000), "max": int(end.timestamp() * 1000) - 1},
                "format": "yyyy-MM-dd",
            }
        }
    if op == "terms":
        order = params["orderBy"]
        if order["type"] == "column":
            by = {_order_path(layer, order["columnId"]): params["orderDirection"]}
        else:
            by = {"_key": params.get("orderDirection", "asc")}
        return {"terms": {"field": column["sourceField"], "size": params["size"], "order": [by, {"_key": "asc"}]}}
    if op == "filters":
        return {"filters": {"filters": {f["label"]: kql_query(f["input"]["query"]) for f in params["filters"]}}}
    raise ValueError(f"bucket operation {op} is not translated")


def layer_request(layer: Layer, start: datetime, end: datetime, tz: str, shift: str | None) -> dict[str, Any]:
    """The search body for the layer's metrics with time shift `shift` over [start, end)."""
    delta = SHIFTS[shift] if shift else timedelta(0)
    assert delta is not None, f"time shift {shift} is not translated"
    s, e = start - delta, end - delta
    filters = [kql_query(layer.query)] if layer.query else []
    if layer.view.time_field:
        # Kibana's time filter includes its end (lte); a whole-day absolute range ends at
        # 23:59:59.999, which makes it the API's half-open period.
        last = (e - timedelta(milliseconds=1)).isoformat(timespec="milliseconds")
        filters.append({"range": {layer.view.time_field: {"gte": s.isoformat(), "lte": last}}})
    metrics = [c for c in layer.metrics if layer.columns[c].get("timeShift") == shift]
    aggs = _metric_aggs(layer, metrics)
    innermost = layer.buckets[-1] if layer.buckets else None
    for cid in reversed(layer.buckets):
        order = layer.columns[cid].get("params", {}).get("orderBy", {})
        if cid != innermost and order.get("type") == "column":
            # Top values ordered by a metric above other buckets: the metric is computed beside
            # them too, as Lens's orderAgg does, so the order is over the whole period.
            aggs = {**aggs, **_metric_aggs(layer, [order["columnId"]])}
        aggs = {cid: {**_bucket_agg(layer, cid, s, e, tz), "aggs": aggs}}
    body: dict[str, Any] = {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": filters}}, "aggs": aggs}
    if layer.view.runtime:
        body["runtime_mappings"] = layer.view.runtime
    return body


def _metric_value(column: dict[str, Any], node: dict[str, Any], cid: str) -> float | None:
    agg = _metric_agg(column)
    if "filter" in column:
        node = node[cid]
        if agg is None:
            return float(node["doc_count"])
        node = {cid: node["v"]}
    if agg is None:
        return float(node["doc_count"])
    got = node[cid]
    if "hits" in got:
        hits = got["hits"]["hits"]
        return hits[0]["_source"].get(column["sourceField"]) if hits else None
    value = got.get("value")
    return None if value is None else float(value)


def _rows(layer: Layer, node: dict[str, Any], buckets: list[str], metrics: list[str], key: tuple) -> dict[tuple, dict]:
    if not buckets:
        return {key: {cid: _metric_value(layer.columns[cid], node, cid) for cid in metrics}}
    cid, rest = buckets[0], buckets[1:]
    raw = node[cid]["buckets"]
    items = raw.items() if isinstance(raw, dict) else ((b.get("key_as_string", b["key"]), b) for b in raw)
    out: dict[tuple, dict] = {}
    for k, bucket in items:
        out.update(_rows(layer, bucket, rest, metrics, (*key, k)))
    return out


def _shift_key(key: tuple, layer: Layer, shift: str) -> tuple:
    """A shifted row's key in the unshifted period: its date keys moved forward by the shift."""
    delta = SHIFTS[shift]
    assert delta is not None
    out = []
    for cid, k in zip(layer.buckets, key, strict=True):
        if layer.columns[cid]["operationType"] == "date_histogram":
            k = (datetime.fromisoformat(k) + delta).strftime("%Y-%m-%d")
        out.append(k)
    return tuple(out)


def _math(node: Any, values: dict[str, float | None]) -> float | None:
    if isinstance(node, (int, float)):
        return float(node)
    if isinstance(node, str):
        return values[node]
    args = [_math(a, values) for a in node["args"]]
    if any(a is None for a in args):
        return None
    a, b = args
    assert a is not None and b is not None
    return {"add": a + b, "subtract": a - b, "multiply": a * b, "divide": a / b if b else None}[node["name"]]


def evaluate(es: Elasticsearch, layer: Layer, start: datetime, end: datetime, tz: str = "UTC") -> dict[tuple, dict]:
    """The layer's table, as Lens would show it: bucket keys -> {column id: value}."""
    # One request per time shift; a layer of constants only (a reference line) still gets its row.
    shifts = sorted({layer.columns[c].get("timeShift") for c in layer.metrics}, key=lambda s: s or "") or [None]
    rows: dict[tuple, dict] = {}
    for shift in shifts:
        metrics = [c for c in layer.metrics if layer.columns[c].get("timeShift") == shift]
        response = es.search(index=layer.view.index, body=layer_request(layer, start, end, tz, shift))
        aggs = dict(response.get("aggregations", {}))
        aggs["doc_count"] = response["hits"]["total"]["value"]
        for key, values in _rows(layer, aggs, layer.buckets, metrics, ()).items():
            if shift:
                key = _shift_key(key, layer, shift)
            rows.setdefault(key, {}).update(values)
    span = (end - start).total_seconds() * 1000
    for values in rows.values():
        for cid in layer.order:
            column = layer.columns[cid]
            if column["operationType"] == "static_value":
                values[cid] = float(column["params"]["value"])
            elif column["operationType"] == "time_range":
                values[cid] = span
        for cid in layer.order:  # math columns come after their parts in columnOrder
            column = layer.columns[cid]
            if column["operationType"] == "math":
                values[cid] = _math(column["params"]["tinymathAst"], values)
        for cid in layer.order:
            column = layer.columns[cid]
            if column["operationType"] == "formula":
                values[cid] = values[column["references"][0]]
    return rows
