"""Import orders from a CSV export, described by a JSON column mapping.

    python -m analytics_service import-csv FILE --mapping superstore [--store-id S]
        [--batch-size 2000] [--limit N] [--dry-run] [--errors-csv PATH] [--no-progress]

The mapping (docs/importing.md) says which column holds what: the CSV lines are
grouped into orders by one column (`group_by`), each line becomes an order line, and
the order's own fields come from the first line of the order. Amounts are derived by
one of a few named conventions (`amounts`), so a file that gives the line revenue, a
discount rate and the line profit (Superstore) is stored with the same line revenue
and cost it has in the file.

Nothing is dropped silently: a line that cannot be read (a bad number, a bad date, a
missing id) is reported with its CSV line number and column, and its whole order is
left out (storing the rest of the order would store a wrong order, and a later
corrected import could not replace it: the state would be the same). Orders the
Ingestor refuses are reported with their id and line. The command exits 1 when
anything was refused, 2 on a usage or mapping error.

Every write goes through the Ingestor, so a re-import is idempotent: each order is
upserted by id with the same state and counts as a duplicate.

This module is the importer's public face; the parts live beside it: `mapping` (the
mapping's models and loading), `cells` (reading one cell), `amounts` (the amount
conventions), `rows` (rows -> orders), `report`, `runner` (`import_csv`) and `command` (`main`).
"""

from .amounts import AMOUNT_KEYS, COST_KEYS, DISCOUNT_KEYS, EPSILON, PRICE_KEYS, LineAmounts, line_amounts
from .cells import CellError, Cells
from .command import build_parser, main
from .mapping import (
    ITEM_TARGETS,
    MAPPINGS_DIR,
    ORDER_TARGETS,
    TYPES,
    Mapping,
    MappingError,
    MappingFile,
    Source,
    SourceSpec,
    builtin_mappings,
    load_mapping,
    parse_mapping,
)
from .report import ImportReport, Problem
from .rows import Group, Line, Orders
from .runner import import_csv

__all__ = [
    "AMOUNT_KEYS",
    "COST_KEYS",
    "DISCOUNT_KEYS",
    "EPSILON",
    "ITEM_TARGETS",
    "MAPPINGS_DIR",
    "ORDER_TARGETS",
    "PRICE_KEYS",
    "TYPES",
    "CellError",
    "Cells",
    "Group",
    "ImportReport",
    "Line",
    "LineAmounts",
    "Mapping",
    "MappingError",
    "MappingFile",
    "Orders",
    "Problem",
    "Source",
    "SourceSpec",
    "build_parser",
    "builtin_mappings",
    "import_csv",
    "line_amounts",
    "load_mapping",
    "main",
    "parse_mapping",
]

if __name__ == "__main__":
    raise SystemExit(main())
