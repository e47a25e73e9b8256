"""The OpenAPI 3.1 document of the data-in API, generated from the import spec tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.importing import KINDS, READ_ONLY, SPECS, Column, ColumnType
from store.importing.spec import MAX_LIST_ITEMS

API_PREFIX = "/api/v1"
SCHEMA_NAMES = {
    "users": "User",
    "customers": "Customer",
    "leads": "Lead",
    "opportunities": "Opportunity",
    "contracts": "Contract",
    "payments": "Payment",
}
_DATETIME_EXAMPLES = ["2026-11-30T10:00:00+08:00", "2026-11-30 10:00"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any], col: Column) -> dict[str, Any]:
    if col.required or not col.clears:
        return schema
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*types, "null"]}


def column_schema(col: Column, stages: Sequence[str]) -> dict[str, Any]:
    """JSON Schema (2020-12, as OpenAPI 3.1 uses it) of one import column."""
    description = col.description + (f" Default: {col.default}." if col.default else "")
    schema: dict[str, Any]
    if col.type is ColumnType.STR:
        schema = {"type": "string"}
        if col.max_length:
            schema["maxLength"] = col.max_length
        if col.pattern:
            schema["pattern"] = col.pattern
        if col.required:
            schema["minLength"] = 1
    elif col.type is ColumnType.INT:
        schema = {"type": ["integer", "string"], "minimum": col.minimum, "maximum": col.maximum}
    elif col.type is ColumnType.DECIMAL:
        schema = {"type": ["number", "string"], "examples": ["50000", "50,000.00"]}
        description += " At most 2 decimals; returned as a string."
    elif col.type is ColumnType.DATETIME:
        schema = {"type": "string", "examples": _DATETIME_EXAMPLES}
        description += " ISO 8601; without an offset it is Asia/Shanghai."
    elif col.type is ColumnType.ENUM:
        schema = {"type": "string", "enum": list(stages if col.stages else col.choices)}
    elif col.type is ColumnType.LIST:
        item: dict[str, Any] = {"type": "string"}
        if col.choices:
            item["enum"] = list(col.choices)
        if col.max_length:
            item["maxLength"] = col.max_length
        schema = {"type": ["array", "string"], "items": item, "maxItems": MAX_LIST_ITEMS}
        description += " A JSON array, or one string separated by ';'."
    else:
        schema = {"type": ["boolean", "string"]}
    schema = {k: v for k, v in schema.items() if v is not None}
    return _nullable({**schema, "description": description}, col)


def kind_schema(kind: str, stages: Sequence[str]) -> dict[str, Any]:
    """One object of `kind`: the import columns plus read-only metadata returned by GET."""
    spec = SPECS[kind]
    properties = {col.name: column_schema(col, stages) for col in spec.columns}
    for meta in READ_ONLY:
        if meta not in properties and (meta != "updated_at" or kind != "payments"):
            meta_type: dict[str, Any] = {"type": "integer"} if meta == "id" else {"type": ["string", "null"]}
            properties[meta] = {**meta_type, "readOnly": True, "description": "Read-only; ignored on input."}
    return {
        "type": "object",
        "title": spec.title,
        "description": spec.description,
        "properties": properties,
        "required": list(spec.required),
        "additionalProperties": False,
    }


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _report(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("ImportReport")}}}


def _upsert(kind: str, method: str, max_items: int) -> dict[str, Any]:
    name = SCHEMA_NAMES[kind]
    items = {"type": "array", "items": _ref(name), "maxItems": max_items}
    return {
        "tags": [kind],
        "operationId": f"{method}_{kind}",
        "summary": f"Upsert {kind} by external_id",
        "description": (
            "Creates or updates each item by external_id; importing the same items again changes "
            "nothing. Bad items are reported by index; good ones are kept. 200 when at least one item "
            "was applied (or there were none), 422 when every item was rejected."
        ),
        "parameters": [
            {
                "name": "dry_run",
                "in": "query",
                "required": False,
                "description": "Check everything, write nothing.",
                "schema": {"type": "boolean", "default": False},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            items,
                            {
                                "type": "object",
                                "properties": {"items": items},
                                "required": ["items"],
                                "additionalProperties": False,
                            },
                        ]
                    }
                }
            },
        },
        "responses": {
            "200": _report("The import report."),
            "400": _error("The body is not JSON, or not an array of objects."),
            "401": _error("Missing or wrong bearer token."),
            "413": _error("The body or the number of items is over the limit."),
            "422": _report("Every item was rejected; nothing was written."),
            "503": _error("The API token is not configured."),
        },
    }


def _get(kind: str) -> dict[str, Any]:
    return {
        "tags": [kind],
        "operationId": f"get_{kind[:-1] if kind.endswith('s') else kind}",
        "summary": f"One stored {kind[:-1]} by external_id",
        "parameters": [
            {
                "name": "external_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "maxLength": 64},
            }
        ],
        "responses": {
            "200": {
                "description": "The stored object, in the shape it is imported in.",
                "content": {"application/json": {"schema": _ref(SCHEMA_NAMES[kind])}},
            },
            "401": _error("Missing or wrong bearer token."),
            "404": _error("No such object."),
            "503": _error("The API token is not configured."),
        },
    }


def build_openapi(stages: Sequence[str], *, max_items: int, max_body_bytes: int) -> dict[str, Any]:
    """The whole document; `stages` fill the opportunity stage enum."""
    paths: dict[str, Any] = {
        f"{API_PREFIX}/openapi.json": {
            "get": {
                "tags": ["meta"],
                "operationId": "get_openapi",
                "summary": "This document (no authentication needed)",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1 document", "content": {"application/json": {}}}},
            }
        }
    }
    for kind in KINDS:
        paths[f"{API_PREFIX}/{kind}"] = {
            "put": _upsert(kind, "put", max_items),
            "post": _upsert(kind, "post", max_items),
        }
        paths[f"{API_PREFIX}/{kind}/{{external_id}}"] = {"get": _get(kind)}
    schemas: dict[str, Any] = {SCHEMA_NAMES[k]: kind_schema(k, stages) for k in KINDS}
    schemas["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    }
    schemas["ImportError"] = {
        "type": "object",
        "properties": {
            "index": {
                "type": ["integer", "null"],
                "description": "Item index (from 0); null = the whole request.",
            },
            "column": {"type": ["string", "null"], "description": "The field at fault, if any."},
            "error": {"type": "string"},
        },
        "required": ["index", "column", "error"],
    }
    counts = ("total", "created", "updated", "unchanged", "failed", "org_units_created")
    schemas["ImportReport"] = {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": list(KINDS)},
            **{name: {"type": "integer", "minimum": 0} for name in counts},
            "aborted": {"type": "boolean"},
            "dry_run": {"type": "boolean"},
            "errors": {"type": "array", "items": _ref("ImportError")},
        },
        "required": ["kind", *counts, "aborted", "dry_run", "errors"],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "salesbot data-in API",
            "version": "1.0.0",
            "description": (
                "Upsert users, customers, leads, opportunities, contracts and payments by external_id. "
                "Fields are the CSV columns of docs/import.md. "
                f"Request bodies are limited to {max_body_bytes} bytes and {max_items} items."
            ),
        },
        "tags": [{"name": k, "description": SPECS[k].description} for k in KINDS] + [{"name": "meta"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token from [api] token (or $SALESBOT_API_TOKEN).",
                }
            },
        },
        "security": [{"bearerAuth": []}],
    }
