"""Routes of the financial area: each one runs one query object of analytics.financial."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ...auth import require
from ..financial import FinancialExpenses, FinancialPayments, FinancialProfit, FinancialRevenue
from .routes import query_route

router = APIRouter(prefix="/api/v1/analytics", tags=["financial"], dependencies=[Depends(require("read"))])

for path, query, summary in (
    ("/financial/revenue", FinancialRevenue, "Gross revenue to total billed: discounts, refunds, shipping, tax"),
    ("/financial/profit", FinancialProfit, "Gross and net profit after cogs and expenses, profit by category"),
    ("/financial/expenses", FinancialExpenses, "Expenses by category, channel and date"),
    ("/financial/payments", FinancialPayments, "Revenue and success rate by payment method, refunds, chargebacks"),
):
    query_route(router, path, query, summary)
