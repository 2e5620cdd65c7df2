"""Sample data: a believable online store, generated deterministically and ingested.

`generate(config)` streams `(kind, batch)` pairs (products first, then orders, events,
activities and expenses day by day) in batches of at most 5,000 records, every record
valid under the ingest schemas. The same `seed` and `end` always give the same records.
Memory stays bounded by one day of records plus one pending repeat order per returning
customer, so a million orders are fine.

What the data holds (see METRICS.md for what the numbers mean):

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
`python -m analytics_service.sample_data --help`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

KINDS = ("products", "orders", "events", "activities", "expenses")
BATCH_SIZE = 5000

# API paths and body keys per kind (API.md "Ingest").
HTTP_ROUTES = {
    "orders": ("/api/v1/analytics/orders/index", "orders"),
    "events": ("/api/v1/analytics/events/track", "events"),
    "activities": ("/api/v1/analytics/user-activity/index", "activities"),
    "products": ("/api/v1/analytics/products/index", "products"),
    "expenses": ("/api/v1/analytics/expenses/index", "expenses"),
}


@dataclass
class SampleConfig:
    seed: int = 42
    orders: int = 1000
    activity: int | None = None  # None: 5,000 up to 1,000 orders, else 5 per order
    days: int = 365
    end: date | None = None  # None: today in the store's time zone; the period is [end - days, end)
    store_id: str = "default"
    timezone: str = "UTC"
    base_currency: str = "USD"

    @property
    def activity_count(self) -> int:
        if self.activity is not None:
            return self.activity
        return 5000 if self.orders <= 1000 else 5 * self.orders

    @property
    def end_date(self) -> date:
        """The period's end (exclusive): 00:00 of this date in the store's time zone."""
        return self.end or datetime.now(ZoneInfo(self.timezone)).date()

    @property
    def product_count(self) -> int:
        return min(2000, 60 + self.orders // 20)


# ---------------------------------------------------------------------------------------
# Reference data
# ---------------------------------------------------------------------------------------

# category -> subcategory -> (median price, log-sd, product nouns); brands per category
CATALOG: dict[str, tuple[list[str], dict[str, tuple[float, float, list[str]]]]] = {
    "Electronics": (["Sonora", "Voltix", "Nimbus", "Auralis", "Kepler"], {
        "Headphones": (79.0, 0.55, ["Wireless Headphones", "Earbuds", "Studio Headphones", "Noise Cancelling Headphones"]),
        "Smartphones": (449.0, 0.45, ["Smartphone", "Phone"]),
        "Laptops": (899.0, 0.35, ["Laptop", "Ultrabook", "Notebook PC"]),
        "Accessories": (19.0, 0.6, ["USB-C Cable", "Charger", "Phone Case", "Power Bank", "Screen Protector"]),
        "Smart Home": (59.0, 0.5, ["Smart Plug", "Smart Speaker", "Security Camera", "Smart Bulb"]),
    }),
    "Home & Kitchen": (["Casa Nova", "Hearth & Co", "Lumen", "Oakridge"], {
        "Cookware": (45.0, 0.55, ["Frying Pan", "Saucepan", "Dutch Oven", "Knife Set"]),
        "Coffee & Tea": (29.0, 0.7, ["Coffee Grinder", "French Press", "Espresso Machine", "Tea Kettle"]),
        "Bedding": (55.0, 0.45, ["Duvet Cover", "Pillow", "Sheet Set", "Weighted Blanket"]),
        "Storage": (22.0, 0.5, ["Storage Box", "Shelf Organizer", "Food Container Set"]),
        "Decor": (34.0, 0.6, ["Table Lamp", "Wall Art", "Scented Candle", "Vase"]),
    }),
    "Fashion": (["Northwind Apparel", "Urbano", "Drift", "Solstice"], {
        "Shoes": (69.0, 0.4, ["Sneakers", "Running Shoes", "Boots", "Sandals"]),
        "T-Shirts": (22.0, 0.35, ["T-Shirt", "Graphic Tee", "Polo Shirt"]),
        "Jackets": (99.0, 0.4, ["Rain Jacket", "Denim Jacket", "Puffer Jacket"]),
        "Bags": (49.0, 0.55, ["Backpack", "Tote Bag", "Crossbody Bag", "Duffel Bag"]),
    }),
    "Sports & Outdoors": (["Peakline", "Stride", "TerraTrek", "Velo"], {
        "Running": (39.0, 0.5, ["Running Belt", "Running Socks", "Hydration Vest"]),
        "Yoga": (29.0, 0.45, ["Yoga Mat", "Yoga Block", "Yoga Strap"]),
        "Camping": (89.0, 0.6, ["Tent", "Sleeping Bag", "Camping Stove", "Headlamp"]),
        "Cycling": (59.0, 0.7, ["Bike Helmet", "Bike Light", "Cycling Gloves", "Bike Lock"]),
        "Fitness": (35.0, 0.6, ["Dumbbell Set", "Resistance Bands", "Kettlebell", "Jump Rope"]),
    }),
    "Beauty & Health": (["Aurea", "Botanica", "Pure Glow"], {
        "Skincare": (24.0, 0.5, ["Face Serum", "Moisturizer", "Sunscreen", "Cleanser"]),
        "Haircare": (16.0, 0.45, ["Shampoo", "Conditioner", "Hair Oil", "Hair Dryer"]),
        "Fragrances": (59.0, 0.4, ["Eau de Parfum", "Body Mist", "Cologne"]),
        "Supplements": (27.0, 0.35, ["Multivitamin", "Protein Powder", "Omega-3"]),
    }),
    "Toys & Games": (["Playforge", "Tinker", "BrightMinds"], {
        "Board Games": (32.0, 0.4, ["Board Game", "Card Game", "Strategy Game"]),
        "Puzzles": (18.0, 0.4, ["Jigsaw Puzzle", "3D Puzzle"]),
        "Building Sets": (45.0, 0.7, ["Building Set", "Robot Kit", "Marble Run"]),
        "Plush": (15.0, 0.35, ["Plush Bear", "Plush Dinosaur", "Plush Unicorn"]),
    }),
    "Books": (["Lighthouse Press", "Paperfox"], {
        "Fiction": (16.0, 0.3, ["Novel", "Thriller", "Fantasy Novel"]),
        "Non-fiction": (21.0, 0.3, ["Biography", "History Book", "Business Book"]),
        "Children's": (11.0, 0.3, ["Picture Book", "Activity Book"]),
        "Cookbooks": (26.0, 0.3, ["Cookbook", "Baking Book"]),
    }),
    "Office": (["Officio", "Inkwell"], {
        "Stationery": (9.0, 0.5, ["Pen Set", "Sticky Notes", "Desk Organizer"]),
        "Desks & Chairs": (229.0, 0.45, ["Office Chair", "Standing Desk", "Desk Lamp"]),
        "Printers": (149.0, 0.45, ["Inkjet Printer", "Laser Printer", "Ink Cartridge"]),
        "Notebooks": (12.0, 0.35, ["Notebook", "Planner", "Sketchbook"]),
    }),
}
CATEGORY_WEIGHT = {"Electronics": 1.3, "Home & Kitchen": 1.2, "Fashion": 1.4, "Sports & Outdoors": 1.0,
                   "Beauty & Health": 1.0, "Toys & Games": 0.7, "Books": 0.6, "Office": 0.5}
MODELS = ["Pro", "Lite", "Max", "Classic", "Eco", "Plus", "Mini", "Ultra", "Air", "Prime", "One", "Go", "X", "S"]

# country -> (region, state, city, postal code, weight)
GEO: dict[str, list[tuple[str, str, str, str, float]]] = {
    "US": [
        ("West", "California", "Los Angeles", "90012", 6), ("West", "California", "San Francisco", "94103", 4),
        ("West", "California", "San Diego", "92101", 2), ("West", "Washington", "Seattle", "98101", 3),
        ("West", "Colorado", "Denver", "80202", 2), ("East", "New York", "New York City", "10001", 7),
        ("East", "New York", "Buffalo", "14202", 1), ("East", "Massachusetts", "Boston", "02108", 2),
        ("East", "Pennsylvania", "Philadelphia", "19103", 3), ("Central", "Texas", "Houston", "77002", 3),
        ("Central", "Texas", "Austin", "78701", 2), ("Central", "Texas", "Dallas", "75201", 2),
        ("Central", "Illinois", "Chicago", "60601", 4), ("South", "Florida", "Miami", "33130", 3),
        ("South", "Florida", "Orlando", "32801", 1), ("South", "Georgia", "Atlanta", "30303", 2),
    ],
    "BR": [
        ("Sudeste", "São Paulo", "São Paulo", "01310-100", 9), ("Sudeste", "São Paulo", "Campinas", "13010-001", 2),
        ("Sudeste", "Rio de Janeiro", "Rio de Janeiro", "20040-002", 5),
        ("Sudeste", "Minas Gerais", "Belo Horizonte", "30130-010", 3),
        ("Sul", "Rio Grande do Sul", "Porto Alegre", "90010-150", 2), ("Sul", "Paraná", "Curitiba", "80010-000", 2),
        ("Nordeste", "Bahia", "Salvador", "40020-000", 2), ("Nordeste", "Pernambuco", "Recife", "50010-000", 1),
    ],
    "CA": [
        ("Central Canada", "Ontario", "Toronto", "M5V 2T6", 5), ("Central Canada", "Ontario", "Ottawa", "K1P 1J1", 1),
        ("Central Canada", "Quebec", "Montreal", "H2X 1Y4", 3),
        ("Western Canada", "British Columbia", "Vancouver", "V6B 1A1", 3),
        ("Western Canada", "Alberta", "Calgary", "T2P 1J9", 2),
    ],
    "GB": [
        ("England", "Greater London", "London", "SW1A 1AA", 8), ("England", "Greater Manchester", "Manchester", "M1 1AE", 2),
        ("England", "West Midlands", "Birmingham", "B1 1BB", 2), ("Scotland", "City of Edinburgh", "Edinburgh", "EH1 1YZ", 1),
        ("Wales", "Cardiff", "Cardiff", "CF10 1EP", 1),
    ],
    "DE": [
        ("Süd", "Bayern", "München", "80331", 3), ("Süd", "Baden-Württemberg", "Stuttgart", "70173", 2),
        ("Nord", "Hamburg", "Hamburg", "20095", 2), ("Ost", "Berlin", "Berlin", "10115", 4),
        ("West", "Nordrhein-Westfalen", "Köln", "50667", 2), ("West", "Nordrhein-Westfalen", "Düsseldorf", "40213", 1),
    ],
}
# Country mix by the store's home country (from its time zone).
COUNTRY_MIX = {
    "US": {"US": 0.62, "CA": 0.12, "GB": 0.09, "DE": 0.08, "BR": 0.09},
    "BR": {"BR": 0.80, "US": 0.07, "CA": 0.02, "GB": 0.03, "DE": 0.08},
    "GB": {"GB": 0.60, "DE": 0.15, "US": 0.15, "CA": 0.05, "BR": 0.05},
    "DE": {"DE": 0.30, "GB": 0.25, "US": 0.25, "CA": 0.05, "BR": 0.15},
    "CA": {"CA": 0.55, "US": 0.28, "GB": 0.06, "DE": 0.06, "BR": 0.05},
}
HOME_BY_ZONE = {"America/Sao_Paulo": "BR", "America/Fortaleza": "BR", "America/Recife": "BR", "America/Bahia": "BR",
                "America/Manaus": "BR", "America/Toronto": "CA", "America/Vancouver": "CA", "America/Montreal": "CA",
                "Europe/London": "GB", "Europe/Berlin": "DE"}
TAX_RATE = {"US": 0.07, "CA": 0.13, "GB": 0.0, "DE": 0.0, "BR": 0.0}
SEGMENTS = [("Consumer", 52), ("Corporate", 30), ("Home Office", 18)]
FIRST_NAMES = {
    "EN": ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Emily", "Daniel",
           "Sarah", "Chris", "Jessica", "Matthew", "Ashley", "Olivia", "Liam", "Noah", "Emma", "Ava", "Ethan",
           "Sophia", "Mason", "Chloe", "Lucas", "Grace", "Ryan", "Megan", "Jack"],
    "PT": ["João", "Maria", "Ana", "Pedro", "Lucas", "Juliana", "Gabriel", "Beatriz", "Rafael", "Camila", "Mateus",
           "Larissa", "Felipe", "Fernanda", "Bruno", "Carolina", "Gustavo", "Mariana", "Thiago", "Letícia"],
    "DE": ["Lukas", "Anna", "Leon", "Marie", "Felix", "Sophie", "Jonas", "Lea", "Paul", "Hannah", "Max", "Laura",
           "Finn", "Lena", "Elias", "Mia", "Noah", "Emilia", "Ben", "Clara"],
}
LAST_NAMES = {
    "EN": ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
           "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
           "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green", "Adams", "Baker", "Campbell"],
    "PT": ["Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes",
           "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes", "Vieira", "Barbosa"],
    "DE": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
           "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Braun", "Zimmermann", "Krüger"],
}
LANGUAGE = {"US": "EN", "CA": "EN", "GB": "EN", "BR": "PT", "DE": "DE"}
EMAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "hotmail.com"]
ASCII = str.maketrans({"ã": "a", "á": "a", "â": "a", "é": "e", "ê": "e", "í": "i", "ó": "o", "ô": "o", "ú": "u",
                       "ç": "c", "ü": "ue", "ö": "oe", "ä": "ae", "ß": "ss"})

# country -> ([(first name, its e-mail form)], [(last name, its e-mail form)])
NAMES = {country: tuple([(n, n.lower().translate(ASCII)) for n in names[LANGUAGE[country]]]
                        for names in (FIRST_NAMES, LAST_NAMES)) for country in LANGUAGE}

# Payment methods per customer country: (method, weight, failure rate of one attempt)
PAYMENT_MIX = {
    "BR": [("card", 45, 0.07), ("pix", 30, 0.04), ("boleto", 15, 0.2), ("paypal", 7, 0.06), ("gift_card", 3, 0.03)],
    "default": [("card", 70, 0.08), ("paypal", 22, 0.06), ("gift_card", 5, 0.03), ("pix", 2, 0.04), ("boleto", 1, 0.2)],
}
PAYMENT_STATUS = {"pending": "pending", "cancelled": "failed", "refunded": "refunded"}
FAIL_REASONS = ["card_declined", "insufficient_funds", "expired_card", "fraud_suspected", "timeout", "payment_expired"]
REFUND_REASONS = ["damaged", "not_as_described", "changed_mind", "wrong_size", "late_delivery"]
CHANNELS = [("web", 55), ("mobile", 30), ("marketplace", 15)]
UTMS = [
    ({"source": "google", "medium": "cpc", "campaign": "search-always-on"}, 30),
    ({"source": "google", "medium": "organic"}, 20),
    ({"source": "facebook", "medium": "paid_social", "campaign": "prospecting"}, 14),
    ({"source": "instagram", "medium": "paid_social", "campaign": "retargeting"}, 12),
    ({"source": "newsletter", "medium": "email", "campaign": "weekly-digest"}, 12),
    ({"source": "tiktok", "medium": "paid_social", "campaign": "creators"}, 6),
    ({"source": "affiliate", "medium": "referral", "campaign": "partners"}, 6),
]
REFERRERS = {"google": "https://www.google.com/", "facebook": "https://www.facebook.com/",
             "instagram": "https://www.instagram.com/", "tiktok": "https://www.tiktok.com/",
             "newsletter": "https://mail.google.com/", "affiliate": "https://www.bestdeals-blog.com/"}
DEVICES = [
    ({"type": "desktop", "os": "Windows", "browser": "Chrome"}, 20), ({"type": "desktop", "os": "Windows", "browser": "Edge"}, 6),
    ({"type": "desktop", "os": "macOS", "browser": "Safari"}, 8), ({"type": "desktop", "os": "macOS", "browser": "Chrome"}, 7),
    ({"type": "desktop", "os": "Linux", "browser": "Firefox"}, 2),
    ({"type": "mobile", "os": "iOS", "browser": "Safari"}, 22), ({"type": "mobile", "os": "Android", "browser": "Chrome"}, 26),
    ({"type": "mobile", "os": "Android", "browser": "Samsung Internet"}, 3),
    ({"type": "tablet", "os": "iPadOS", "browser": "Safari"}, 4), ({"type": "tablet", "os": "Android", "browser": "Chrome"}, 2),
]
APP_DEVICES = [({"type": "mobile", "os": "iOS", "browser": "App"}, 45), ({"type": "mobile", "os": "Android", "browser": "App"}, 55)]
ZERO_RESULT_QUERIES = ["unicorn onesie", "hoverboard", "ps6", "gift card mexico", "hedphones", "runing shoos",
                       "yoga matt", "iphone 27", "leather sofa", "lawn mower", "wedding dress", "fidget spinner xl",
                       "drone with camera", "ebike battery 72v"]
REVIEW_TEXT = {
    5: ["Absolutely love it, exactly as described.", "Great quality, fast delivery. Would buy again!",
        "Five stars, my second one already.", "Exceeded my expectations."],
    4: ["Very good, minor issues with the packaging.", "Good value for the price.", "Works well, shipping took a while."],
    3: ["It's okay. Does the job.", "Average quality, fair price.", "Not bad, not great."],
    2: ["Smaller than expected.", "Quality could be better for the price.", "Arrived late and a bit scratched."],
    1: ["Broke after two days.", "Not as described, returning it.", "Terrible, would not recommend."],
}
RATINGS = [(5, 45), (4, 28), (3, 12), (2, 7), (1, 8)]

# Order volume: Monday = 0. Online stores peak early in the week and dip on Saturday.
WEEKDAY_FACTOR = [1.14, 1.08, 1.03, 1.0, 0.95, 0.80, 0.90]
MONTH_FACTOR = [0.85, 0.86, 0.95, 0.96, 1.0, 0.88, 0.84, 0.90, 0.97, 1.04, 1.40, 1.35]
# Orders (and sessions) per local hour.
HOUR_WEIGHTS = [0.6, 0.35, 0.2, 0.15, 0.12, 0.15, 0.3, 0.6, 1.0, 1.4, 1.6, 1.7, 1.8, 1.7, 1.6, 1.5, 1.5, 1.6,
                1.8, 2.1, 2.3, 2.2, 1.7, 1.1]

# Customers: probability of coming back at all, then of each further repeat.
P_RETURN = 0.66
P_CONTINUE = 0.71
# Sessions: share ending in a purchase, then (of the others) reaching checkout / cart / product pages.
P_PURCHASE_SESSION = 0.10
BROWSE_DEPTH = (0.056, 0.167, 0.556)  # cumulative: checkout, add_to_cart, product_view
P_LOGGED_IN = 0.35
P_SEARCH = 0.35
P_ZERO_RESULTS = 0.12

MASK64 = (1 << 64) - 1


def _table(items: list[tuple[Any, float]], size: int = 1000) -> list[Any]:
    """A lookup table for weighted picks: table[int(random() * len(table))]."""
    total = sum(w for _, w in items)
    table: list[Any] = []
    acc = 0.0
    for value, weight in items:
        acc += weight
        while len(table) < round(acc / total * size):
            table.append(value)
    return table


def _mix64(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def _allocate(total: int, weights: list[float]) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder)."""
    s = sum(weights)
    if total <= 0 or s <= 0:
        return [0] * len(weights)
    raw = [total * w / s for w in weights]
    counts = [int(x) for x in raw]
    rest = total - sum(counts)
    order = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    for i in order[:rest]:
        counts[i] += 1
    return counts


