"""The named amount conventions of a mapping's `amounts` (docs/importing.md "Amounts")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .cells import CellError

AmountKey = Literal[
    "unit_price",
    "line_gross",
    "line_revenue",
    "discount_amount",
    "discount_rate",
    "unit_cost",
    "line_cost",
    "line_profit",
]

# At most one of each group, exactly one price source.
PRICE_KEYS: tuple[AmountKey, ...] = ("unit_price", "line_gross", "line_revenue")
DISCOUNT_KEYS: tuple[AmountKey, ...] = ("discount_amount", "discount_rate")
COST_KEYS: tuple[AmountKey, ...] = ("unit_cost", "line_cost", "line_profit")
AMOUNT_KEYS: tuple[AmountKey, ...] = PRICE_KEYS + DISCOUNT_KEYS + COST_KEYS

# Amount arithmetic is done in floats; this is the slack for "exactly zero".
EPSILON = 1e-9


@dataclass
class LineAmounts:
    unit_price: float
    discount: float
    unit_cost: float | None
    note: str | None = None


def line_amounts(quantity: int, values: dict[str, float | None], columns: dict[str, str | None]) -> LineAmounts:
    """unit_price, discount (an amount) and unit_cost from the mapping's amount convention.

    The results satisfy quantity * unit_price - discount == line revenue and
    quantity * unit_cost == line cost, whichever way the file gives them.
    `columns` maps each amount key of the mapping (and "quantity") to its CSV column.
    """

    def col(key: str) -> str | None:
        return columns.get(key)

    def non_negative(key: str) -> float | None:
        value = values.get(key)
        if value is not None and value < 0:
            raise CellError(col(key), f"{key.replace('_', ' ')} must not be negative: {value}")
        return value

    if quantity <= 0:
        raise CellError(columns.get("quantity"), f"quantity must be greater than 0: {quantity}")
    price_key = next(k for k in PRICE_KEYS if k in columns)
    price = non_negative(price_key)
    if price is None:
        raise CellError(col(price_key), f"{price_key.replace('_', ' ')} is empty")
    amount = non_negative("discount_amount")
    rate = values.get("discount_rate")
    if rate is not None and not 0 <= rate <= 1:
        raise CellError(col("discount_rate"), f"discount rate must be between 0 and 1: {rate}")
    note = None

    if price_key == "unit_price" or price_key == "line_gross":
        unit_price = price if price_key == "unit_price" else price / quantity
        gross = quantity * unit_price
        discount = amount if amount is not None else gross * rate if rate else 0.0
        if discount > gross + EPSILON:
            key = "discount_amount" if amount is not None else "discount_rate"
            raise CellError(col(key), f"discount {discount:.2f} exceeds the line's list price {gross:.2f}")
        discount = min(discount, gross)
        revenue = gross - discount
    else:  # line_revenue: the amount after the line discount
        revenue = price
        if amount is not None:
            unit_price, discount = (revenue + amount) / quantity, amount
        elif rate and rate < 1:
            unit_price = revenue / (quantity * (1 - rate))
            discount = quantity * unit_price - revenue
            if discount < 0:  # only by rounding
                unit_price, discount = revenue / quantity, 0.0
        else:
            if rate == 1 and revenue > 0:
                note = f"discount rate 1 with a revenue of {revenue}: stored at that price without a discount"
            unit_price, discount = revenue / quantity, 0.0

    unit_cost: float | None = None
    profit = values.get("line_profit")
    if "unit_cost" in columns:
        unit_cost = non_negative("unit_cost")
    elif "line_cost" in columns:
        cost = non_negative("line_cost")
        unit_cost = None if cost is None else cost / quantity
    elif "line_profit" in columns and profit is not None:
        cost = revenue - profit
        if cost < -EPSILON:
            raise CellError(
                col("line_profit"), f"line cost (revenue {revenue} - profit {profit}) is negative: {cost:.4f}"
            )
        unit_cost = max(cost, 0.0) / quantity
    return LineAmounts(unit_price, discount, unit_cost, note)
