"""API keys: who may ingest, read and administer, and for which project.

Keys live in a TOML file named by ``AGENTLEDGER_KEYS_FILE``::

    [[keys]]
    name = "ci-ingest"          # shown in logs instead of the key
    key = "a long random string" # or sha256 = "<hex digest of the key>"
    project = "acme"            # "*" for every project
    role = "ingest"             # ingest | read | admin

Clients send a key as ``Authorization: Bearer <key>``; the dashboard signs in with a read key
at ``/login`` and then carries a signed, HttpOnly session cookie. A key of one project
neither writes nor reads another's data: ingest gives the key's project to resources that
name none (or the SDK's ``"default"``) and refuses resources naming another (403); reads
are filtered to the key's project, and asking for another is refused (403). ``admin`` may
do everything in its project; SQL, which cannot be limited to one project, depends on
:data:`require_sql_admin` (an admin key of project ``"*"``).

With no keys configured access is open, which the collector allows on a loopback address
only. Keys are compared by SHA-256 digest and never logged.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import html
import inspect
import ipaddress
import json
import logging
import secrets
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, cast, get_args
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from google.rpc import status_pb2
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel

from agentledger.collector import otlp
from agentledger.collector.settings import SettingsError
from agentledger.schemas import attributes as attr
from agentledger.schemas.analysis import SQL_MAX_ROWS, SqlForbiddenError

logger = logging.getLogger(__name__)

Role = Literal["ingest", "read", "admin"]
_Model = TypeVar("_Model", bound=BaseModel)
_Reader = TypeVar("_Reader")
ROLES: Final[tuple[str, ...]] = get_args(Role)
ALL_PROJECTS: Final = "*"
SESSION_COOKIE: Final = "agentledger_session"
SESSION_SECONDS: Final = 12 * 3600
MIN_KEY_LENGTH: Final = 16
# google.rpc.Code values of refusals on the OTLP path.
_RPC_PERMISSION_DENIED: Final = 7
_RPC_UNAUTHENTICATED: Final = 16
# Paths anyone may fetch: liveness, sign-in, and the API description.
_OPEN_PATHS: Final = frozenset({"/healthz", "/login", "/logout", "/docs", "/openapi.json", "/"})
_DASHBOARD: Final = "/dashboard"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the name of its key, its project and its role."""

    name: str
    project: str
    role: Role

    def can(self, role: Role) -> bool:
        """Whether this principal holds ``role``; admin holds every role."""
        return self.role == "admin" or self.role == role

    def sees(self, project: str) -> bool:
        return self.project in (ALL_PROJECTS, project)


#: The principal of every request when no keys are configured.
OPEN: Final = Principal("open", ALL_PROJECTS, "admin")
_current: contextvars.ContextVar[Principal] = contextvars.ContextVar(
    "agentledger_principal", default=OPEN
)


