"""What every part of the generator shares: the record kinds, the batch size and `SampleConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

KINDS = ("products", "orders", "events", "activities", "expenses")
BATCH_SIZE = 5000


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
