"""The service's OpenAPI 3.0 description, generated from the endpoint table (served at
/openapi.json; the fuzz test in tests/test_server_fuzz.py runs against it)."""
from __future__ import annotations

import functools

from edge import __version__
from edge.server.endpoints import ENDPOINTS, V3_LIST_ITEM, V3_NUMBERS, Endpoint

_ANSWER = {"type": "object", "additionalProperties": True, "properties": {
    "error_code": {"type": "integer", "description": "absent (v2) or 0 (v3) on success"},
    "error_msg": {"type": "string"}, "log_id": {"type": "integer"}}}
_JSON_ANSWER = {"description": "Baidu's answer; API errors are HTTP 200 with error_code set",
                "content": {"application/json": {"schema": _ANSWER}}}


def _field(version: str, name: str) -> dict:
    return {"type": V3_NUMBERS.get(name, "string") if version == "v3" else "string"}


def _body(ep: Endpoint) -> dict:
    if ep.body == "list":
        item = {"type": "object", "required": ["image", "image_type"],
                "properties": {n: _field("v3", n) for n in V3_LIST_ITEM}}
        schema = {"type": "array", "items": item, "minItems": 1}
    else:
        names = ep.args + ep.options
        schema = {"type": "object", "required": list(ep.args),
                  "properties": {n: _field(ep.version, n) for n in names}}
    media = "application/x-www-form-urlencoded" if ep.version == "v2" else "application/json"
    return {"required": True, "content": {media: {"schema": schema}}}


def _operation(ep: Endpoint) -> dict:
    return {"post": {
        "operationId": f"{ep.version}_{ep.path.replace('/', '_').replace('-', '_')}",
        "summary": ep.summary or f"{ep.method} (Baidu face {ep.version})",
        "tags": [ep.version],
        "security": [{"access_token": []}, {"bce_auth": []}],
        "requestBody": _body(ep),
        "responses": {"200": _JSON_ANSWER}}}


@functools.lru_cache(maxsize=1)
def openapi() -> dict:
    paths = {url: _operation(ep) for url, ep in sorted(ENDPOINTS.items())}
    token_params = [{"name": n, "in": "query", "required": True, "schema": {"type": "string"}}
                    for n in ("grant_type", "client_id", "client_secret")]
    token_answer = {"description": "access_token, or an OAuth error (400/401)",
                    "content": {"application/json": {"schema": {"type": "object"}}}}
    paths["/oauth/2.0/token"] = {
        "get": {"operationId": "token", "summary": "access_token for an API key and secret", "tags": ["auth"],
                "parameters": token_params,
                "responses": {"200": token_answer, "400": token_answer, "401": token_answer}}}
    paths["/health"] = {"get": {"operationId": "health", "tags": ["ops"], "summary": "liveness of the service",
                                "responses": {"200": _JSON_ANSWER}}}
    paths["/metrics"] = {"get": {"operationId": "metrics", "tags": ["ops"], "summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "text exposition format",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "edge face service", "version": __version__,
                 "description": "Baidu face API v2 (form) and v3 (JSON), offline. See docs/server.md."},
        "paths": paths,
        "components": {"securitySchemes": {
            "access_token": {"type": "apiKey", "in": "query", "name": "access_token"},
            "bce_auth": {"type": "apiKey", "in": "header", "name": "Authorization"}}},
    }