_TIMES: list[str] = []


def _time_strings() -> list[str]:
    """'HH:MM:SSZ' for every second of a day (formatting by lookup is the fast path)."""
    if not _TIMES:
        _TIMES.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in range(86400))
    return _TIMES


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower().translate(ASCII)).strip("-").replace("--", "-")


def _messy(query: str, r: float) -> str:
    """The same query as people type it: case and spacing vary (normalisation must merge them)."""
    if r < 0.55:
        return query
    if r < 0.68:
        return query.title()
    if r < 0.76:
        return query.upper()
    if r < 0.86:
        return "  " + query.replace(" ", "  ") + " "
    if r < 0.94:
        return query.capitalize() + " "
    return query.replace(" ", "   ")


# ---------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------


class _Store:
    """All state of one generation run; `run()` yields the batches."""

    def __init__(self, config: SampleConfig) -> None:
        if config.orders < 0 or config.days < 1:
            raise ValueError("orders must be >= 0 and days >= 1")
        if config.activity_count < 0:
            raise ValueError("activity must be >= 0")
        self.cfg = config
        self.seed = config.seed
        self.store = config.store_id
        self.tz = ZoneInfo(config.timezone)
        self.end_date = config.end_date
        self.start_date = self.end_date - timedelta(days=config.days)
        self.end_ts = int(datetime(self.end_date.year, self.end_date.month, self.end_date.day, tzinfo=self.tz).timestamp())
        self.start_ts = int(datetime(self.start_date.year, self.start_date.month, self.start_date.day,
                                     tzinfo=self.tz).timestamp())
        self.base = config.base_currency
        self.foreign = "EUR" if self.base != "EUR" else "USD"
        self.fx_range = (1.05, 1.12) if self.foreign == "EUR" else (0.89, 0.95)
        # Independent streams, so that e.g. more activity does not change the orders.
        s = config.seed
        self.r_plan = random.Random(f"{s}:plan")
        self.r_cat = random.Random(f"{s}:catalog")
        self.r_ord = random.Random(f"{s}:orders")
        self.r_act = random.Random(f"{s}:activity")
        self.r_exp = random.Random(f"{s}:expenses")
        self.cust_salt = _mix64(s * 7919 + 17)
        self.times = _time_strings()
        self.first_day = self.start_ts // 86400 - 3
        self.day_prefix = [datetime.fromtimestamp(day * 86400, timezone.utc).strftime("%Y-%m-%dT")
                           for day in range(self.first_day, self.end_ts // 86400 + 3)]
        self._tables()
        self._catalog()
        self.n_customers = 0
        self.queue: dict[int, list[int]] = {}
        self.counters = {"event": 0, "activity": 0, "session": 0, "anon": 0}
        self.generated = dict.fromkeys(KINDS, 0)

    # -- set-up -----------------------------------------------------------------------

    def _tables(self) -> None:
        home = HOME_BY_ZONE.get(self.cfg.timezone, "US")
        mix = COUNTRY_MIX[home]
        geo_items = []
        for country, share in mix.items():
            places = GEO[country]
            total = sum(p[4] for p in places)
            for region, state, city, postal, weight in places:
                geo_items.append(((country, region, state, city, postal), share * weight / total))
        self.geo_table = _table(geo_items, 2048)
        self.activity_geo_table = [
            {"country": g[0], "region": g[1], "city": g[3]} for g in self.geo_table]
        self.de_share = mix["DE"]
        self.segment_table = _table(SEGMENTS, 100)
        self.pay_tables = {k: _table([((m, f), w) for m, w, f in v], 200) for k, v in PAYMENT_MIX.items()}
        self.channel_table = _table(CHANNELS, 100)
        self.utm_table = _table(UTMS, 200)
        self.device_table = _table(DEVICES, 200)
        self.app_device_table = _table(APP_DEVICES, 100)
        self.hour_table = _table(list(enumerate(HOUR_WEIGHTS)), 1000)
        self.rating_table = _table(RATINGS, 100)
        self.lines_table = _table([(1, 50), (2, 25), (3, 13), (4, 8), (5, 4)], 100)
        self.qty_table = _table([(1, 70), (2, 18), (3, 8), (4, 4)], 100)
        self.installments_br = _table([(1, 40), (2, 10), (3, 15), (4, 5), (5, 5), (6, 10), (10, 10), (12, 5)], 100)

    def _catalog(self) -> None:
        """Products: static line data, popularity, and the catalog records."""
        r = self.r_cat
        n = self.cfg.product_count
        subs: list[tuple[str, str, list[str], float, float, list[str], float]] = []
        for cat, (brands, subcats) in CATALOG.items():
            for sub, (median, sd, nouns) in subcats.items():
                subs.append((cat, sub, brands, median, sd, nouns, CATEGORY_WEIGHT[cat]))
        sub_table = _table([(i, s[6]) for i, s in enumerate(subs)], 1000)
        ranks = list(range(1, n + 1))
        r.shuffle(ranks)
        self.products: list[dict[str, Any]] = []  # the line fields of each product
        self.product_info: list[tuple[str, str, str, float, float | None]] = []  # id, category, sub, price, cost
        self.by_sub: dict[str, list[int]] = {}
        weights: list[float] = []
        self.catalog_records: list[dict[str, Any]] = []
        names_seen: set[str] = set()
        expected_units = self.cfg.orders * 1.96 * 1.46 / max(1, self.cfg.days)
        for i in range(n):
            si = sub_table[int(r.random() * len(sub_table))] if i >= len(subs) else i
            cat, sub, brands, median, sd, nouns, _ = subs[si]
            brand = brands[int(r.random() * len(brands))]
            noun = nouns[int(r.random() * len(nouns))]
            name = f"{brand} {noun} {MODELS[int(r.random() * len(MODELS))]}"
            k = 2
            while name in names_seen:
                name = f"{brand} {noun} {MODELS[int(r.random() * len(MODELS))]} {k}"
                k += 1
            names_seen.add(name)
            price = round(min(median * 25, median * math.exp(r.gauss(0, sd))), 0) - 0.01
            price = max(1.99, price)
            cost = round(price * (0.40 + 0.35 * r.random()), 2)
            pid = f"p{self.seed}-{i + 1:04d}"
            sku = f"{_slug(cat)[:3].upper()}-{_slug(sub)[:3].upper()}-{i + 1:05d}"
            active = r.random() >= 0.05
            weight = 1.0 / ranks[i] ** 0.9 * (0.15 if not active else 1.0)
            # Cheap things sell more units, expensive ones less.
            weight *= (30.0 / (price + 30.0)) ** 0.35
            weights.append(weight)
            line = {"product_id": pid, "sku": sku, "name": name, "category": cat, "subcategory": sub, "brand": brand}
            self.products.append(line)
            self.product_info.append((pid, cat, sub, price, cost))
            self.by_sub.setdefault(sub, []).append(i)
            self.catalog_records.append({
                "product_id": pid, "store_id": self.store, "name": name, "sku": sku, "category": cat,
                "subcategory": sub, "brand": brand, "price": price, "cost": cost, "active": active,
            })
        total_w = sum(weights)
        self.category_urls = {cat: f"/c/{_slug(cat)}" for cat in CATALOG}
        for i, rec in enumerate(self.catalog_records):
            daily = expected_units * weights[i] / total_w
            reorder = max(2, round(daily * 14))
            x = r.random()
            if x < 0.06:
                stock = 0
            elif x < 0.20:
                stock = 1 + int(r.random() * reorder)
            else:
                stock = reorder + 1 + int(r.random() * max(10, daily * 90))
            rec["stock_quantity"] = stock
            rec["reorder_point"] = reorder
            # The catalog's state as of some time in the last month of the period.
            rec["updated_at"] = self._iso(self.end_ts - 60 - int(r.random() * 30 * 86400))
        self.product_table = _table([(i, w) for i, w in enumerate(weights)], 20000)
        subs_present = sorted(self.by_sub)
        self.search_vocab: list[tuple[str, str]] = []
        for sub in subs_present:
            self.search_vocab.append((sub.lower(), sub))
            for noun in CATALOG[self.products[self.by_sub[sub][0]]["category"]][1][sub][2]:
                self.search_vocab.append((noun.lower(), sub))
        for brands, subcats in CATALOG.values():
            for brand in brands:
                present = [s for s in subcats if s in self.by_sub]
                if present:
                    self.search_vocab.append((brand.lower(), present[0]))
        # Average order value in base currency, for sizing expenses before orders exist.
        mean_price = sum(w * self.product_info[i][3] for i, w in enumerate(weights)) / total_w
        self.aov_estimate = mean_price * 1.46 * 1.96 * 0.97

    # -- helpers ------------------------------------------------------------------------

    def _iso(self, ts: int) -> str:
        """ISO 8601 UTC of an epoch second, by table lookups (the hot path of the generator)."""
        day = ts // 86400
        try:
            return self.day_prefix[day - self.first_day] + self.times[ts - day * 86400]
        except IndexError:
            return datetime.fromtimestamp(day * 86400, timezone.utc).strftime("%Y-%m-%dT") + self.times[ts - day * 86400]

    def _customer(self, cid: int) -> tuple[dict[str, Any], str, int]:
        """(customer object, country, geo index), derived from the id alone (nothing stored)."""
        h = _mix64(cid ^ self.cust_salt)
        gi = (h & 0xFFFF) * len(self.geo_table) >> 16
        country, region, state, city, postal = self.geo_table[gi]
        firsts, lasts = NAMES[country]
        first, first_ascii = firsts[(h >> 16) % len(firsts)]
        last, last_ascii = lasts[(h >> 24) % len(lasts)]
        email = f"{first_ascii}.{last_ascii}{(h >> 32) % 1000}@{EMAIL_DOMAINS[(h >> 42) % len(EMAIL_DOMAINS)]}"
        return ({
            "customer_id": f"c{self.seed}-{cid + 1:06d}", "email": email, "name": f"{first} {last}",
            "segment": self.segment_table[(h >> 48) % 100], "country": country, "region": region,
            "state": state, "city": city, "postal_code": postal,
        }, country, gi)

    def _schedule(self, day: int, entry: int) -> None:
        if day < self.cfg.days:
            self.queue.setdefault(day, []).append(entry)

    def _gap(self) -> int:
        """Days until a returning customer's next order: weeks to months."""
        return 9 + int(self.r_ord.expovariate(1 / 38.0))

    def _event(self, etype: str, ts: int, user: str, order_id: str, value: float, props: dict[str, Any],
               currency: str | None, fx: float | None) -> dict[str, Any]:
        self.counters["event"] += 1
        rec = {"event_id": f"ev{self.seed}-{self.counters['event']}", "event_type": etype, "timestamp": self._iso(ts),
               "user_id": user, "store_id": self.store, "source": "server", "order_id": order_id,
               "value": value, "properties": props}
        if currency is not None:
            rec["currency"] = currency
            rec["fx_rate"] = fx
        return rec

    # -- the plan -----------------------------------------------------------------------

    def _plan(self) -> tuple[list[int], list[int]]:
        """Orders and activity records per day."""
        r = self.r_plan
        weights = []
        black_fridays = set()
        for year in range(self.start_date.year, self.end_date.year + 1):
            nov1 = date(year, 11, 1)
            thanksgiving = nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21)
            black_fridays.add(thanksgiving + timedelta(days=1))
        for d in range(self.cfg.days):
            day = self.start_date + timedelta(days=d)
            w = WEEKDAY_FACTOR[day.weekday()] * MONTH_FACTOR[day.month - 1]
            if day.month == 12 and day.day > 20:
                w *= 0.75
            if day in black_fridays:
                w *= 2.6
            elif day - timedelta(days=3) in black_fridays:  # Cyber Monday
                w *= 1.9
            w *= 1.0 + 0.3 * d / 365.0  # a growing store
            w *= math.exp(r.gauss(0, 0.1))
            weights.append(w)
        orders = _allocate(self.cfg.orders, weights)
        mean = self.cfg.orders / self.cfg.days
        activity = _allocate(self.cfg.activity_count, [o + 0.3 * mean + 0.01 for o in orders])
        return orders, activity

    # -- the run ------------------------------------------------------------------------

    def run(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        for i in range(0, len(self.catalog_records), BATCH_SIZE):
            batch = self.catalog_records[i:i + BATCH_SIZE]
            self.generated["products"] += len(batch)
            yield "products", batch
        order_counts, activity_counts = self._plan()
        buffers: dict[str, list[dict[str, Any]]] = {k: [] for k in ("orders", "events", "activities", "expenses")}
        self.week = {"orders": 0, "billed": 0.0, "payments": 0, "affiliate": 0.0}
        self.order_seq = 0
        self.p_review = min(0.6, 0.015 * self.cfg.activity_count / max(1.0, 0.8 * self.cfg.orders))
        for d in range(self.cfg.days):
            day = self.start_date + timedelta(days=d)
            hours = [int(datetime(day.year, day.month, day.day, h, tzinfo=self.tz).timestamp()) for h in range(24)]
            linkable, reviews = self._orders(d, hours, order_counts[d], buffers["orders"], buffers["events"])
            self._activities(d, hours, activity_counts[d], linkable, reviews, buffers["activities"])
            self._expenses(d, day, order_counts[d], buffers["expenses"])
            for kind, buf in buffers.items():
                if len(buf) >= BATCH_SIZE:
                    while len(buf) >= BATCH_SIZE:
                        batch = buf[:BATCH_SIZE]
                        del buf[:BATCH_SIZE]
                        self.generated[kind] += len(batch)
                        yield kind, batch
        for kind, buf in buffers.items():
            if buf:
                self.generated[kind] += len(buf)
                yield kind, buf
        self.queue.clear()

    # -- orders and payment events -------------------------------------------------------

    def _orders(self, d: int, hours: list[int], n: int, out: list[dict], events: list[dict]
                ) -> tuple[list[tuple], list[tuple]]:
        r = self.r_ord.random
        end = self.end_ts
        iso = self._iso
        hour_table = self.hour_table
        nh = len(hour_table)
        times = sorted(hours[hour_table[int(r() * nh)]] + int(r() * 3600) for _ in range(n))
        due = self.queue.pop(d, [])
        if len(due) > n:
            for entry in due[n:]:  # a busy day: these customers come back a few days later
                self._schedule(d + 1 + int(r() * 4), entry)
            due = due[:n]
        shoppers = [(e >> 5, e & 31, False) for e in due]
        for _ in range(n - len(due)):
            cid = self.n_customers
            self.n_customers += 1
            more = 0
            if r() < P_RETURN:
                more = 1
                while more < 31 and r() < P_CONTINUE:
                    more += 1
            shoppers.append((cid, more, True))
        self.r_ord.shuffle(shoppers)

        products, ptable, npt, qty_table, lines_table = self.products, self.product_table, len(self.product_table), \
            self.qty_table, self.lines_table
        pinfo = self.product_info
        day = self.start_date + timedelta(days=d)
        month = day.month
        seed, store, base_fx = self.seed, self.store, self.fx_range
        p_foreign_de = min(1.0, 0.05 / self.de_share)
        linkable: list[tuple] = []
        reviews: list[tuple] = []
        week = self.week
        for ts, (cid, more, is_new) in zip(times, shoppers):
            if more:
                self._schedule(d + self._gap(), cid << 5 | (more - 1))
            self.order_seq += 1
            order_id = f"o{seed}-{self.order_seq:07d}"
            customer, country, _ = self._customer(cid)
            foreign = country == "DE" and r() < p_foreign_de
            fx = round(base_fx[0] + (base_fx[1] - base_fx[0]) * r(), 4) if foreign else 1.0
            channel = self.channel_table[int(r() * 100)]
            # lines
            items = []
            lines_total = 0.0
            n_lines = lines_table[int(r() * 100)]
            chosen: list[int] = []
            for _ in range(n_lines):
                pi = ptable[int(r() * npt)]
                if pi in chosen:
                    pi = ptable[int(r() * npt)]
                    if pi in chosen:
                        continue
                chosen.append(pi)
                _, _, _, price, cost = pinfo[pi]
                q = qty_table[int(r() * 100)]
                up = price if not foreign else round(price / fx, 2)
                line = {**products[pi], "quantity": q, "unit_price": up}
                if r() < 0.08:
                    disc = round(q * up * (0.05 + 0.2 * r()), 2)
                    line["discount"] = disc
                else:
                    disc = 0.0
                if r() >= 0.03:  # a few lines without a known cost (METRICS: lines_without_cost)
                    line["unit_cost"] = cost if not foreign else round(cost / fx, 2)
                items.append(line)
                lines_total += q * up - disc
            # order-level amounts
            coupon = None
            x = r()
            if is_new and x < 0.25:
                coupon, pct = "WELCOME10", 0.10
            elif x < 0.08:
                if month == 11:
                    coupon, pct = "BLACKFRIDAY25", 0.25
                elif month in (6, 7, 8):
                    coupon, pct = "SUMMER20", 0.20
                else:
                    coupon, pct = "SAVE15", 0.15
            discount_amount = round(lines_total * pct, 2) if coupon else 0.0
            value = lines_total - discount_amount
            shipping = 0.0 if channel == "marketplace" or value * fx >= 99 else round(4.99 + int(r() * 4) * 2.5, 2)
            tax = round(value * TAX_RATE[country], 2)
            billed = round(value + shipping + tax, 2)
            # payment
            method, fail_rate = self.pay_tables["BR" if country == "BR" else "default"][int(r() * 200)]
            installments = self.installments_br[int(r() * 100)] if method == "card" and country == "BR" else 1
            # status and its timeline
            x = r()
            paid = shipped = delivered = cancelled = refunded_ts = None
            refunded_amount: float | None = None
            if x < 0.05:
                status = "pending"
            elif x < 0.11:
                status = "cancelled"
                cancelled = ts + 600 + int(r() * 2 * 86400)
                if cancelled >= end:
                    cancelled = ts + int((end - ts) * (0.2 + 0.7 * r()))
            else:
                if method == "boleto":
                    paid = ts + 7200 + int(r() * 3 * 86400)
                elif method == "pix":
                    paid = ts + 30 + int(r() * 1800)
                else:
                    paid = ts + 5 + int(r() * 300)
                if paid >= end:
                    paid = None
                    status = "pending"
                else:
                    processing = paid + 3600 + int(r() * 20 * 3600)
                    shipped = paid + 12 * 3600 + int(r() * 2.5 * 86400)
                    delivered = shipped + 86400 + int(r() * (12 if channel == "marketplace" else 8) * 86400)
                    if delivered < end:
                        status = "delivered"
                        if x > 0.958:
                            refunded_ts = delivered + 86400 + int(r() * 20 * 86400)
                            if refunded_ts < end:
                                status = "refunded"
                            else:
                                refunded_ts = None
                    elif shipped < end:
                        status, delivered = "shipped", None
                    else:
                        shipped = delivered = None
                        status = "processing" if processing < end else "paid"
            # events of the payment
            user = customer["customer_id"]
            cur = self.foreign if foreign else None
            fxv = fx if foreign else None
            fail_p = fail_rate * (4 if status in ("pending", "cancelled") else 1)
            if r() < fail_p:
                events.append(self._event("payment_failed", ts + 2 + int(r() * 60), user, order_id, billed,
                                          {"method": method, "reason": FAIL_REASONS[int(r() * len(FAIL_REASONS))]},
                                          cur, fxv))
            if paid is not None:
                events.append(self._event("payment_succeeded", paid, user, order_id, billed,
                                          {"method": method, "installments": installments}, cur, fxv))
                if method in ("card", "paypal") and r() < 0.006:
                    cb = paid + 15 * 86400 + int(r() * 45 * 86400)
                    if cb < end:
                        events.append(self._event("chargeback_opened", cb, user, order_id, billed,
                                                  {"method": method, "reason": "fraud" if r() < 0.6 else "not_received"},
                                                  cur, fxv))
            if refunded_ts is not None:
                y = r()
                if y < 0.45:  # partial: some of the order value back
                    refunded_amount = round(value * (0.15 + 0.5 * r()), 2)
                    refund_value = refunded_amount
                elif y < 0.60:
                    refunded_amount = round(value, 2)
                    refund_value = refunded_amount
                else:  # no amount: the whole order value counts (METRICS.md)
                    refund_value = round(value, 2)
                events.append(self._event("refund_issued", refunded_ts, user, order_id, refund_value,
                                          {"method": method, "reason": REFUND_REASONS[int(r() * len(REFUND_REASONS))],
                                           "partial": refunded_amount is not None and refunded_amount < value - 0.005},
                                          cur, fxv))
            # the record
            # the latest of the order's times (each step comes after the one before)
            updated = refunded_ts or delivered or shipped or paid or cancelled or ts
            order = {"order_id": order_id, "store_id": store, "channel": channel, "status": status,
                     "created_at": iso(ts), "updated_at": iso(updated)}
            if paid is not None:
                order["paid_at"] = iso(paid)
            if shipped is not None:
                order["shipped_at"] = iso(shipped)
            if delivered is not None:
                order["delivered_at"] = iso(delivered)
            if cancelled is not None:
                order["cancelled_at"] = iso(cancelled)
            if foreign:
                order["currency"] = self.foreign
                order["fx_rate"] = fx
            order["customer"] = customer
            order["items"] = items
            order["discount_amount"] = discount_amount
            order["shipping_amount"] = shipping
            order["tax_amount"] = tax
            if refunded_amount is not None:
                order["refunded_amount"] = refunded_amount
            order["payment"] = {
                "method": method, "installments": installments,
                "status": PAYMENT_STATUS.get(status, "captured") if refunded_amount is None
                or refunded_amount >= value - 0.005 else "partially_refunded"}
            if coupon:
                order["coupon_code"] = coupon
            if r() < 0.35:
                order["utm"] = self.utm_table[int(r() * 200)]
            out.append(order)
            # what activity and expenses need
            if paid is not None:
                week["orders"] += 1
                week["billed"] += billed * fx
                week["payments"] += 1
                if channel != "marketplace" and ts - self.start_ts > 7200:
                    linkable.append((ts, cid, order_id, channel, round(value * fx, 2), chosen, is_new, customer))
                if delivered is not None and r() < self.p_review:
                    reviews.append((delivered + 86400 + int(r() * 13 * 86400), cid, chosen[0], order_id))
                if order.get("utm", {}).get("source") == "affiliate":
                    week["affiliate"] += value * fx * 0.08
        return linkable, reviews

    # -- user activity ----------------------------------------------------------------

    def _activities(self, d: int, hours: list[int], budget: int, linkable: list[tuple], reviews: list[tuple],
                    out: list[dict]) -> None:
        r = self.r_act.random
        end = self.end_ts
        for review_ts, cid, pi, order_id in reviews:
            if budget < 2 or review_ts >= end - 120:
                continue
            customer, _, gi = self._customer(cid)
            common = self._session_common(customer["customer_id"], None, self.device_table[int(r() * 200)],
                                          self.activity_geo_table[gi], None)
            rating = self.rating_table[int(r() * 100)]
            texts = REVIEW_TEXT[rating]
            pid, cat = self.product_info[pi][0], self.product_info[pi][1]
            steps = [(0, "page_view", {"page_url": "/account/orders", "duration_ms": 4000 + int(r() * 30000)}),
                     (15 + int(r() * 90), "review", {"product_id": pid, "category": cat, "rating": rating,
                                                      "review_text": texts[int(r() * len(texts))], "order_id": order_id,
                                                      "page_url": f"/account/orders/{order_id}/review"})]
            self._emit(common, review_ts, steps, out)
            budget -= 2
        self.r_act.shuffle(linkable)
        nh = len(self.hour_table)
        while budget > 0:
            if linkable and r() < P_PURCHASE_SESSION:
                steps, start, common = self._purchase_session(linkable.pop())
            else:
                steps, common = self._browse_session()
                start = hours[self.hour_table[int(r() * nh)]] + int(r() * 3600)
                if start + steps[-1][0] >= end:
                    start = end - 1 - steps[-1][0]
            if len(steps) > budget:
                steps = steps[:budget]
            budget -= len(steps)
            self._emit(common, start, steps, out)

    def _session_common(self, user: str | None, anon: str | None, device: dict, geo: dict, utm: dict | None
                        ) -> dict[str, Any]:
        self.counters["session"] += 1
        common: dict[str, Any] = {"session_id": f"se{self.seed}-{self.counters['session']}", "store_id": self.store}
        if user:
            common["user_id"] = user
        else:
            common["anonymous_id"] = anon
        common["device"] = device
        common["geo"] = geo
        if utm:
            common["utm"] = utm
        return common

    def _emit(self, common: dict, start: int, steps: list[tuple[int, str, dict]], out: list[dict]) -> None:
        prefix = f"ac{self.seed}-"
        n = self.counters["activity"]
        day = start // 86400
        if start + steps[-1][0] < (day + 1) * 86400 and 0 <= day - self.first_day < len(self.day_prefix):
            # the whole session within one UTC day: format the time of day only
            date_part, times, base = self.day_prefix[day - self.first_day], self.times, start - day * 86400
            for offset, atype, fields in steps:
                n += 1
                out.append({"activity_id": prefix + str(n), "activity_type": atype,
                            "timestamp": date_part + times[base + offset], **common, **fields})
        else:
            iso = self._iso
            for offset, atype, fields in steps:
                n += 1
                out.append({"activity_id": prefix + str(n), "activity_type": atype, "timestamp": iso(start + offset),
                            **common, **fields})
        self.counters["activity"] = n
        # the referrer is where the session came from: its first record only
        if steps and "utm" in common:
            ref = REFERRERS.get(common["utm"].get("source", ""))
            if ref:
                out[-len(steps)]["referrer"] = ref

    def _product_steps(self, t: int, pi: int, steps: list, with_cart: bool, qty: int = 1) -> int:
        r = self.r_act.random
        pid, cat, _, price, _ = self.product_info[pi]
        url = f"/p/{pid}"
        dwell = 15 + int(r() * 150)
        steps.append((t, "product_view", {"product_id": pid, "category": cat, "page_url": url,
                                          "duration_ms": dwell * 1000 + int(r() * 1000)}))
        t += dwell
        if with_cart:
            steps.append((t, "add_to_cart", {"product_id": pid, "category": cat, "page_url": url,
                                             "value": round(price * qty, 2)}))
            t += 5 + int(r() * 40)
        return t

    def _search_steps(self, t: int, steps: list) -> tuple[int, str | None]:
        """A search; returns the clock and the subcategory searched (None: nothing found)."""
        r = self.r_act.random
        if r() < P_ZERO_RESULTS:
            q = ZERO_RESULT_QUERIES[int(r() * len(ZERO_RESULT_QUERIES))]
            sub, count = None, 0
        else:
            q, sub = self.search_vocab[int(r() * len(self.search_vocab))]
            count = len(self.by_sub[sub]) * (1 + int(r() * 4)) + int(r() * 5)
        typed = _messy(q, r())
        steps.append((t, "search", {"search_query": typed, "results_count": count,
                                    "page_url": "/search?q=" + "+".join(typed.split())}))
        return t + 5 + int(r() * 40), sub

    def _pick_product(self, sub: str | None) -> int:
        r = self.r_act.random
        if sub is not None and r() < 0.8:
            candidates = self.by_sub[sub]
            return candidates[int(r() * len(candidates))]
        return self.product_table[int(r() * len(self.product_table))]

    def _visitor(self, logged_in: bool) -> tuple[str | None, str | None, dict, dict]:
        """(user_id, anonymous_id, device, geo) of a browsing visitor."""
        r = self.r_act.random
        if logged_in and self.n_customers:
            cid = int(r() * self.n_customers)
            gi = (_mix64(cid ^ self.cust_salt) & 0xFFFF) * len(self.geo_table) >> 16  # as in _customer
            return (f"c{self.seed}-{cid + 1:06d}", None, self.device_table[int(r() * 200)],
                    self.activity_geo_table[gi])
        # guests come back too: pick from a pool that grows with the traffic
        pool = 20 + int(self.counters["session"] * 0.6)
        if r() < 0.3 and self.counters["anon"]:
            k = 1 + int(r() * min(pool, self.counters["anon"]))
        else:
            self.counters["anon"] += 1
            k = self.counters["anon"]
        h = _mix64(k * 31 + self.cust_salt)
        device = self.device_table[h % 200]
        geo = self.activity_geo_table[(h >> 16) % len(self.activity_geo_table)]
        return None, f"an{self.seed}-{k}", device, geo

    def _browse_session(self) -> tuple[list, dict]:
        r = self.r_act.random
        user, anon, device, geo = self._visitor(r() < P_LOGGED_IN)
        utm = self.utm_table[int(r() * 200)] if r() < 0.4 else None
        common = self._session_common(user, anon, device, geo, utm)
        steps: list[tuple[int, str, dict]] = []
        x = r()
        depth = 3 if x < BROWSE_DEPTH[0] else 2 if x < BROWSE_DEPTH[1] else 1 if x < BROWSE_DEPTH[2] else 0
        t = 0
        if user and r() < 0.4:
            steps.append((t, "login", {"page_url": "/account/login"}))
            t += 8 + int(r() * 20)
        elif not user and r() < 0.025:
            steps.append((t, "signup", {"page_url": "/account/signup"}))
            t += 30 + int(r() * 60)
        landing = r()
        if landing < 0.5:
            url = "/"
        elif landing < 0.8:
            url = self.category_urls[self.product_info[self.product_table[int(r() * len(self.product_table))]][1]]
        else:
            url = "/deals"
        dwell = 3 + int(r() * 90)
        steps.append((t, "page_view", {"page_url": url, "duration_ms": dwell * 1000 + int(r() * 1000)}))
        t += dwell
        if depth == 0:
            # about half of the shallow sessions are bounces (one page, nothing else)
            if r() < 0.55 and not steps[:-1]:
                return steps, common
            if r() < P_SEARCH:
                t, _ = self._search_steps(t, steps)
            for _ in range(1 + int(r() * 3)):
                dwell = 5 + int(r() * 60)
                steps.append((t, "page_view", {"page_url": ["/", "/deals", "/new", "/help/shipping"][int(r() * 4)],
                                               "duration_ms": dwell * 1000}))
                t += dwell
            return steps, common
        sub = None
        if r() < P_SEARCH:
            t, sub = self._search_steps(t, steps)
            if sub is None and r() < 0.5:
                t, sub = self._search_steps(t, steps)
        views = 1 + int(r() * 3)
        carted: list[int] = []
        for v in range(views):
            pi = self._pick_product(sub)
            with_cart = depth >= 2 and v == 0
            t = self._product_steps(t, pi, steps, with_cart)
            if with_cart:
                carted.append(pi)
            elif r() < 0.08:
                pid, cat = self.product_info[pi][0], self.product_info[pi][1]
                steps.append((t, "wishlist_add", {"product_id": pid, "category": cat, "page_url": f"/p/{pid}"}))
                t += 3 + int(r() * 10)
        if depth >= 2 and carted and r() < 0.2:
            pid, cat = self.product_info[carted[0]][0], self.product_info[carted[0]][1]
            steps.append((t, "remove_from_cart", {"product_id": pid, "category": cat, "page_url": "/cart"}))
            t += 5 + int(r() * 30)
            if depth == 3:
                t = self._product_steps(t, self._pick_product(sub), steps, True)
        if depth == 3:
            value = round(sum(self.product_info[i][3] for i in carted), 2)
            steps.append((t, "checkout_started", {"page_url": "/checkout", "value": value}))
        return steps, common

    def _purchase_session(self, order: tuple) -> tuple[list, int, dict]:
        r = self.r_act.random
        ts, cid, order_id, channel, value, chosen, is_new, customer = order
        _, _, gi = self._customer(cid)
        if channel == "mobile":
            device = self.app_device_table[int(r() * 100)]
        else:
            device = self.device_table[int(r() * 200)]
        utm = self.utm_table[int(r() * 200)] if r() < 0.4 else None
        common = self._session_common(customer["customer_id"], None, device, self.activity_geo_table[gi], utm)
        steps: list[tuple[int, str, dict]] = []
        t = 0
        if not is_new and r() < 0.5:
            steps.append((t, "login", {"page_url": "/account/login"}))
            t += 8 + int(r() * 20)
        dwell = 3 + int(r() * 60)
        steps.append((t, "page_view", {"page_url": "/", "duration_ms": dwell * 1000}))
        t += dwell
        sub = None
        if r() < P_SEARCH:
            t, _ = self._search_steps(t, steps)
        if r() < 0.3:  # looked at something else first
            pi = self._pick_product(sub)
            t = self._product_steps(t, pi, steps, False)
        for pi in chosen:
            t = self._product_steps(t, pi, steps, True)
        if is_new:
            steps.append((t, "signup", {"page_url": "/account/signup"}))
            t += 30 + int(r() * 60)
        steps.append((t, "checkout_started", {"page_url": "/checkout", "value": value}))
        t += 40 + int(r() * 240)
        steps.append((t, "purchase", {"order_id": order_id, "value": value, "page_url": "/checkout/success"}))
        # the purchase is the order's creation time
        return steps, ts - t, common

    # -- expenses ---------------------------------------------------------------------

    def _expenses(self, d: int, day: date, orders_today: int, out: list[dict]) -> None:
        r = self.r_exp.random
        ds = day.isoformat()
        seed, store = self.seed, self.store
        daily_revenue = (orders_today + 0.2 * self.cfg.orders / self.cfg.days) * self.aov_estimate

        def add(category: str, amount: float, description: str, channel: str | None = None,
                campaign: str | None = None, key: str | None = None) -> None:
            rec = {"expense_id": f"ex{seed}-{ds}-{category}-{key or channel or 'all'}", "store_id": store, "date": ds,
                   "category": category, "amount": round(max(0.0, amount), 2), "description": description}
            if channel:
                rec["channel"] = channel
            if campaign:
                rec["campaign"] = campaign
            out.append(rec)

        season = "black-friday" if day.month == 11 else "holiday" if day.month == 12 else \
            "summer-sale" if day.month in (6, 7, 8) else "always-on"
        add("marketing", daily_revenue * 0.045 * (0.8 + 0.4 * r()), "Google Ads daily spend", "google_ads",
            f"search-{season}-{day.year}")
        add("marketing", daily_revenue * 0.035 * (0.8 + 0.4 * r()), "Meta Ads daily spend", "meta_ads",
            "retargeting" if r() < 0.5 else f"prospecting-{season}")
        if day.weekday() in (3, 4, 5):
            add("marketing", daily_revenue * 0.03 * (0.6 + 0.8 * r()), "TikTok creators campaign", "tiktok_ads",
                f"creators-{season}")
        last_day = d == self.cfg.days - 1
        if day.weekday() == 6 or last_day:
            w = self.week
            add("shipping", w["orders"] * (6.0 + 3.0 * r()), "Carrier invoice for the week's shipments",
                key="carriers")
            add("payment_fees", w["billed"] * 0.029 + w["payments"] * 0.30, "Payment processor fees",
                key="processor")
            if w["affiliate"]:
                add("marketing", w["affiliate"], "Affiliate commissions", "affiliates", "partners")
            self.week = {"orders": 0, "billed": 0.0, "payments": 0, "affiliate": 0.0}
        monthly = self.cfg.orders / self.cfg.days * 30.4 * self.aov_estimate
        if day.day == 1:
            add("rent", max(900.0, round(monthly * 0.03, -2)), "Warehouse and office rent", key="warehouse")
            add("marketing", max(49.0, round(monthly * 0.004, 0)), "Email platform subscription", "email",
                "newsletter", key="email-platform")
        if day.day == 5:
            add("salaries", max(3500.0, round(monthly * 0.12 * (1.04 if day.month >= 7 else 1.0), -2)),
                "Monthly payroll", key="payroll")
        if day.day == 10:
            add("software", max(79.0, round(monthly * 0.006, 0)), "E-commerce platform plan", key="platform")
            add("software", max(29.0, round(monthly * 0.002, 0)), "Analytics and support tools", key="tools")


def generate(config: SampleConfig) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(kind, batch) pairs: all products first, then the rest day by day; batches of <= 5,000."""
    return _Store(config).run()


# ---------------------------------------------------------------------------------------
# Sinks
# ---------------------------------------------------------------------------------------


class SinkError(RuntimeError):
    """A batch was refused or some of its records were not stored."""


class Sink:
    """A destination for generated batches; `async with sink:` opens and closes it."""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _zero() -> dict[str, int]:
    return {"indexed": 0, "duplicates": 0, "stale": 0, "errors": 0}


class DirectSink(Sink):
    """Writes through the project's own Ingestor and BulkWriter (no HTTP).

    Settings come from the environment unless given. Index templates and indices are
    installed (idempotently) when the sink opens.
    """

    def __init__(self, settings: Any = None, *, concurrency: int = 2, refresh: str | None = None) -> None:
        self.settings = settings
        self.concurrency = max(1, concurrency)
        self.refresh = refresh
        self.es: Any = None
        self.ingestor: Any = None
        self.error_samples: list[str] = []

    async def open(self) -> None:
        from .config import Settings
        from .es.client import make_async_client
        from .es.indices import setup_indices
        from .ingest.service import Ingestor

        settings = self.settings = self.settings or Settings()
        self.es = make_async_client(settings)
        self.ingestor = Ingestor.for_settings(self.es, settings)
        self.names = self.ingestor.names
        await setup_indices(self.es, self.names)

    async def close(self) -> None:
        if self.es is not None:
            try:
                await self.es.indices.refresh(index=self.names.all_pattern(), allow_no_indices=True,
                                              ignore_unavailable=True)
            finally:
                await self.es.close()
                self.es = None

    @property
    def is_open(self) -> bool:
        return self.es is not None

    async def existing_orders(self) -> int:
        from .es.indices import ORDERS

        found = await self.es.count(index=self.names.alias(ORDERS), ignore_unavailable=True, allow_no_indices=True)
        return int(found["count"])

    async def write(self, kind: str, records: list[dict[str, Any]]) -> dict[str, int]:
        result = await getattr(self.ingestor, kind)(records, None, self.refresh)
        for e in result.errors[: max(0, 5 - len(self.error_samples))]:
            self.error_samples.append(f"{kind}[{e.index}] {e.id}: {e.error}")
        return {"indexed": result.indexed, "duplicates": result.duplicates, "stale": result.stale,
                "errors": len(result.errors)}


class HttpSink(Sink):
    """POSTs batches to a running API with an `ingest` key; raises SinkError on any refusal."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None, *, concurrency: int = 2,
                 refresh: str | None = None, timeout: float = 300.0, max_body_bytes: int = 9 * 1024 * 1024,
                 retries: int = 5) -> None:
        if not api_key:
            raise ValueError("an API key with the ingest scope is needed (--api-key or ANALYTICS_API_KEY)")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.concurrency = max(1, concurrency)
        self.refresh = refresh
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.retries = retries
        self.client: Any = None
        self.error_samples: list[str] = []

    async def open(self) -> None:
        import httpx

        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout,
                                        headers={"X-API-Key": self.api_key, "Content-Type": "application/json"})

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    @property
    def is_open(self) -> bool:
        return self.client is not None

    async def existing_orders(self) -> int:
        """Counted in Elasticsearch directly (the API's ingest key cannot read)."""
        from .config import Settings
        from .es.client import make_async_client
        from .es.indices import ORDERS, IndexNames

        settings = Settings()
        es = make_async_client(settings)
        try:
            found = await es.count(index=IndexNames(settings.index_prefix).alias(ORDERS), ignore_unavailable=True,
                                   allow_no_indices=True)
            return int(found["count"])
        finally:
            await es.close()

    async def write(self, kind: str, records: list[dict[str, Any]]) -> dict[str, int]:
        path, key = HTTP_ROUTES[kind]
        body = orjson.dumps({key: records})
        if len(body) > self.max_body_bytes and len(records) > 1:
            half = len(records) // 2
            first = await self.write(kind, records[:half])
            second = await self.write(kind, records[half:])
            return {k: first[k] + second[k] for k in first}
        params = {"refresh": self.refresh} if self.refresh else None
        attempt = 0
        while True:
            response = await self.client.post(path, content=body, params=params)
            if response.status_code in (429, 502, 503, 504) and attempt < self.retries:
                delay = float(response.headers.get("Retry-After") or 0) or min(30.0, 0.5 * 2 ** attempt)
                await asyncio.sleep(delay)
                attempt += 1
                continue
            break
        if response.status_code != 200:
            raise SinkError(f"POST {path} answered {response.status_code}: {response.text[:2000]}")
        data = response.json()
        if data.get("errors"):
            sample = "; ".join(f"[{e.get('index')}] {e.get('id')}: {e.get('error')}" for e in data["errors"][:5])
            raise SinkError(f"POST {path}: {len(data['errors'])} of {len(records)} {kind} not stored: {sample}")
        return {"indexed": int(data.get("indexed", 0)), "duplicates": int(data.get("duplicates", 0)),
                "stale": int(data.get("stale", 0)), "errors": 0}


