"""The OneRoster 1.2 REST binding, read-only rostering, for learning portals (OAuth 2 client credentials).

Every response is built from the client's own scope (the schools a board officer registered it for): a filter
only narrows that set, so no `OR` can reach another school or board — the client's scope is ANDed with any
filter by construction. Demographics need the demographics scope; enrollments and relation endpoints need
roster.readonly; the core collections either core or roster. Errors carry the spec's imsx payload.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from komu.oneroster import openapi
from komu.oneroster.build import Record, Roster, build_roster
from komu.oneroster.models import AccessToken, ApiClient
from komu.oneroster.query import QueryError, apply_query, parse_query, select_fields
from komu.oneroster.selectors import client_scope
from komu.oneroster.services import (
    SCOPE_CORE,
    SCOPE_DEMOGRAPHICS,
    SCOPE_ROSTER,
    TokenRefused,
    api_read_record,
    rate_limit_hit,
    token_authenticate,
    token_issue,
)

BASE = "/ims/oneroster/rostering/v1p2"
CORE = frozenset({SCOPE_CORE, SCOPE_ROSTER})
FULL = frozenset({SCOPE_ROSTER})
DEMOGRAPHICS = frozenset({SCOPE_DEMOGRAPHICS})


def ims_error(status: int, description: str, minor: str) -> JsonResponse:
    response = JsonResponse({
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": description,
        "imsx_CodeMinor": {"imsx_codeMinorField": [
            {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": minor}]},
    }, status=status, json_dumps_params={"ensure_ascii": False})
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="oneroster"'
    return response


# --- JSON shapes -------------------------------------------------------------------------------------------------

_REF_TYPES = {"orgs": "org", "academicSessions": "academicSession", "courses": "course", "classes": "class",
              "users": "user"}
_REF_PATHS = {"orgs": "orgs", "academicSessions": "academicSessions", "courses": "courses", "classes": "classes",
              "users": "users"}


def _ref(file: str, sid: str) -> dict[str, str] | None:
    if not sid:
        return None
    return {"href": f"{BASE}/{_REF_PATHS[file]}/{sid}", "sourcedId": sid, "type": _REF_TYPES[file]}


def _list(value: str) -> list[str]:
    return [v for v in (p.strip() for p in value.split(",")) if v]


def _base(v: dict[str, str], record: Record) -> dict[str, Any]:
    return {"sourcedId": v["sourcedId"], "status": "active", "dateLastModified": _iso(record)}


def _iso(record: Record) -> str:
    from komu.oneroster.build import iso

    return iso(record.modified)


def _metadata(v: dict[str, str], prefix: str = "metadata.") -> dict[str, str]:
    return {k[len(prefix):]: val for k, val in v.items() if k.startswith(prefix) and val}


def to_json(record: Record, roles_of: dict[str, list[Record]]) -> dict[str, Any]:
    v = record.values
    out = _base(v, record)
    if record.file == "orgs":
        out.update(name=v["name"], type=v["type"], identifier=v["identifier"],
                   parent=_ref("orgs", v["parentSourcedId"]), children=[])
    elif record.file == "academicSessions":
        out.update(title=v["title"], type=v["type"], startDate=v["startDate"], endDate=v["endDate"],
                   parent=_ref("academicSessions", v["parentSourcedId"]), children=[], schoolYear=v["schoolYear"])
    elif record.file == "courses":
        out.update(title=v["title"], schoolYear=_ref("academicSessions", v["schoolYearSourcedId"]),
                   courseCode=v["courseCode"], grades=_list(v["grades"]), subjects=[], org=_ref("orgs", v["orgSourcedId"]))
    elif record.file == "classes":
        out.update(title=v["title"], classCode=v["classCode"], classType=v["classType"], location=v["location"],
                   grades=_list(v["grades"]), subjects=[], course=_ref("courses", v["courseSourcedId"]),
                   school=_ref("orgs", v["schoolSourcedId"]),
                   terms=[_ref("academicSessions", t) for t in _list(v["termSourcedIds"])], periods=[],
                   metadata=_metadata(v))
    elif record.file == "users":
        out.update(
            enabledUser=v["enabledUser"] == "true", username=v["username"], userIds=[], givenName=v["givenName"],
            familyName=v["familyName"], middleName=v["middleName"], identifier=v["identifier"], email=v["email"],
            sms=v["sms"], phone=v["phone"], agents=[], grades=_list(v["grades"]),
            primaryOrg=_ref("orgs", v["primaryOrgSourcedId"]),
            roles=[{"roleType": r.values["roleType"], "role": r.values["role"],
                    "org": _ref("orgs", r.values["orgSourcedId"])} for r in roles_of.get(v["sourcedId"], [])],
            metadata=_metadata(v))
    elif record.file == "enrollments":
        out.update(user=_ref("users", v["userSourcedId"]), **{"class": _ref("classes", v["classSourcedId"])},
                   school=_ref("orgs", v["schoolSourcedId"]), role=v["role"], primary=v["primary"] == "true",
                   beginDate=v["beginDate"] or None, endDate=v["endDate"] or None, metadata=_metadata(v))
    elif record.file == "demographics":
        out.update(birthDate=v["birthDate"] or None, sex=v["sex"] or None)
    return out


# --- the roster of a client (short per-process cache: paging through 100,000 pupils must not rebuild it) ---------

class RosterView:
    """A client's roster with its JSON objects and selections memoised: a page is then a slice, not a rebuild."""

    def __init__(self, roster: Roster) -> None:
        self.roster = roster
        self.roles_of = _roles_index(roster)
        self._json: dict[int, dict[str, Any]] = {}
        self._records: dict[int, Record] = {}
        self._objects: dict[Any, list[dict[str, Any]]] = {}
        self._selections: dict[Any, list[Record]] = {}
        self._by_id: dict[Any, dict[str, Record]] = {}

    def select(self, selector: Selector) -> list[Record]:
        if selector not in self._selections:
            self._selections[selector] = selector(self.roster, self.roles_of)
        return self._selections[selector]

    def find(self, selector: Selector, sourced_id: str) -> Record | None:
        if selector not in self._by_id:
            self._by_id[selector] = {r.sourced_id: r for r in self.select(selector)}
        return self._by_id[selector].get(sourced_id)

    def json(self, record: Record) -> dict[str, Any]:
        key = id(record)
        if key not in self._json:
            obj = to_json(record, self.roles_of)
            self._json[key] = obj
            self._records[id(obj)] = record
        return self._json[key]

    def objects(self, selector: Selector) -> list[dict[str, Any]]:
        """The JSON objects of a selection, kept for filtering and sorting the next requests."""
        if selector not in self._objects:
            self._objects[selector] = [self.json(r) for r in self.select(selector)]
        return self._objects[selector]

    def record_of(self, obj: dict[str, Any]) -> Record:
        return self._records[id(obj)]


