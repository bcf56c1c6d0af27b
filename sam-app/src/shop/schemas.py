"""JSON Schemas of the shop's events, exported from their pydantic models.

The models in `shop.events` are the source of truth; the files in sam-app/schemas/
are generated from them for consumers in other languages and for the docs. After
changing a model, regenerate them (a test fails until you do):

    PYTHONPATH=sam-app/src .venv/bin/python -m shop.schemas

The files are JSON Schema 2020-12, pydantic's dialect. EventBridge's schema
registry takes OpenAPI 3 or JSON Schema Draft 4, so a file needs converting
before it is uploaded there.
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-schema.html
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode
from pydantic_core import core_schema

from shop.events import EVENT_TYPES, SCHEMA_VERSION, EventEnvelope, OrderPlaced

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: The command that rewrites the checked-in schemas, from the repository root.
REGENERATE = "PYTHONPATH=sam-app/src .venv/bin/python -m shop.schemas"

#: When every example happened: fixed, like their ids, so an export gives the same files every time.
EXAMPLE_TIME = "2025-11-28T09:00:00Z"

#: One valid detail per event type, by detail-type: published into the schema's
#: `examples`, and used by tests and notebooks wherever "one of each" is needed.
EXAMPLES: dict[str, dict[str, Any]] = {
    "OrderPlaced": {
        "order_id": "order-1",
        "customer_id": "customer-1",
        "lines": [{"sku": "BOOK-001", "quantity": 2, "unit_price_cents": 3999}],
    },
    "OrderConfirmed": {"order_id": "order-1", "customer_id": "customer-1", "total_cents": 7998},
    "InventoryReserved": {"order_id": "order-1", "lines": [{"sku": "BOOK-001", "quantity": 2}]},
    "OutOfStock": {"order_id": "order-1", "sku": "BOOK-001", "requested": 2, "available": 0},
    "ProductViewed": {"session_id": "session-1", "sku": "BOOK-001"},
    "ProductAddedToCart": {"session_id": "session-1", "sku": "BOOK-001", "quantity": 2},
    "PaymentSucceeded": {"order_id": "order-1", "customer_id": "customer-1", "amount_cents": 7998,
                         "charge_id": "ch_order-1"},
    "PaymentFailed": {"order_id": "order-1", "customer_id": "customer-1", "reason": "card_declined",
                      "lines": [{"sku": "BOOK-001", "quantity": 2}]},
    "OrderCancelled": {"order_id": "order-1", "customer_id": "customer-1", "reason": "card_declined",
                       "lines": [{"sku": "BOOK-001", "quantity": 2}]},
}


class _EventJsonSchema(GenerateJsonSchema):
    """Marks every serialised field required: an event on the bus always carries its
    defaults (schema_version, currency, ...), so a consumer may rely on them."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return not field.get("serialization_exclude") and field.get("serialization_exclude_if") is None
        return super().field_is_required(field, total)


def schema_id(model: type[EventEnvelope]) -> str:
    """The schema's `$id`: source, detail-type and schema version, which together name it."""
    return f"urn:shop:events:{model.source}:{model.detail_type}:{SCHEMA_VERSION}"


def example_event_id(model: type[EventEnvelope]) -> str:
    """The event id of `model`'s example: derived from its schema's $id, so it never changes."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, schema_id(model)))


def example(model: type[EventEnvelope]) -> dict[str, Any]:
    """The example event of `model` as its detail appears on the bus (JSON, as a dict).

    Every example belongs to the chain that the OrderPlaced example starts, so each
    carries that event's id as its correlation id.
    """
    envelope = {
        "event_id": example_event_id(model),
        "correlation_id": example_event_id(OrderPlaced),
        "schema_version": SCHEMA_VERSION,
        "occurred_at": EXAMPLE_TIME,
    }
    detail = envelope | EXAMPLES[model.detail_type]
    return model.parse(detail).model_dump(mode="json")


def json_schema(model: type[EventEnvelope]) -> dict[str, Any]:
    """The JSON Schema of `model`'s detail as producers serialise it."""
    mode: JsonSchemaMode = "serialization"
    generated = model.model_json_schema(mode=mode, schema_generator=_EventJsonSchema)
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(model),
        **generated,
        "title": f"{model.detail_type} from {model.source}, schema version {SCHEMA_VERSION}",
    }
    if model.detail_type in EXAMPLES:
        schema["examples"] = [example(model)]
    return schema


def export(directory: str | Path) -> list[Path]:
    """Write `<DetailType>.json` for every event type into `directory`; return the paths."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for detail_type, model in EVENT_TYPES.items():
        path = target / f"{detail_type}.json"
        path.write_text(render(model))
        written.append(path)
    return written


def render(model: type[EventEnvelope]) -> str:
    """The text of `model`'s schema file, exactly as export() writes it."""
    return json.dumps(json_schema(model), indent=2, ensure_ascii=False) + "\n"


def stale(directory: str | Path) -> list[str]:
    """Schema files in `directory` that are missing, differ from a fresh export, or
    belong to no event type any more."""
    target = Path(directory)
    problems = []
    for detail_type, model in EVENT_TYPES.items():
        path = target / f"{detail_type}.json"
        if not path.exists():
            problems.append(f"{path.name} is missing")
        elif path.read_text() != render(model):
            problems.append(f"{path.name} differs from the {detail_type} model")
    expected = {f"{detail_type}.json" for detail_type in EVENT_TYPES}
    problems += [f"{p.name} matches no event type" for p in sorted(target.glob("*.json")) if p.name not in expected]
    return problems


def default_directory() -> Path:
    """sam-app/schemas, beside the src/ directory this package lives in."""
    return Path(__file__).resolve().parents[2] / "schemas"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shop.schemas", description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=default_directory(),
                        help="where to write <DetailType>.json (default: sam-app/schemas)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the files differ from the models")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale(args.directory)
        for problem in problems:
            print(f"{args.directory}: {problem}", file=sys.stderr)
        if problems:
            print(f"regenerate them with: {REGENERATE}", file=sys.stderr)
        return 1 if problems else 0
    for path in export(args.directory):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
