"""Sample data: a believable online store, generated deterministically and ingested.

`generate(config)` streams `(kind, batch)` pairs (products first, then orders, events,
activities and expenses day by day) in batches of at most 5,000 records, every record
valid under the ingest schemas. The same `seed` and `end` always give the same records.
Memory stays bounded by one day of records plus one pending repeat order per returning
customer, so a million orders are fine.

What the data holds (see docs/metrics.md for what the numbers mean):

- a product catalog (categories, subcategories, brands, long-tailed prices, costs of
  40-75 % of the price, stock with some products out of stock or under their
  reorder point, a few inactive ones), with Zipf-like popularity;
- customers in the US, Brazil, Canada, the UK and Germany, each with a first order
  and, for returning ones, a geometric number of repeat orders weeks to months apart;
- orders with weekly (Monday peak, Saturday dip) and yearly seasonality (Black Friday,
  November/December peak, summer dip), a daily curve of hours in the store's time
  zone, 1-5 lines, line and order discounts, shipping, tax, EUR orders with an
  `fx_rate`, lines without a cost, and statuses whose timestamps follow the order's
  life up to `end` (older orders delivered, recent ones paid or processing, about 5 %
  pending, 6 % cancelled and 4 % refunded: partly, fully, or without an amount);
- payment events: `payment_failed` before some payments, `payment_succeeded` for every
  sale (value = total billed), `refund_issued` for refunded orders (value = refunded
  amount, else the order value) and a few `chargeback_opened`;
- user activity in sessions that walk the funnel page_view -> product_view ->
  add_to_cart -> checkout_started -> purchase with drop-off, searches (messy case and
  spacing, about 12 % without results), logins, signups, wish lists, cart removals,
  bounces, and reviews after delivered orders; purchases carry the order's id;
- expenses: daily ad spend per channel and campaign, weekly shipping, payment fees
  and affiliate commissions, monthly salaries, software and rent.

Command line: `python -m analytics_service seed --help` (or
`python -m analytics_service.devtools.sample_data --help`).

Modules: `base` (kinds, `SampleConfig`), `reference` (the store's reference data),
`helpers`, `generator` (`generate`, with `state`, `orders`, `activity` and
`expenses` for each kind of record), `sinks` (`ingest` and its destinations), `cli`.
"""

from __future__ import annotations

from .base import BATCH_SIZE, KINDS, SampleConfig
from .cli import build_parser, main
from .generator import generate
from .sinks import HTTP_ROUTES, DirectSink, HttpSink, NdjsonSink, Sink, SinkError, ingest

__all__ = [
    "BATCH_SIZE",
    "HTTP_ROUTES",
    "KINDS",
    "DirectSink",
    "HttpSink",
    "NdjsonSink",
    "SampleConfig",
    "Sink",
    "SinkError",
    "build_parser",
    "generate",
    "ingest",
    "main",
]