_cache: dict[int, tuple[float, RosterView]] = {}
_lock = threading.Lock()


def _view_of(client: ApiClient) -> RosterView:
    ttl = getattr(settings, "ONEROSTER_REST_CACHE_SECONDS", 30)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(client.pk)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
    view = RosterView(build_roster(client_scope(client)))
    with _lock:
        _cache[client.pk] = (now, view)
    return view


# --- endpoints ---------------------------------------------------------------------------------------------------

Selector = Callable[[Roster, dict[str, list[Record]]], list[Record]]


def _authorise(request: HttpRequest, needs: frozenset[str]) -> tuple[AccessToken | None, JsonResponse | None]:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None, ims_error(401, _("アクセストークンが必要です（Authorization: Bearer）。"), "unauthorisedrequest")
    token = token_authenticate(header[7:].strip())
    if token is None:
        return None, ims_error(401, _("アクセストークンが無効か期限切れです。"), "unauthorisedrequest")
    if rate_limit_hit(token.client):
        response = ims_error(429, _("リクエストが多すぎます。しばらく待ってから再試行してください。"), "server_busy")
        response["Retry-After"] = "60"
        return None, response
    if not needs & set(token.scopes):
        return None, ims_error(403, _("このトークンのスコープではこの情報を読めません。"), "forbidden")
    return token, None


def _roles_index(roster: Roster) -> dict[str, list[Record]]:
    index: dict[str, list[Record]] = {}
    for role in roster.records.get("roles", []):
        index.setdefault(role.values["userSourcedId"], []).append(role)
    return index


