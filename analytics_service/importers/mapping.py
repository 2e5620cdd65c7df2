"""The JSON column mapping of `import-csv` (docs/importing.md "The mapping format"): its models and loading.

`MappingFile` is the file as written, validated by pydantic; `Mapping` is what the importer
runs with: one `Source` per field, with the order id and the defaults filled in. A mistake
is a MappingError that starts with the mapping key, e.g. "order.created_at.format: ...".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..ingest.schemas import ORDER_STATUSES, Customer, Order, OrderItem, Payment, Utm
from ..zones import zone_named
from .amounts import AMOUNT_KEYS, COST_KEYS, DISCOUNT_KEYS, PRICE_KEYS, AmountKey

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"

CellType = Literal["str", "int", "float", "bool", "date"]
TYPES: tuple[CellType, ...] = get_args(CellType)
OrderConflicts = Literal["warn", "error"]

# --- what a mapping may target --------------------------------------------------------

_ORDER_DATES = {"created_at", "updated_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at"}
_ORDER_FLOATS = {"discount_amount", "shipping_amount", "tax_amount", "refunded_amount", "fx_rate"}
_NESTED: dict[str, type[BaseModel]] = {"customer": Customer, "payment": Payment, "utm": Utm}
# Scalar Order fields a column may fill (nested objects by dotted path, items via `item`), with their type.
ORDER_TARGETS: dict[str, CellType] = {
    name: ("date" if name in _ORDER_DATES else "float" if name in _ORDER_FLOATS else "str")
    for name in Order.model_fields
    if name not in {"items", "attributes", *_NESTED}
}
for _parent, _model in _NESTED.items():
    for _name in _model.model_fields:
        ORDER_TARGETS[f"{_parent}.{_name}"] = "int" if _name == "installments" else "str"

# Item fields a column may fill; the line's amounts come from `amounts`.
_LINE_AMOUNTS = {"unit_price", "discount", "unit_cost"}
ITEM_TARGETS: dict[str, CellType] = {
    name: ("int" if name == "quantity" else "str") for name in OrderItem.model_fields if name not in _LINE_AMOUNTS
}


class MappingError(ValueError):
    """The mapping (or the file's header) cannot be used; nothing was imported."""


# --- the mapping the importer runs with -----------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where one target field comes from: a column (converted to `type`) or a constant."""

    target: str
    column: str | None = None
    value: JsonValue = None
    type: CellType = "str"
    formats: tuple[str, ...] = ()
    scale: float | None = None
    default: JsonValue = None
    map: dict[str, JsonValue] | None = None

    @property
    def constant(self) -> bool:
        return self.column is None


@dataclass
class Mapping:
    name: str
    group_by: str
    order: list[Source]
    item: list[Source]
    amounts: dict[str, Source]
    description: str = ""
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    quotechar: str = '"'
    decimal: str = "."
    thousands: str = ""
    null_values: frozenset[str] = frozenset({""})
    date_formats: tuple[str, ...] = ("iso",)
    timezone: str | None = None
    order_conflicts: OrderConflicts = "warn"
    products: bool = False

    def columns(self) -> list[str]:
        """Every CSV column the mapping reads."""
        seen: dict[str, None] = {self.group_by: None}
        for source in [*self.order, *self.item, *self.amounts.values()]:
            if source.column is not None:
                seen[source.column] = None
        return list(seen)

    def column_of(self, target: str) -> str | None:
        for source in [*self.order, *self.item]:
            if source.target == target:
                return source.column
        return None


# --- validation helpers ---------------------------------------------------------------


def _mistake(message: str, where: str | None = None, *, at_parent: bool = False) -> PydanticCustomError:
    """A mapping mistake, reported at its location in the mapping, or at `where` (a dotted key) when given.

    at_parent: the message names its own key ("type must be ..."), so it is reported at the object holding it.
    """
    return PydanticCustomError(
        "mapping_at_parent" if at_parent else "mapping", f"{where}: {message}" if where else message
    )


def _reported_as(
    message: str | Callable[[object], str], *, at_parent: bool = False, refuse_null: bool = False
) -> WrapValidator:
    """Any failure of the annotated type is the mistake `message` (a text, or one made from the value).

    refuse_null: an explicit null is a mistake too (an absent key keeps the field's default).
    """

    def fail(value: object) -> PydanticCustomError:
        return _mistake(message(value) if callable(message) else message, at_parent=at_parent)

    def check(value: object, handler: ValidatorFunctionWrapHandler) -> object:
        if value is None and refuse_null:
            raise fail(value)
        try:
            return handler(value)
        except ValidationError:
            raise fail(value) from None

    return WrapValidator(check)


def _mapping_error(exc: ValidationError) -> MappingError:
    """The first mistake, as "<dotted mapping key>: <message>" (pydantic's own text for any other error)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    keys = [str(part) for part in first["loc"] if part != "[key]"]
    if first["type"] == "mapping_at_parent":
        keys = keys[:-1]
    where = ".".join(keys)
    return MappingError(f"{where}: {first['msg']}" if where else first["msg"])


def _one_or_more(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _text(value: object) -> str | None:
    return str(value) if value else None


def _known_codec(encoding: str) -> str:
    try:
        "".encode(encoding)
    except LookupError as exc:
        raise _mistake(f"unknown encoding {encoding!r}") from exc
    return encoding


def _known_zone(zone: str) -> str:
    try:
        zone_named(zone)
    except ValueError as exc:
        raise ValueError(zone) from exc
    return zone


def _non_zero(scale: float | None) -> float | None:
    if scale == 0:
        raise ValueError("scale must not be 0")
    return None if scale is None else float(scale)


def _section(value: object) -> object:
    if not isinstance(value, dict) or not value:
        raise _mistake("is required: an object from field name to column")
    return value


def _order_target(target: str) -> str:
    if target in ORDER_TARGETS or (target.startswith("attributes.") and len(target) > len("attributes.")):
        return target
    hint = ' (line amounts go under "amounts")' if target in _LINE_AMOUNTS else ""
    raise _mistake(f"not an Order field{hint}; allowed: {', '.join(ORDER_TARGETS)}, attributes.<name>")


def _item_target(target: str) -> str:
    if target in _LINE_AMOUNTS:
        raise _mistake('line amounts go under "amounts" (e.g. "unit_price", "discount_amount", "unit_cost")')
    if target not in ITEM_TARGETS:
        raise _mistake(f"not an order line field; allowed: {', '.join(ITEM_TARGETS)}")
    return target


def _unknown_keys(data: dict[str, object], allowed: set[str], hint: str = "") -> None:
    unknown = set(data) - allowed
    if unknown:
        raise _mistake(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}{hint}")


_FORMATS_MESSAGE = 'must be a strptime format (e.g. "%d/%m/%y"), "iso", or a list of them'
_SCALE_MESSAGE = "scale must be a non-zero number, for float columns only"

ColumnName = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]
DateFormats = Annotated[
    tuple[Annotated[str, StringConstraints(strict=True, min_length=1)], ...],
    Field(min_length=1),
    BeforeValidator(_one_or_more),
]
_Char = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=1), _reported_as("must be a single character")
]
_Zone = Annotated[StrictStr, AfterValidator(_known_zone), _reported_as(lambda zone: f"unknown IANA time zone {zone!r}")]
_Section = BeforeValidator(_section)
_Required = Field(default_factory=dict, validate_default=True)  # an absent section is reported like an empty one
# File keys whose null means the default.
_NULL_IS_DEFAULT = {"name", "description", "encoding", "delimiter", "quotechar", "decimal", "thousands", "group_by"}


# --- the mapping file -----------------------------------------------------------------


class SourceSpec(BaseModel):
    """One field's source as written: a column name, {"column": ...} with options, or {"value": ...}."""

    model_config = ConfigDict(extra="forbid")

    column: Annotated[
        ColumnName | None, _reported_as("column must be a non-empty string", at_parent=True, refuse_null=True)
    ] = None
    value: JsonValue = None
    type: Annotated[
        CellType | None,
        _reported_as(lambda kind: f"type must be one of {list(TYPES)}, not {kind!r}", at_parent=True, refuse_null=True),
    ] = None
    format: Annotated[DateFormats | None, _reported_as(_FORMATS_MESSAGE, refuse_null=True)] = None
    scale: Annotated[StrictFloat | None, AfterValidator(_non_zero), _reported_as(_SCALE_MESSAGE, at_parent=True)] = None
    default: JsonValue = None
    map: Annotated[
        dict[str, JsonValue] | None, _reported_as("map must be an object from cell text to value", at_parent=True)
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: object) -> object:
        if isinstance(data, str):  # a column name
            if not data.strip():
                raise _mistake("column name must not be empty")
            return {"column": data}
        if not isinstance(data, dict):
            raise _mistake('must be a column name, {"column": ...} or {"value": ...}')
        _unknown_keys(data, set(cls.model_fields))
        if ("column" in data) == ("value" in data):
            raise _mistake('needs exactly one of "column" and "value"')
        if "value" in data and (extra := set(data) - {"value", "type"}):
            raise _mistake(f"a constant takes no {sorted(extra)}")
        return data

    def source(self, target: str, default_type: CellType, date_formats: tuple[str, ...], where: str) -> Source:
        """This spec for `target`, whose type is `default_type` unless `type` says otherwise."""
        kind = self.type or default_type
        formats = date_formats if kind == "date" else ()
        if self.column is None:
            return Source(target, value=self.value, type=kind, formats=formats)
        if self.format is not None:
            if kind != "date":
                raise _mistake("format applies to dates only", where)
            formats = self.format
        if self.scale is not None and kind != "float":
            raise _mistake(_SCALE_MESSAGE, where)
        return Source(
            target, column=self.column, type=kind, formats=formats, scale=self.scale, default=self.default, map=self.map
        )


class _Resolved(NamedTuple):
    group_by: str
    order: list[Source]
    item: list[Source]
    amounts: dict[str, Source]


class MappingFile(BaseModel):
    """A mapping file as written (docs/importing.md "The mapping format"); `to_mapping` gives what runs."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str | None, BeforeValidator(_text)] = None
    description: Annotated[str | None, BeforeValidator(_text)] = None
    encoding: Annotated[
        str,
        StringConstraints(strict=True, min_length=1),
        _reported_as("must be a string"),
        AfterValidator(_known_codec),
    ] = "utf-8-sig"
    delimiter: _Char = ","
    quotechar: _Char = '"'
    decimal: _Char = "."
    thousands: Annotated[StrictStr, _reported_as("must be a string")] = ""
    null_values: Annotated[tuple[StrictStr, ...], _reported_as("must be a list of strings")] = ("",)
    date_format: Annotated[DateFormats, _reported_as(_FORMATS_MESSAGE)] = ("iso",)
    timezone: _Zone | None = None
    order_conflicts: Annotated[OrderConflicts, _reported_as('must be "warn" or "error"')] = "warn"
    products: Annotated[StrictBool, _reported_as("must be true or false")] = False
    order: Annotated[dict[Annotated[str, AfterValidator(_order_target)], SourceSpec], _Section] = _Required
    item: Annotated[dict[Annotated[str, AfterValidator(_item_target)], SourceSpec], _Section] = _Required
    amounts: Annotated[
        dict[Annotated[AmountKey, _reported_as(f"unknown amount; allowed: {', '.join(AMOUNT_KEYS)}")], SourceSpec],
        _Section,
    ] = _Required
    group_by: Annotated[ColumnName, _reported_as("must be a column name")] | None = None

    _resolved: _Resolved = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: object) -> object:
        if not isinstance(data, dict):
            raise _mistake("a mapping must be a JSON object")
        data = {key: value for key, value in data.items() if not key.startswith("_")}  # comments
        _unknown_keys(data, set(cls.model_fields), " (keys starting with _ are comments)")
        # null means the default (and so does any empty date_format).
        return {
            key: value
            for key, value in data.items()
            if not ((value is None and key in _NULL_IS_DEFAULT) or (key == "date_format" and not value))
        }

    @field_validator("thousands")
    @classmethod
    def _thousands_differs(cls, thousands: str, info: ValidationInfo) -> str:
        if len(thousands) > 1 or thousands == info.data.get("decimal", "."):
            raise _mistake("must be one character (or empty) and differ from decimal")
        return thousands

    @model_validator(mode="after")
    def _resolve(self) -> MappingFile:
        """The rules across keys; every field resolved to a Source for `to_mapping`."""
        formats = self.date_format
        order = [
            spec.source(target, ORDER_TARGETS.get(target, "str"), formats, f"order.{target}")
            for target, spec in self.order.items()
        ]  # attributes.<name> are text unless `type` says
        item = [
            spec.source(target, ITEM_TARGETS[target], formats, f"item.{target}") for target, spec in self.item.items()
        ]
        amounts: dict[str, Source] = {}
        for key, spec in self.amounts.items():
            source = amounts[key] = spec.source(key, "float", formats, f"amounts.{key}")
            if source.type != "float":
                raise _mistake("amounts are numbers (type float)", f"amounts.{key}")
        for group, required in ((PRICE_KEYS, True), (DISCOUNT_KEYS, False), (COST_KEYS, False)):
            present = [k for k in group if k in amounts]
            if len(present) > 1 or (required and not present):
                what = "exactly one" if required else "at most one"
                raise _mistake(f"needs {what} of {', '.join(group)} (found {present or 'none'})", "amounts")

        group_by = self.group_by
        if group_by is None:
            id_source = next((s for s in order if s.target == "order_id"), None)
            if id_source is None or id_source.column is None:
                raise _mistake("is required (the column that holds the order id)", "group_by")
            group_by = id_source.column
        if not any(s.target == "order_id" for s in order):
            order.insert(0, Source("order_id", column=group_by))
        targets = {s.target for s in order}
        for needed in ("status", "created_at", "customer.customer_id"):
            if needed not in targets:
                hint = ' (a constant: {"value": "delivered"})' if needed == "status" else ""
                raise _mistake(f"is required{hint}", f"order.{needed}")
        status = next(s for s in order if s.target == "status")
        if status.constant and status.value not in ORDER_STATUSES:
            raise _mistake(f"must be one of {list(ORDER_STATUSES)}", "order.status")
        item_targets = {s.target for s in item}
        for needed in ("product_id", "quantity"):
            if needed not in item_targets:
                hint = ' (one unit per line: {"value": 1})' if needed == "quantity" else ""
                raise _mistake(f"is required{hint}", f"item.{needed}")
        # store_id first: an order's time zone may depend on its store.
        order.sort(key=lambda s: s.target != "store_id")
        self._resolved = _Resolved(group_by, order, item, amounts)
        return self

    def to_mapping(self, name: str = "mapping") -> Mapping:
        """The Mapping the importer runs with; `name` unless the file names itself."""
        resolved = self._resolved
        return Mapping(
            name=self.name or name,
            description=self.description or "",
            group_by=resolved.group_by,
            order=list(resolved.order),
            item=list(resolved.item),
            amounts=dict(resolved.amounts),
            encoding=self.encoding,
            delimiter=self.delimiter,
            quotechar=self.quotechar,
            decimal=self.decimal,
            thousands=self.thousands,
            null_values=frozenset(v.strip() for v in self.null_values),
            date_formats=self.date_format,
            timezone=self.timezone,
            order_conflicts=self.order_conflicts,
            products=self.products,
        )


# --- loading --------------------------------------------------------------------------


def parse_mapping(data: object, name: str = "mapping") -> Mapping:
    """A mapping from its parsed JSON; `name` unless it names itself. Raises MappingError."""
    try:
        return MappingFile.model_validate(data).to_mapping(name)
    except ValidationError as exc:
        raise _mapping_error(exc) from None


def builtin_mappings() -> list[str]:
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.json"))


def load_mapping(name_or_path: str | os.PathLike[str] | dict[str, Any]) -> Mapping:
    """A built-in mapping by name (`superstore`), a JSON file by path, or a dict."""
    if isinstance(name_or_path, dict):
        return parse_mapping(name_or_path)
    text = str(name_or_path)
    path = Path(text)
    looks_like_path = path.suffix.lower() == ".json" or os.sep in text or "/" in text
    if not looks_like_path and not path.is_file():
        path = MAPPINGS_DIR / f"{text}.json"
        if not path.is_file():
            raise MappingError(
                f"no built-in mapping {text!r} (built-in: {', '.join(builtin_mappings())}); "
                "pass a path to a .json file for your own"
            )
    if not path.is_file():
        raise MappingError(f"mapping file not found: {text}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: not valid JSON ({exc})") from exc
    try:
        return parse_mapping(data, name=path.stem)
    except MappingError as exc:
        raise MappingError(f"{path}: {exc}") from exc
