# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""The pieces of Caddy's JSON a registry front is made of: routes, static
answers and distribution's error bodies and headers. Pure.
"""

from __future__ import annotations

import json

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
READ_METHODS = ("GET", "HEAD")


def route(match, *handlers):
    route = {"handle": list(handlers)}
    if match:
        route["match"] = match
    return route


def static(status, body=None, headers=None):
    handler = {"handler": "static_response", "status_code": status}
    if body is not None:
        handler["body"] = body
    if headers:
        handler["headers"] = headers
    return handler


def error_body(code, message):
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}, separators=(",", ":"))


def registry_headers():
    return {
        "Docker-Distribution-Api-Version": ["registry/2.0"],
        "Content-Type": ["application/json; charset=utf-8"],
    }