def current_principal() -> Principal:
    """The principal of the request being served (OPEN outside a guarded request)."""
    return _current.get()


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Run a block as ``principal``, e.g. a background job or a test of scoped reads."""
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)


class ProjectForbidden(otlp.OtlpError):
    """A request names a project that its key may not write."""

    status_code = 403


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyRing:
    """The configured keys, looked up by the SHA-256 digest of a presented key."""

    def __init__(self, entries: Iterable[tuple[str, Principal]] = ()) -> None:
        self._by_digest = {d.lower(): p for d, p in entries}

    def __bool__(self) -> bool:
        return bool(self._by_digest)

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, key: str) -> Principal | None:
        return self._by_digest.get(digest(key))

    def by_digest(self, key_digest: str) -> Principal | None:
        return self._by_digest.get(key_digest)

    @classmethod
    def from_file(cls, path: Path) -> KeyRing:
        """Read a keys file; errors name the entry and field, never the key itself."""
        try:
            document = tomllib.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise SettingsError(f"keys file {str(path)!r} cannot be read: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"keys file {str(path)!r} is not valid TOML: {exc}") from exc
        entries = document.get("keys", [])
        if not isinstance(entries, list):
            raise SettingsError(f"keys file {str(path)!r}: 'keys' must be an array of tables")
        return cls(_entry(path, index, entry) for index, entry in enumerate(entries))


def _entry(path: Path, index: int, entry: Any) -> tuple[str, Principal]:
    where = f"keys file {str(path)!r}, keys[{index}]"
    if not isinstance(entry, dict):
        raise SettingsError(f"{where} must be a table")
    name = entry.get("name", f"keys[{index}]")
    project = entry.get("project")
    role = entry.get("role")
    if not isinstance(project, str) or not project:
        raise SettingsError(f"{where}: project {project!r} must be a non-empty string or '*'")
    if role not in ROLES:
        raise SettingsError(f"{where}: role {role!r} is not one of {list(ROLES)!r}")
    key, hashed = entry.get("key"), entry.get("sha256")
    if (key is None) == (hashed is None):
        raise SettingsError(f"{where}: give exactly one of 'key' and 'sha256'")
    if key is not None:
        if not isinstance(key, str) or len(key) < MIN_KEY_LENGTH:
            # The value itself is a secret: only its length is shown.
            length = len(key) if isinstance(key, str) else 0
            raise SettingsError(
                f"{where}: key must be a string of at least {MIN_KEY_LENGTH} characters, "
                f"got one of {length}"
            )
        key_digest = digest(key)
    else:
        if not isinstance(hashed, str) or len(hashed) != 64:
            raise SettingsError(f"{where}: sha256 must be 64 hex digits")
        try:
            bytes.fromhex(hashed)
        except ValueError:
            raise SettingsError(f"{where}: sha256 must be 64 hex digits") from None
        key_digest = hashed.lower()
    return key_digest, Principal(str(name), project, cast(Role, role))


def load_keys(keys_file: Path | None) -> KeyRing:
    return KeyRing() if keys_file is None else KeyRing.from_file(keys_file)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, keys: KeyRing) -> None:
    """Refuse to serve a non-loopback address without keys: anyone could read and write."""
    if keys or is_loopback(host):
        return
    raise SettingsError(
        f"host {host!r} is not a loopback address and no API keys are configured, so anyone "
        "who reaches it could read and write every project; set AGENTLEDGER_KEYS_FILE to a "
        "keys file, or serve on 127.0.0.1"
    )


# --- what a request needs ----------------------------------------------------------------------


def required_role(path: str, method: str) -> Role | None:
    """The role a request needs, or None for open paths."""
    if path in _OPEN_PATHS:
        return None
    if path.startswith("/v1/"):
        return "ingest"
    if path == "/api/v1/outcomes" and method == "POST":
        return "ingest"
    return "read"


def claim_resources(request: otlp.DecodedRequest, principal: Principal) -> None:
    """Give resources without a project the key's; refuse ones naming another project."""
    if principal.project == ALL_PROJECTS:
        return
    for index, resource in enumerate(request.resources):
        named = resource.attributes.get(attr.PROJECT)
        # The SDK writes "default" when the agent chose no project: the key's project wins.
        if named in (None, "", attr.DEFAULT_PROJECT):
            resource.attributes[attr.PROJECT] = principal.project
        elif named != principal.project:
            raise ProjectForbidden(
                f"resourceSpans[{index}]: {attr.PROJECT} {named!r} may not be written with "
                f"a key of project {principal.project!r}"
            )


def claim_project(model: _Model, principal: Principal) -> _Model:
    """A model whose ``project`` is the key's; raise 403 if it explicitly names another."""
    if principal.project == ALL_PROJECTS:
        return model
    named = getattr(model, "project", None)
    explicit = "project" in model.model_fields_set and named != attr.DEFAULT_PROJECT
    if explicit and named != principal.project:
        raise HTTPException(
            403,
            f"project {named!r} may not be written with a key of project {principal.project!r}",
        )
    return model.model_copy(update={"project": principal.project})


def require_role(role: Role, *, all_projects: bool = False) -> Callable[[], Principal]:
    """A FastAPI dependency refusing (403) a request whose key lacks ``role``.

    ``all_projects`` also requires a key of project ``"*"``: for endpoints such as SQL that
    cannot be limited to one project.
    """

    def dependency() -> Principal:
        principal = current_principal()
        if not principal.can(role):
            raise HTTPException(403, f"this endpoint needs a key with role {role!r}")
        if all_projects and principal.project != ALL_PROJECTS:
            raise HTTPException(
                403, f"this endpoint reads every project; it needs a {role!r} key of project '*'"
            )
        return principal

    return dependency


