"""The OneRoster 1.2 REST binding (read-only rostering) and its OAuth 2 token endpoint, under /ims/oneroster/.

ROUTES is also the source of the OpenAPI document (komu.oneroster.openapi): one table, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, path

from komu.oneroster import api
from komu.oneroster.api import CORE, DEMOGRAPHICS, FULL

# (path below the base, response key, view, "collection" | "single" | "relation", scope label)
ROUTES: list[tuple[str, str, Callable[..., Any], str, str]] = [
    ("academicSessions", "academicSessions", api.collection("academicSessions", CORE, api._all("academicSessions")), "collection", "core"),
    ("academicSessions/<str:sourced_id>", "academicSession", api.single("academicSession", CORE, api._all("academicSessions")), "single", "core"),
    ("terms", "academicSessions", api.collection("academicSessions", CORE, api._terms), "collection", "core"),
    ("terms/<str:sourced_id>", "academicSession", api.single("academicSession", CORE, api._terms), "single", "core"),
    ("terms/<str:sourced_id>/classes", "classes", api.relation("classes", FULL, api._terms, api._classes_of_term), "relation", "roster"),
    ("orgs", "orgs", api.collection("orgs", CORE, api._all("orgs")), "collection", "core"),
    ("orgs/<str:sourced_id>", "org", api.single("org", CORE, api._all("orgs")), "single", "core"),
    ("schools", "orgs", api.collection("orgs", CORE, api._schools), "collection", "core"),
    ("schools/<str:sourced_id>", "org", api.single("org", CORE, api._schools), "single", "core"),
    ("schools/<str:sourced_id>/classes", "classes", api.relation("classes", FULL, api._schools, api._of_school("classes", "schoolSourcedId")), "relation", "roster"),
    ("schools/<str:sourced_id>/courses", "courses", api.relation("courses", FULL, api._schools, api._of_school("courses", "orgSourcedId")), "relation", "roster"),
    ("schools/<str:sourced_id>/enrollments", "enrollments", api.relation("enrollments", FULL, api._schools, api._of_school("enrollments", "schoolSourcedId")), "relation", "roster"),
    ("schools/<str:sourced_id>/students", "users", api.relation("users", FULL, api._schools, api._users_in_school("student")), "relation", "roster"),
    ("schools/<str:sourced_id>/teachers", "users", api.relation("users", FULL, api._schools, api._users_in_school("teacher")), "relation", "roster"),
    ("courses", "courses", api.collection("courses", CORE, api._all("courses")), "collection", "core"),
    ("courses/<str:sourced_id>", "course", api.single("course", CORE, api._all("courses")), "single", "core"),
    ("courses/<str:sourced_id>/classes", "classes", api.relation("classes", FULL, api._all("courses"), lambda r, _x, c: [k for k in r.records.get("classes", []) if k.values["courseSourcedId"] == c.sourced_id]), "relation", "roster"),
    ("classes", "classes", api.collection("classes", CORE, api._all("classes")), "collection", "core"),
    ("classes/<str:sourced_id>", "class", api.single("class", CORE, api._all("classes")), "single", "core"),
    ("classes/<str:sourced_id>/students", "users", api.relation("users", FULL, api._all("classes"), api._users_in_class("student")), "relation", "roster"),
    ("classes/<str:sourced_id>/teachers", "users", api.relation("users", FULL, api._all("classes"), api._users_in_class("teacher")), "relation", "roster"),
    ("users", "users", api.collection("users", CORE, api._all("users")), "collection", "core"),
    ("users/<str:sourced_id>", "user", api.single("user", CORE, api._all("users")), "single", "core"),
    ("users/<str:sourced_id>/classes", "classes", api.relation("classes", FULL, api._all("users"), api._classes_of_user), "relation", "roster"),
    ("students", "users", api.collection("users", CORE, api._students), "collection", "core"),
    ("students/<str:sourced_id>", "user", api.single("user", CORE, api._students), "single", "core"),
    ("students/<str:sourced_id>/classes", "classes", api.relation("classes", FULL, api._students, api._classes_of_user), "relation", "roster"),
    ("teachers", "users", api.collection("users", CORE, api._teachers), "collection", "core"),
    ("teachers/<str:sourced_id>", "user", api.single("user", CORE, api._teachers), "single", "core"),
    ("teachers/<str:sourced_id>/classes", "classes", api.relation("classes", FULL, api._teachers, api._classes_of_user), "relation", "roster"),
    ("enrollments", "enrollments", api.collection("enrollments", FULL, api._all("enrollments")), "collection", "roster"),
    ("enrollments/<str:sourced_id>", "enrollment", api.single("enrollment", FULL, api._all("enrollments")), "single", "roster"),
    ("demographics", "demographics", api.collection("demographics", DEMOGRAPHICS, api._all("demographics")), "collection", "demographics"),
    ("demographics/<str:sourced_id>", "demographics", api.single("demographics", DEMOGRAPHICS, api._all("demographics")), "single", "demographics"),
]

urlpatterns: list[URLPattern] = [
    path("token", api.token, name="oneroster_token"),
    path("rostering/v1p2/openapi.json", api.openapi_document, name="oneroster_openapi"),
    *(path(f"rostering/v1p2/{route}", view) for route, _key, view, _kind, _scope in ROUTES),
]
