"""The route of a query object that takes only the common parameters: `GET path` answering
`ctx.answer(query(params))` with the query's response model (docs/architecture.md)."""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from fastapi import APIRouter

from ..fields import AnalyticsResponse
from ..params import Common, CommonParams
from ..runner import AnalyticsQuery, Ctx


class QueryClass(Protocol):
    """The class of a query object whose only parameters are the common ones."""

    @property
    def response_model(self) -> type[AnalyticsResponse]: ...

    def __call__(self, params: CommonParams) -> AnalyticsQuery[Any]: ...


def query_route(
    router: APIRouter,
    path: str,
    query: QueryClass,
    summary: str,
    *,
    name: str | None = None,
    params: Any = Common,
) -> None:
    """Add `GET path` answering `query(params)` to `router` (its tag and key scope apply).

    `name` names the route and so its OpenAPI operationId (default: the path's words joined
    by "_"); `params` is the dependency that gives the common parameters (default `Common`;
    e.g. one that also checks them for the area), declared once so that a bad parameter is
    reported once.
    """

    async def endpoint(params: CommonParams, ctx: Ctx) -> AnalyticsResponse:
        return await ctx.answer(query(params))

    signature = inspect.signature(endpoint)
    endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            signature.parameters["params"].replace(annotation=params),
            signature.parameters["ctx"].replace(annotation=Ctx),
        ],
        return_annotation=AnalyticsResponse,
    )
    router.get(
        path,
        response_model=query.response_model,
        summary=summary,
        name=name or path.strip("/").replace("/", "_").replace("-", "_"),
    )(endpoint)