class NdjsonSink(Sink):
    """Writes `<dir>/<kind>.ndjson` instead of ingesting (to look at the data)."""

    concurrency = 1

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.files: dict[str, Any] = {}
        self.error_samples: list[str] = []

    async def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.files = {k: open(self.directory / f"{k}.ndjson", "wb") for k in KINDS}  # noqa: SIM115

    async def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files = {}

    @property
    def is_open(self) -> bool:
        return bool(self.files)

    def write_sync(self, kind: str, records: list[dict[str, Any]]) -> dict[str, int]:
        dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        self.files[kind].write(b"".join([dumps(rec, option=option) for rec in records]))
        return {"indexed": len(records), "duplicates": 0, "stale": 0, "errors": 0}

    async def write(self, kind: str, records: list[dict[str, Any]]) -> dict[str, int]:
        return self.write_sync(kind, records)


async def ingest(config: SampleConfig, sink: Any, progress: bool = True, *, concurrency: int | None = None,
                 stats: dict[str, Any] | None = None) -> dict[str, dict[str, int]]:
    """Generate and write everything through `sink` (opened and closed here when it has open/close).

    Returns per kind: indexed, duplicates, stale, errors. `stats`, when given, receives
    `generated` (records per kind) and `seconds`.
    """
    from tqdm import tqdm

    limit = max(1, concurrency or getattr(sink, "concurrency", 2))
    totals = {k: _zero() for k in KINDS}
    generated = dict.fromkeys(KINDS, 0)
    bar = tqdm(total=config.orders, unit=" orders", disable=not progress, dynamic_ncols=True, file=sys.stderr)
    started = time.perf_counter()
    owns = not getattr(sink, "is_open", False)
    if owns:
        await sink.open()
    pending: set[asyncio.Task] = set()

    async def one(kind: str, batch: list[dict[str, Any]]) -> tuple[str, int, dict[str, int]]:
        return kind, len(batch), await sink.write(kind, batch)

    def collect(done: set[asyncio.Task]) -> None:
        for task in done:
            kind, n, result = task.result()
            for k, v in result.items():
                totals[kind][k] = totals[kind].get(k, 0) + v
            if kind == "orders":
                bar.update(n)

    try:
        batches = generate(config)
        inline = isinstance(sink, NdjsonSink)
        while True:
            # Generation is CPU work: run it beside the event loop so that writes progress.
            item = next(batches, None) if inline else await asyncio.to_thread(next, batches, None)
            if item is None:
                break
            kind, batch = item
            generated[kind] += len(batch)
            if inline:
                collect_result = sink.write_sync(kind, batch)
                for k, v in collect_result.items():
                    totals[kind][k] += v
                if kind == "orders":
                    bar.update(len(batch))
                continue
            while len(pending) >= limit:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                collect(done)
            pending.add(asyncio.create_task(one(kind, batch)))
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            collect(done)
    except BaseException:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise
    finally:
        bar.close()
        if owns:
            await sink.close()
    if stats is not None:
        stats["generated"] = generated
        stats["seconds"] = time.perf_counter() - started
    return totals


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def build_parser(defaults: dict[str, str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analytics_service seed",
        description="Generate a believable store (products, orders, payment events, user activity, expenses) "
                    "and ingest it, or write it to NDJSON files with --out. Deterministic for a given "
                    "--seed and --end.")
    p.add_argument("--orders", type=_positive, default=1000, help="orders to generate (default 1000)")
    p.add_argument("--activity", type=_positive, default=None,
                   help="user-activity records (default 5000, or 5 per order above 1000 orders)")
    p.add_argument("--days", type=int, default=365, help="length of the period in days (default 365)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--end", type=_parse_date, default=None,
                   help="end of the period, exclusive: 00:00 of this date in the store's time zone (default today there)")
    p.add_argument("--store-id", default=defaults["store_id"], help=f"store_id of every record (default {defaults['store_id']})")
    p.add_argument("--timezone", default=defaults["timezone"],
                   help=f"the store's time zone, shaping hours of day (default {defaults['timezone']})")
    p.add_argument("--base-currency", default=defaults["base_currency"],
                   help=f"the store's base currency (default BASE_CURRENCY, {defaults['base_currency']})")
    p.add_argument("--sink", choices=("direct", "http"), default="direct",
                   help="direct: through the ingest service to Elasticsearch (default); http: POST to a running API")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="API base URL for --sink http")
    p.add_argument("--api-key", default=os.environ.get("ANALYTICS_API_KEY"),
                   help="API key with the ingest scope for --sink http (default $ANALYTICS_API_KEY)")
    p.add_argument("--if-empty", action="store_true", help="do nothing when the orders index already has documents")
    p.add_argument("--out", metavar="DIR", default=None, help="write <DIR>/<kind>.ndjson instead of ingesting")
    p.add_argument("--concurrency", type=int, default=2, help="batches in flight at once (default 2)")
    p.add_argument("--refresh", choices=("wait_for", "true", "false"), default=None,
                   help="refresh policy of each write (default: none; indices are refreshed at the end)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _defaults() -> tuple[dict[str, str], Any]:
    try:
        from .config import Settings

        settings = Settings()
        return {"store_id": settings.default_store_id, "timezone": settings.default_timezone,
                "base_currency": settings.base_currency}, settings
    except Exception as exc:  # a broken .env should not hide --help
        print(f"warning: settings not loaded ({exc}); using built-in defaults", file=sys.stderr)
        return {"store_id": "default", "timezone": "UTC", "base_currency": "USD"}, None


def main(argv: list[str] | None = None) -> int:
    defaults, settings = _defaults()
    args = build_parser(defaults).parse_args(argv if argv is not None else sys.argv[1:])
    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"error: unknown time zone {args.timezone!r}", file=sys.stderr)
        return 2
    if args.days < 1:
        print("error: --days must be >= 1", file=sys.stderr)
        return 2
    if not (len(args.base_currency) == 3 and args.base_currency.isalpha() and args.base_currency.isupper()):
        print("error: --base-currency must be an ISO 4217 code such as USD", file=sys.stderr)
        return 2
    today = datetime.now(timezone.utc).date()
    if args.end is not None and args.end > today + timedelta(days=1):
        print(f"error: --end {args.end} is in the future; records may be at most 2 days ahead", file=sys.stderr)
        return 2
    config = SampleConfig(seed=args.seed, orders=args.orders, activity=args.activity, days=args.days, end=args.end,
                          store_id=args.store_id, timezone=args.timezone, base_currency=args.base_currency)
    # Quiet the per-request logs of the Elasticsearch transport under the progress bar.
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return asyncio.run(_run(config, args, settings))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


