"""The OpenAPI 3.1 document of Komu's OneRoster 1.2 REST binding, built from the route table (rest_urls.ROUTES)
and the field lists below, so the document and the endpoints cannot drift apart."""

from __future__ import annotations

from typing import Any

_COMMON = ("sourcedId", "status", "dateLastModified")
FIELDS: dict[str, tuple[str, ...]] = {
    "orgs": (*_COMMON, "name", "type", "identifier", "parent", "children"),
    "academicSessions": (*_COMMON, "title", "type", "startDate", "endDate", "parent", "children", "schoolYear"),
    "courses": (*_COMMON, "title", "schoolYear", "courseCode", "grades", "subjects", "org"),
    "classes": (*_COMMON, "title", "classCode", "classType", "location", "grades", "subjects", "course", "school",
                "terms", "periods", "metadata"),
    "users": (*_COMMON, "enabledUser", "username", "userIds", "givenName", "familyName", "middleName", "identifier",
              "email", "sms", "phone", "agents", "grades", "primaryOrg", "roles", "metadata"),
    "enrollments": (*_COMMON, "user", "class", "school", "role", "primary", "beginDate", "endDate", "metadata"),
    "demographics": (*_COMMON, "birthDate", "sex"),
}
_SINGULAR = {"academicSession": "academicSessions", "org": "orgs", "course": "courses", "class": "classes",
             "user": "users", "enrollment": "enrollments", "demographics": "demographics"}
_SCOPES = {
    "core": ["https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly",
             "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"],
    "roster": ["https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"],
    "demographics": ["https://purl.imsglobal.org/spec/or/v1p2/scope/roster-demographics.readonly"],
}
_ERROR_STATUSES = {"400": "不正な filter・sort・fields", "401": "トークンがない・無効", "403": "スコープ不足",
                   "404": "見つからない（対象外を含む）", "422": "limit・offset が不正", "429": "リクエスト過多"}


def _schema(collection: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {} for name in FIELDS[collection]}, "required": ["sourcedId"]}


def document() -> dict[str, Any]:
    from komu.oneroster.rest_urls import ROUTES

    paths: dict[str, Any] = {}
    for route, key, _view, kind, scope in ROUTES:
        template = "/" + route.replace("<str:sourced_id>", "{sourcedId}")
        collection = _SINGULAR.get(key, key)
        params: list[dict[str, Any]] = []
        if "{sourcedId}" in template:
            params.append({"name": "sourcedId", "in": "path", "required": True, "schema": {"type": "string"}})
        if kind != "single":
            params += [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 100, "minimum": 1}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "default": 0, "minimum": 0}},
                {"name": "sort", "in": "query", "schema": {"type": "string"}},
                {"name": "orderBy", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"]}},
                {"name": "filter", "in": "query", "schema": {"type": "string"},
                 "description": "field op 'value'（op: = != > >= < <= ~）を AND / OR でつなぐ"},
            ]
        params.append({"name": "fields", "in": "query", "schema": {"type": "string"}})
        body = ({"type": "object", "properties": {key: {"type": "array", "items": {"$ref": f"#/components/schemas/{collection}"}}}}
                if kind != "single" else
                {"type": "object", "properties": {key: {"$ref": f"#/components/schemas/{collection}"}}})
        responses: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {"schema": body}}}}
        if kind != "single":
            responses["200"]["headers"] = {"X-Total-Count": {"schema": {"type": "integer"}},
                                           "Link": {"schema": {"type": "string"}}}
        for status, text in _ERROR_STATUSES.items():
            responses[status] = {"description": text, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/imsx_StatusInfo"}}}}
        paths[template] = {"get": {"operationId": f"get_{route.replace('/', '_').replace('<str:sourced_id>', 'id')}",
                                   "parameters": params, "responses": responses,
                                   "security": [{"OAuth2CC": _SCOPES[scope]}]}}
    schemas: dict[str, Any] = {name: _schema(name) for name in FIELDS}
    schemas["imsx_StatusInfo"] = {"type": "object", "properties": {
        "imsx_codeMajor": {"type": "string"}, "imsx_severity": {"type": "string"},
        "imsx_description": {"type": "string"}, "imsx_CodeMinor": {"type": "object"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Komu OneRoster 1.2 Rostering (Japan Profile), read-only", "version": "1.2"},
        "servers": [{"url": "/ims/oneroster/rostering/v1p2"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"OAuth2CC": {"type": "oauth2", "flows": {
            "clientCredentials": {"tokenUrl": "/ims/oneroster/token",
                                  "scopes": {s: s.rsplit("/", 1)[-1] for v in _SCOPES.values() for s in v}}}}}},
    }