#: Dependency of administrative endpoints within the key's project.
require_admin = require_role("admin")
#: Dependency of the SQL endpoint and page, which cannot be limited to one project.
require_sql_admin = require_role("admin", all_projects=True)


def scoped_reader(reader: _Reader) -> _Reader:
    """``reader`` limited to the current principal's project (see :class:`ScopedReader`)."""
    return cast(_Reader, ScopedReader(reader))


class ScopedReader:
    """A reader whose every query is limited to the current principal's project.

    Wraps any reader: keyword ``project`` arguments and ``project`` fields of query models
    are replaced by the key's project, so the dashboard and the API cannot show another's.
    """

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def sql_refusal(self) -> str | None:
        """Why the current principal may not run ad-hoc SQL, or None: the very rule of
        ``POST /api/v1/sql`` (:data:`require_sql_admin`), for the dashboard's SQL page."""
        try:
            require_sql_admin()
        except HTTPException as exc:
            return str(exc.detail)
        return None

    def sql(self, sql: str, max_rows: int = SQL_MAX_ROWS) -> Any:
        """Ad-hoc SQL for a principal that may run it; SQL reads every project, so this is
        checked here, on the server, whatever the page showed."""
        refusal = self.sql_refusal()
        if refusal is not None:
            raise SqlForbiddenError(refusal)
        return self._reader.sql(sql, max_rows)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._reader, name)
        if not callable(target):
            return target

        def scoped(*args: Any, **kwargs: Any) -> Any:
            project = current_principal().project
            if project == ALL_PROJECTS:
                return target(*args, **kwargs)
            args = tuple(_scoped(a, project) for a in args)
            kwargs = {k: _scoped(v, project) for k, v in kwargs.items()}
            signature = inspect.signature(target)
            if "project" not in signature.parameters:
                return target(*args, **kwargs)
            bound = signature.bind_partial(*args, **kwargs)
            bound.arguments["project"] = project
            return target(*bound.args, **bound.kwargs)

        return scoped


def _scoped(value: Any, project: str) -> Any:
    if isinstance(value, BaseModel) and "project" in type(value).model_fields:
        return value.model_copy(update={"project": project})
    return value


# --- the guard --------------------------------------------------------------------------------


class Sessions:
    """Signed session cookies holding a key's digest, valid ``SESSION_SECONDS``."""

    def __init__(self, secret: str | None) -> None:
        # A random secret ends every session when the process restarts, which is acceptable.
        self._serializer = URLSafeTimedSerializer(
            secret or secrets.token_urlsafe(32), salt="agentledger-session"
        )

    def issue(self, key: str) -> str:
        return self._serializer.dumps(digest(key))

    def read(self, cookie: str) -> str | None:
        try:
            value = self._serializer.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:  # also SignatureExpired
            return None
        return value if isinstance(value, str) else None


