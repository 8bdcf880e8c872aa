"""OpenAPI 3.1 document built from the route registry's payload models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from consult.http.routing import RouteSpec

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


def build_openapi(routes: list[RouteSpec]) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    for spec in routes:
        op: dict[str, Any] = {
            "summary": spec.summary,
            "operationId": spec.handler.__name__,
            "tags": [spec.tag],
            "responses": {},
        }
        params = re.findall(r"{(\w+)}", spec.path)
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "integer"}}
                for p in params
            ]
        if spec.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(spec.body)}},
            }
        ok: dict[str, Any] = {"description": "success"}
        if spec.response is not None:
            ok["content"] = {"application/json": {"schema": ref(spec.response)}}
        op["responses"][str(spec.status)] = ok
        if spec.errors:
            op["responses"]["4XX"] = {
                "description": "error codes: " + ", ".join(spec.errors),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        if spec.auth:
            op["security"] = [{"bearer": []}, {"cookie": []}]
        paths.setdefault(spec.path, {})[spec.method.lower()] = op

    return {
        "openapi": "3.1.0",
        "info": {"title": "consult", "version": "0.1.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "consult_session"},
            },
        },
    }
