"""Turn a `ReportData` into a file: CSV, XLSX, PDF or JSON.

`render` writes to a hidden temporary file next to the target (`.<name>.<random>.part`)
and renames it over the target only when the file is complete, so a reader never sees
a half-written report; on any error the temporary file is removed. The result carries
what the reports table records: the file's size, the report's data rows and the sha256
of the bytes on disk.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..model import FORMATS, ReportData
from .csv_file import write_csv
from .json_file import write_json
from .pdf_file import write_pdf
from .xlsx_file import write_xlsx

__all__ = ["TEMP_SUFFIX", "WRITERS", "RenderResult", "render"]

TEMP_SUFFIX = ".part"

WRITERS: dict[str, Callable[[ReportData, Path], None]] = {
    "csv": write_csv,
    "xlsx": write_xlsx,
    "pdf": write_pdf,
    "json": write_json,
}
assert set(WRITERS) == set(FORMATS)


@dataclass(frozen=True)
class RenderResult:
    file_size: int
    row_count: int
    checksum: str  # sha256 hex of the file


def render(data: ReportData, fmt: str, path: Path) -> RenderResult:
    """Write `data` as `fmt` to `path` atomically (temp file in the same directory, then rename)."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    path = Path(path)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")
    try:
        WRITERS[fmt](data, temp)
        checksum, size = _sha256_and_size(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return RenderResult(file_size=size, row_count=data.row_count, checksum=checksum)


def _sha256_and_size(path: Path) -> tuple[str, int]:
    """Hash the bytes on disk (after an fsync, so the rename publishes exactly them)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
