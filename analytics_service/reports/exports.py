"""Streamed exports of every matching record (scope `read`), API.md "Reports"."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/export", tags=["exports"])
