"""Routes of the financial area: each one runs one query object of analytics.financial."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ...auth import require
from .. import financial
from ..params import Common
from ..runner import Ctx

router = APIRouter(prefix="/api/v1/analytics", tags=["financial"], dependencies=[Depends(require("read"))])


@router.get(
    "/financial/revenue",
    response_model=financial.FinancialRevenueResponse,
    summary="Gross revenue to total billed: discounts, refunds, shipping, tax",
)
async def financial_revenue(params: Common, ctx: Ctx) -> financial.FinancialRevenueResponse:
    return await ctx.answer(financial.FinancialRevenue(params))


@router.get(
    "/financial/profit",
    response_model=financial.FinancialProfitResponse,
    summary="Gross and net profit after cogs and expenses, profit by category",
)
async def financial_profit(params: Common, ctx: Ctx) -> financial.FinancialProfitResponse:
    return await ctx.answer(financial.FinancialProfit(params))


@router.get(
    "/financial/expenses",
    response_model=financial.FinancialExpensesResponse,
    summary="Expenses by category, channel and date",
)
async def financial_expenses(params: Common, ctx: Ctx) -> financial.FinancialExpensesResponse:
    return await ctx.answer(financial.FinancialExpenses(params))


@router.get(
    "/financial/payments",
    response_model=financial.FinancialPaymentsResponse,
    summary="Revenue and success rate by payment method, refunds, chargebacks",
)
async def financial_payments(params: Common, ctx: Ctx) -> financial.FinancialPaymentsResponse:
    return await ctx.answer(financial.FinancialPayments(params))