class AccessGuard:
    """ASGI middleware: authenticate, check the role, and scope reads to the key's project."""

    def __init__(self, app: ASGIApp, *, keys: KeyRing, sessions: Sessions) -> None:
        self.app = app
        self._keys = keys
        self._sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        principal, refusal = self._admit(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        token = _current.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)

    def _admit(self, scope: Scope) -> tuple[Principal, Response | None]:
        if not self._keys:
            return OPEN, None
        path: str = scope["path"]
        method: str = scope["method"]
        need = required_role(path, method)
        if need is None:
            return OPEN, None

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        principal = self._from_headers(headers)
        dashboard = path == _DASHBOARD or path.startswith(_DASHBOARD + "/")
        if principal is None:
            logger.debug("access refused: path=%s reason=no valid key", path)
            if dashboard and method == "GET":
                target = path + (
                    "?" + scope["query_string"].decode("latin-1")
                    if scope.get("query_string")
                    else ""
                )
                return OPEN, RedirectResponse("/login?next=" + quote(target, safe=""), 303)
            return OPEN, _refusal(
                401, "a valid API key is needed: Authorization: Bearer <key>", headers, path
            )
        if not principal.can(need):
            logger.info(
                "access refused: path=%s key=%s role=%s needed=%s",
                path,
                principal.name,
                principal.role,
                need,
            )
            return OPEN, _refusal(
                403,
                f"key {principal.name!r} has role {principal.role!r}; {need!r} is needed",
                headers,
                path,
            )
        # Every read route names its project in the query (the dashboard's reader is scoped).
        if need == "read" and not dashboard and principal.project != ALL_PROJECTS:
            query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            asked = {v for k, v in query if k == "project"}
            if asked - {principal.project}:
                return OPEN, _refusal(
                    403,
                    f"project {min(asked - {principal.project})!r} may not be read with "
                    f"a key of project {principal.project!r}",
                    headers,
                    path,
                )
            if not asked:
                query.append(("project", principal.project))
                scope["query_string"] = urlencode(query).encode("latin-1")
        return principal, None

    def _from_headers(self, headers: dict[str, str]) -> Principal | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self._keys.lookup(token.strip())
        cookie = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
        if cookie:
            key_digest = self._sessions.read(cookie)
            if key_digest is not None:
                return self._keys.by_digest(key_digest)
        return None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _refusal(status: int, message: str, headers: dict[str, str], path: str) -> Response:
    extra = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if path.startswith("/v1/"):
        # OTLP clients expect a google.rpc.Status in the encoding they sent.
        code = _RPC_UNAUTHENTICATED if status == 401 else _RPC_PERMISSION_DENIED
        if headers.get("content-type", "").startswith(otlp.PROTOBUF):
            body = status_pb2.Status(code=code, message=message).SerializeToString()
            return Response(body, status, headers=extra, media_type=otlp.PROTOBUF)
        content = json.dumps({"code": code, "message": message})
        return Response(content, status, headers=extra, media_type=otlp.JSON)
    return Response(json.dumps({"detail": message}), status, headers=extra, media_type=otlp.JSON)


# --- sign-in ----------------------------------------------------------------------------------

_LOGIN_PAGE: Final = """<!doctype html>
<html><head><meta charset="utf-8"><title>agentledger: sign in</title></head>
<body style="font-family: sans-serif; max-width: 28em; margin: 4em auto">
<h1>agentledger</h1>
<p>{message}</p>
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<label>API key with role read or admin<br>
<input type="password" name="key" autocomplete="current-password" size="40" autofocus></label>
<p><button type="submit">Sign in</button></p>
</form></body></html>
"""


def _safe_next(value: str) -> str:
    # Only our own dashboard, so that the form cannot send a user to another site.
    return value if value.startswith(_DASHBOARD + "/") and "//" not in value else "/dashboard/"


def login_router(keys: KeyRing, sessions: Sessions) -> APIRouter:
    """``/login`` (a form that sets the session cookie) and ``/logout``."""
    router = APIRouter(include_in_schema=False)

    def page(message: str, next_path: str, status: int = 200) -> HTMLResponse:
        content = _LOGIN_PAGE.format(
            message=html.escape(message), next=html.escape(_safe_next(next_path))
        )
        return HTMLResponse(content, status)

    @router.get("/login")
    async def login_form(next: str = "/dashboard/") -> Response:
        return page("Sign in with an API key.", next)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        next_path = _safe_next(form.get("next", ""))
        key = form.get("key", "")
        principal = keys.lookup(key) if key else None
        if not keys:
            return RedirectResponse(next_path, 303)
        if principal is None:
            logger.info("sign-in refused: reason=unknown key")
            return page("That key is not valid.", next_path, 401)
        if not principal.can("read"):
            logger.info("sign-in refused: key=%s role=%s", principal.name, principal.role)
            return page("That key may not read; use a read or admin key.", next_path, 403)
        logger.info("signed in: key=%s project=%s", principal.name, principal.project)
        response = RedirectResponse(next_path, 303)
        response.set_cookie(
            SESSION_COOKIE,
            sessions.issue(key),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @router.api_route("/logout", methods=["GET", "POST"])
    async def logout() -> Response:
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router
