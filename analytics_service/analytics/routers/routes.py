"""The route of a query object that takes only the common parameters: `GET path` answering
`ctx.answer(query(params))` with the query's response model (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import APIRouter
from fastapi.params import Depends as Dependency

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
    dependencies: Sequence[Dependency] | None = None,
) -> None:
    """Add `GET path` answering `query(params)` to `router` (its tag and key scope apply).

    `name` names the route and so its OpenAPI operationId (default: the path's words joined
    by "_"); `dependencies` run first, e.g. a check of the common parameters.
    """

    async def endpoint(params: Common, ctx: Ctx) -> AnalyticsResponse:
        return await ctx.answer(query(params))

    router.get(
        path,
        response_model=query.response_model,
        summary=summary,
        name=name or path.strip("/").replace("/", "_").replace("-", "_"),
        dependencies=dependencies,
    )(endpoint)
