"""OpenAPI 3.1 document built from the route registry's payload models."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from consult.http.routing import RouteSpec
from consult.schemas import MAX_ID, SPECIALTY_MARK

# Every path parameter is an id (consult.http.routing.int_param): decimal ASCII digits.
_PATH_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_UNAVAILABLE: dict[str, Any] = {
    "description": "database_unavailable: the database cannot be reached for a moment; "
    "nothing was acknowledged. Try again after Retry-After "
    "(docs/operations.md, When the database is down).",
    "headers": {
        "Retry-After": {
            "description": "seconds to wait before trying again",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def build_openapi(routes: list[RouteSpec]) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for spec in routes:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "consult", "version": "0.1.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "consult_session"},
                "integration": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A sending system's credential (consult add-integration "
                    "NAME): it posts results and reads nothing.",
                },
            },
        },
    }


def _operation(spec: RouteSpec, components: dict[str, Any]) -> dict[str, Any]:
    """One route's operation; the schemas it refers to are added to ``components``."""

    def ref(model: type[BaseModel]) -> dict[str, str]:
        components[model.__name__] = _schema(model, components)
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    op: dict[str, Any] = {
        "summary": spec.summary,
        "operationId": spec.handler.__name__,
        "tags": [spec.tag],
        "responses": {},
    }
    params = [
        {"name": p, "in": "path", "required": True, "schema": _PATH_ID}
        for p in re.findall(r"{(\w+)}", spec.path)
    ]
    if spec.query is not None:
        params += _query_parameters(_schema(spec.query, components))
    params += [
        {
            "name": name,
            "in": "header",
            "required": True,
            "description": text,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        }
        for name, text in spec.headers
    ]
    if params:
        op["parameters"] = params
    body = _request_body(spec, ref)
    if body is not None:
        op["requestBody"] = body
    ok: dict[str, Any] = {"description": "success"}
    if spec.response is not None:
        ok["content"] = {spec.media_type: {"schema": ref(spec.response)}}
    for status in (spec.status, *spec.also):
        # A 5xx with the success body: /healthz's "degraded", which names what is unreachable.
        op["responses"][str(status)] = ok if status < 500 else {**ok, "description": "degraded"}
    error: tuple[str, dict[str, Any]] = ("application/json", _ERROR_REF)
    if spec.error_body is not None:
        error = (spec.media_type, ref(spec.error_body))
    if spec.errors:
        op["responses"]["4XX"] = {
            "description": "error codes: " + ", ".join(spec.errors),
            "content": {error[0]: {"schema": error[1]}},
        }
    # Any route may find the database unavailable for a moment (errors.Unavailable).
    op["responses"].setdefault("503", {**_UNAVAILABLE, "content": {error[0]: {"schema": error[1]}}})
    if spec.auth:
        op["security"] = [{"bearer": []}, {"cookie": []}]
    elif spec.credential is not None:
        op["security"] = [{spec.credential: []}]
    return op


def _request_body(
    spec: RouteSpec, ref: Callable[[type[BaseModel]], dict[str, str]]
) -> dict[str, Any] | None:
    if spec.body is not None:
        # No body at all is read as {}: required only when some field is.
        needed = bool(spec.body.model_json_schema().get("required"))
        return {"required": needed, "content": {"application/json": {"schema": ref(spec.body)}}}
    if spec.raw_body is not None:
        return {"required": True, "content": {spec.media_type: {"schema": ref(spec.raw_body)}}}
    if spec.upload is not None:
        return {
            "required": True,
            "content": {"multipart/form-data": {"schema": ref(spec.upload)}},
        }
    return None


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema; the models it nests are added to ``components``."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    return schema


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        described = {k: v for k, v in prop.items() if k not in ("title", "description")}
        # A query string cannot say null: an optional parameter is left out instead.
        choices = [c for c in described.pop("anyOf", []) if c.get("type") != "null"]
        if choices:
            described.update(choices[0] if len(choices) == 1 else {"anyOf": choices})
        param = {"name": name, "in": "query", "required": name in required, "schema": described}
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def with_specialties(document: dict[str, Any], codes: list[str]) -> dict[str, Any]:
    """The document as served: every specialty field lists the clinic's specialty codes (an
    unknown code is refused with unknown_specialty; the document says which are known)."""
    served = copy.deepcopy(document)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.pop(SPECIALTY_MARK, False) and codes:
                for rule in ("pattern", "minLength", "maxLength"):
                    node.pop(rule, None)
                node["enum"] = codes
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(served)
    return served