def _respond_list(request: HttpRequest, token: AccessToken, key: str, records: list[Record],
                  view: RosterView, selector: Selector | None = None) -> HttpResponse:
    try:
        query = parse_query(request.GET.dict())
        known = set(view.json(records[0])) if records else _known_fields(key)
        if query.filter is None and not query.sort and not query.descending:
            # The common case, paging in sourcedId order: only the page is turned into JSON.
            total, page = apply_query([view.json(r) for r in records[query.offset:query.offset + query.limit]],
                                      dataclasses.replace(query, offset=0), known_fields=known)
            total = len(records)
        else:
            objects = view.objects(selector) if selector is not None else [view.json(r) for r in records]
            total, page = apply_query(objects, query, known_fields=known)
    except QueryError as exc:
        return ims_error(exc.status, str(exc), exc.minor)
    _audit(token, request, [view.record_of(o) for o in page])
    response = JsonResponse({key: select_fields(page, query)}, json_dumps_params={"ensure_ascii": False})
    response["X-Total-Count"] = str(total)
    links = []
    params = request.GET.dict()
    last_offset = max(0, ((total - 1) // query.limit) * query.limit) if total else 0
    pages = {"first": 0, "last": last_offset}
    if query.offset + query.limit < total:
        pages["next"] = query.offset + query.limit
    if query.offset > 0:
        pages["prev"] = max(0, query.offset - query.limit)
    for rel, offset in pages.items():
        links.append(f'<{request.build_absolute_uri(request.path)}?'
                     f'{urlencode({**params, "limit": query.limit, "offset": offset})}>; rel="{rel}"')
    response["Link"] = ", ".join(links)
    return response


def _known_fields(key: str) -> set[str]:
    return set(openapi.FIELDS.get(key, ()))


def _audit(token: AccessToken, request: HttpRequest, records: list[Record]) -> None:
    """A response naming persons is audited with their Komu ids (users, demographics) or, for enrollments,
    the users' sourcedIds."""
    persons = sorted({r.person_id for r in records if r.person_id}
                     | {r.values.get("userSourcedId", "") for r in records if r.file == "enrollments"} - {""})
    if persons:
        api_read_record(client=token.client, path=request.path, person_ids=persons)


def collection(key: str, needs: frozenset[str], select: Selector) -> Callable[..., HttpResponse]:
    @require_GET
    def view(request: HttpRequest) -> HttpResponse:
        token, error = _authorise(request, needs)
        if error is not None:
            return error
        assert token is not None
        view = _view_of(token.client)
        return _respond_list(request, token, key, view.select(select), view, select)

    return view


def single(key: str, needs: frozenset[str], select: Selector) -> Callable[..., HttpResponse]:
    @require_GET
    def view(request: HttpRequest, sourced_id: str) -> HttpResponse:
        token, error = _authorise(request, needs)
        if error is not None:
            return error
        assert token is not None
        view = _view_of(token.client)
        found = view.find(select, sourced_id)
        if found is None:
            return ims_error(404, _("見つかりません（このクライアントの対象の外のものも、このように答えます）。"), "unknownobject")
        obj = view.json(found)
        fields = [f for f in request.GET.get("fields", "").split(",") if f.strip()]
        if fields:
            unknown = [f for f in fields if f not in obj]
            if unknown:
                return ims_error(400, _("fields の項目「%(name)s」はありません。") % {"name": unknown[0]}, "invalid_selection_field")
            obj = {f: obj[f] for f in fields}
        _audit(token, request, [found])
        return JsonResponse({key: obj}, json_dumps_params={"ensure_ascii": False})

    return view


def relation(key: str, needs: frozenset[str], parent: Selector, children: Callable[[Roster, dict[str, list[Record]], Record], list[Record]]) -> Callable[..., HttpResponse]:
    @require_GET
    def view(request: HttpRequest, sourced_id: str) -> HttpResponse:
        token, error = _authorise(request, needs)
        if error is not None:
            return error
        assert token is not None
        view = _view_of(token.client)
        owner = view.find(parent, sourced_id)
        if owner is None:
            return ims_error(404, _("見つかりません（このクライアントの対象の外のものも、このように答えます）。"), "unknownobject")
        return _respond_list(request, token, key, children(view.roster, view.roles_of, owner), view)

    return view


# --- selections ---

def _all(file: str) -> Selector:
    return lambda roster, _roles: roster.records.get(file, [])


def _where(file: str, test: Callable[[Record], bool]) -> Selector:
    return lambda roster, _roles: [r for r in roster.records.get(file, []) if test(r)]


def _users_with(role: str) -> Selector:
    def select(roster: Roster, roles_of: dict[str, list[Record]]) -> list[Record]:
        return [u for u in roster.records.get("users", [])
                if any(r.values["role"] == role for r in roles_of.get(u.sourced_id, []))]
    return select


def _teachers(roster: Roster, roles_of: dict[str, list[Record]]) -> list[Record]:
    return [u for u in roster.records.get("users", []) if u.role == "teacher"]


def _users_in_class(role: str) -> Callable[[Roster, dict[str, list[Record]], Record], list[Record]]:
    def select(roster: Roster, _roles: dict[str, list[Record]], klass: Record) -> list[Record]:
        ids = {e.values["userSourcedId"] for e in roster.records.get("enrollments", [])
               if e.values["classSourcedId"] == klass.sourced_id and e.values["role"] == role}
        return [u for u in roster.records.get("users", []) if u.sourced_id in ids]
    return select


def _users_in_school(role: str) -> Callable[[Roster, dict[str, list[Record]], Record], list[Record]]:
    def select(roster: Roster, roles_of: dict[str, list[Record]], school: Record) -> list[Record]:
        return [u for u in roster.records.get("users", [])
                if any(r.values["orgSourcedId"] == school.sourced_id and
                       (r.values["role"] == role or (role == "teacher" and u.role == "teacher"))
                       for r in roles_of.get(u.sourced_id, []))]
    return select


def _of_school(file: str, column: str) -> Callable[[Roster, dict[str, list[Record]], Record], list[Record]]:
    return lambda roster, _roles, school: [r for r in roster.records.get(file, [])
                                          if r.values[column] == school.sourced_id]


def _classes_of_user(roster: Roster, _roles: dict[str, list[Record]], user: Record) -> list[Record]:
    ids = {e.values["classSourcedId"] for e in roster.records.get("enrollments", [])
           if e.values["userSourcedId"] == user.sourced_id}
    return [c for c in roster.records.get("classes", []) if c.sourced_id in ids]


def _classes_of_term(roster: Roster, _roles: dict[str, list[Record]], term: Record) -> list[Record]:
    return [c for c in roster.records.get("classes", []) if term.sourced_id in _list(c.values["termSourcedIds"])]


_schools = _where("orgs", lambda r: r.values["type"] == "school")
_terms = _where("academicSessions", lambda r: r.values["type"] == "term")
_students = _users_with("student")


# --- token endpoint and the OpenAPI document ---

def _client_credentials(request: HttpRequest) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return request.POST.get("client_id", ""), request.POST.get("client_secret", "")


@csrf_exempt
@require_POST
def token(request: HttpRequest) -> HttpResponse:
    """OAuth 2 client credentials (RFC 6749 §4.4): client_secret_basic or client_secret_post."""
    if request.POST.get("grant_type") != "client_credentials":
        return JsonResponse({"error": "unsupported_grant_type",
                             "error_description": _("grant_type は client_credentials にしてください。")}, status=400,
                            json_dumps_params={"ensure_ascii": False})
    client_id, secret = _client_credentials(request)
    try:
        issued = token_issue(client_id=client_id, client_secret=secret,
                             requested_scopes=request.POST.get("scope", "").split())
    except TokenRefused as exc:
        status = 401 if exc.error == "invalid_client" else 400
        response = JsonResponse({"error": exc.error, "error_description": exc.description}, status=status,
                                json_dumps_params={"ensure_ascii": False})
        if status == 401:
            response["WWW-Authenticate"] = 'Basic realm="oneroster"'
        return response
    response = JsonResponse({"access_token": issued.token, "token_type": "bearer", "expires_in": issued.expires_in,
                             "scope": " ".join(issued.scopes)})
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def openapi_document(request: HttpRequest) -> HttpResponse:
    return HttpResponse(json.dumps(openapi.document(), ensure_ascii=False, indent=2),
                        content_type="application/json; charset=utf-8")