async def _run(config: SampleConfig, args: argparse.Namespace, settings: Any) -> int:
    if args.out:
        sink: Any = NdjsonSink(args.out)
    elif args.sink == "http":
        try:
            sink = HttpSink(args.url, args.api_key, concurrency=args.concurrency, refresh=args.refresh)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        sink = DirectSink(settings, concurrency=args.concurrency, refresh=args.refresh)
    where = f"{args.out}" if args.out else (args.url if args.sink == "http" else
                                            f"{sink.settings.elasticsearch_url if sink.settings else 'Elasticsearch'} "
                                            f"(prefix {sink.settings.index_prefix if sink.settings else '?'})")
    try:
        await sink.open()
        if args.if_empty and not args.out:
            try:
                existing = await sink.existing_orders()
            except Exception as exc:
                print(f"warning: could not check for existing orders ({exc}); seeding anyway", file=sys.stderr)
                existing = 0
            if existing:
                print(f"sample data skipped: the orders index already has {existing:,} documents (--if-empty)")
                return 0
        print(f"generating {config.orders:,} orders, {config.activity_count:,} activity records over {config.days} "
              f"days to {config.end_date} (seed {config.seed}, store {config.store_id!r}, tz {config.timezone}) "
              f"-> {where}", flush=True)
        stats: dict[str, Any] = {}
        totals = await ingest(config, sink, progress=not args.quiet, concurrency=args.concurrency, stats=stats)
    except Exception as exc:
        from elasticsearch import ApiError as ESApiError
        from elasticsearch import ConnectionError as ESConnectionError

        if isinstance(exc, (SinkError, ESConnectionError, ESApiError, OSError)) or type(exc).__module__.startswith("httpx"):
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        raise
    finally:
        await sink.close()
    seconds = max(stats.get("seconds", 0.0), 1e-9)
    errors = 0
    for kind in KINDS:
        t = totals[kind]
        n = stats["generated"][kind]
        errors += t["errors"]
        if args.out:
            print(f"  {kind:<11} {n:>10,} records  {n / seconds:>10,.0f}/s")
        else:
            print(f"  {kind:<11} {n:>10,} sent  {t['indexed']:>10,} indexed  {t['duplicates']:>8,} duplicates  "
                  f"{t['stale']:>6,} stale  {t['errors']:>6,} errors  {n / seconds:>9,.0f}/s")
    total = sum(stats["generated"].values())
    print(f"done in {seconds:.1f}s: {total:,} records ({config.orders / seconds:,.0f} orders/s)"
          + (f", written to {args.out}" if args.out else ""))
    for sample in getattr(sink, "error_samples", [])[:5]:
        print(f"  error: {sample}", file=sys.stderr)
    if errors:
        print(f"error: {errors:,} records were not stored", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
