"""Who may use the console: users, sessions, login attempts, roles, CSRF (docs/console.md).

Console users are not the API's apps: an installer's password never opens the Baidu API
and an APP_ID's secret never opens the console. Passwords are hashed with Argon2id at
OWASP's recommended minimum (m=19 MiB, t=2, p=1: on a terminal a login's hash shares the
RAM with the models). Sessions are server-side rows in <data_dir>/console/console.db
(the cookie holds a random token; the file keeps only its SHA-256), ending after
`session_idle_s` unused or `session_max_s` after login; a login always starts a new
session (the id is rotated, a fixation attempt is dropped).
Failed logins are counted per remote address and per user name over a sliding window;
past either limit a login is refused without even checking the password.

Roles: "viewer" reads every page; "admin" also changes state. The middleware refuses
anything but GET/HEAD to a viewer, and every non-GET needs the session's CSRF token
(form field `csrf_token` or header X-CSRF-Token); the login form, which has no session
yet, uses a double-submit cookie instead.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from edge.config import Config
from edge.sqlite import SqliteFile

log = logging.getLogger("edge.console")

ROLES = ("admin", "viewer")
SESSION_COOKIE = "edge_session"
LOGIN_CSRF_COOKIE = "edge_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PUBLIC_PATHS = ("/console/login",)          # reachable without a session (and /console/static/)
ALWAYS_ALLOWED_WRITES = ("/console/logout",)  # a viewer may end its own session
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 10
SEEN_EVERY_S = 60.0        # a session's last use is written at most this often (flash wear), idle_s/10 if less
HASH_SLOTS = 1             # Argon2 verifications at once: each takes ARGON2["memory_cost"] KiB
# Argon2id at OWASP's recommended minimum (m=19 MiB, t=2, p=1) rather than argon2-cffi's
# default (RFC 9106's 64 MiB, t=3, p=4): on a terminal a login's hash shares the RAM
# with the models (the default added 64 MiB to the server's peak per concurrent login).
ARGON2 = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1}
NOT_LOGGED_IN, NOT_ALLOWED, TOO_MANY = 110, 6, 18   # Baidu's codes: token invalid, no permission, qps limit

HASHER = PasswordHasher(**ARGON2)         # argon2id (argon2-cffi's default type)
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))   # verified for an unknown name: same time


class UserError(ValueError):
    """A user-management request that cannot be done (its message says why)."""


@dataclass(frozen=True)
class Session:
    key: str            # sha256 of the cookie's token
    user: str
    role: str
    csrf: str
    created: float
    seen: float

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL,
                                  created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL,
                                     created REAL NOT NULL, seen REAL NOT NULL, remote TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE TABLE IF NOT EXISTS attempts (kind TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_key ON attempts(kind, key, at)
"""


def db_path(config: Config) -> Path:
    return config.path(config.data_dir) / "console" / "console.db"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UserError("a user name is 1-64 letters, digits or . _ @ -")
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise UserError("a password has at most 1024 characters")
    return password


class ConsoleDB(SqliteFile):
    """console.db: users, sessions and failed login attempts (edge.sqlite: WAL, FULL sync)."""
    REMEDY = "move console.db aside: the console starts again with a new admin (the library is not touched)"

    def __init__(self, path: Path | str):
        super().__init__(path, SCHEMA)

    # -- users ---------------------------------------------------------------------
    def users(self) -> list[tuple[str, str, float]]:
        return self._all("SELECT name, role, created FROM users ORDER BY name")

    def user_count(self) -> int:
        return self._one("SELECT COUNT(*) FROM users")

    def add_user(self, name: str, password: str, role: str) -> None:
        check_name(name), check_password(password)
        if role not in ROLES:
            raise UserError(f"a role is one of {', '.join(ROLES)}")
        digest, now = HASHER.hash(password), time.time()
        with self._write() as db:
            if db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise UserError(f"user {name} exists (change its password with `edge console user passwd`)")
            db.execute("INSERT INTO users VALUES (?,?,?,?,?)", (name, digest, role, now, now))

    def set_password(self, name: str, password: str) -> None:
        """A new password; every session of the user ends."""
        check_password(password)
        digest = HASHER.hash(password)
        with self._write() as db:
            if not db.execute("UPDATE users SET hash=?, updated=? WHERE name=?", (digest, time.time(), name)).rowcount:
                raise UserError(f"no user {name}")
            db.execute("DELETE FROM sessions WHERE user=?", (name,))

    def delete_user(self, name: str) -> None:
        with self._write() as db:
            row = db.execute("SELECT role FROM users WHERE name=?", (name,)).fetchone()
            if row is None:
                raise UserError(f"no user {name}")
            admins = db.execute("SELECT COUNT(*) FROM users WHERE role='admin'").fetchone()[0]
            if row[0] == "admin" and admins == 1:
                raise UserError(f"{name} is the last admin: add another admin first")
            db.execute("DELETE FROM users WHERE name=?", (name,))
            db.execute("DELETE FROM sessions WHERE user=?", (name,))

    def verify(self, name: str, password: str) -> str | None:
        """The user's role when the password is right, else None (same work either way)."""
        row = self._all("SELECT hash, role FROM users WHERE name=?", (name,)) if NAME_RE.match(name or "") else []
        stored = row[0][0] if row else _DUMMY_HASH
        try:
            HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if not row:
            return None
        if HASHER.check_needs_rehash(stored):   # parameters raised since it was set
            with self._write() as db:
                db.execute("UPDATE users SET hash=? WHERE name=?", (HASHER.hash(password), name))
        return row[0][1]

    # -- sessions ---------------------------------------------------------------------
    def new_session(self, name: str, remote: str, replaces: str | None = None) -> tuple[str, str]:
        """(cookie token, CSRF token) of a new session; the one it replaces ends."""
        token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time()
        with self._write() as db:
            if replaces:
                db.execute("DELETE FROM sessions WHERE key=?", (_digest(replaces),))
            db.execute("INSERT INTO sessions VALUES (?,?,?,?,?,?)", (_digest(token), name, csrf, now, now, remote))
        return token, csrf

    def session(self, token: str, idle_s: float, max_s: float, now: float | None = None) -> Session | None:
        """The live session of this cookie token, or None (ended, expired or unknown)."""
        now = time.time() if now is None else now
        key = _digest(token)
        rows = self._all("SELECT s.user, u.role, s.csrf, s.created, s.seen FROM sessions s "
                         "JOIN users u ON u.name=s.user WHERE s.key=?", (key,))
        if not rows:
            return None
        user, role, csrf, created, seen = rows[0]
        if now - seen > idle_s or now - created > max_s:
            self.end_session(token)
            return None
        if now - seen >= min(SEEN_EVERY_S, idle_s / 10):   # an idle end comes at most this early
            with self._write() as db:
                db.execute("UPDATE sessions SET seen=? WHERE key=?", (now, key))
            seen = now
        return Session(key, user, role, csrf, created, seen)

    def end_session(self, token: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE key=?", (_digest(token),))

    def prune(self, idle_s: float, max_s: float, window_s: float, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE seen < ? OR created < ?", (now - idle_s, now - max_s))
            db.execute("DELETE FROM attempts WHERE at < ?", (now - window_s,))

    # -- failed logins -------------------------------------------------------------------
    def failures(self, kind: str, key: str, since: float) -> tuple[int, float | None]:
        """(failed attempts since `since`, the oldest of them)."""
        rows = self._all("SELECT COUNT(*), MIN(at) FROM attempts WHERE kind=? AND key=? AND at>=?", (kind, key, since))
        return rows[0][0], rows[0][1]

    def record_failure(self, address: str, name: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._write() as db:
            db.executemany("INSERT INTO attempts VALUES (?,?,?)", (("address", address, now), ("user", name[:64], now)))

    def clear_failures(self, name: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM attempts WHERE kind='user' AND key=?", (name[:64],))


def ensure_admin(config: Config) -> str | None:
    """On the first start (no console user yet) create `admin` with a random password
    and return it, for the caller to print once; None when users exist."""
    db = ConsoleDB(db_path(config))
    try:
        if db.user_count():
            return None
        password = secrets.token_urlsafe(12)
        db.add_user("admin", password, "admin")
        return password
    finally:
        db.close()


class ConsoleAuth:
    """The console's view of console.db and its limits, shared by the handlers."""

    def __init__(self, config: Config):
        self.config, self.limits = config, config.console
        self.db = ConsoleDB(db_path(config))
        self.secure = bool(config.server.tls_cert)
        self._hash_slots = asyncio.Semaphore(HASH_SLOTS)
        self._pruned = 0.0

    def close(self) -> None:
        self.db.close()

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def session(self, token: str) -> Session | None:
        lim = self.limits
        if time.monotonic() - self._pruned > 600:
            self._pruned = time.monotonic()
            await self.run(self.db.prune, lim.session_idle_s, lim.session_max_s, lim.attempt_window_s)
        return await self.run(self.db.session, token, lim.session_idle_s, lim.session_max_s)

    def blocked(self, address: str, name: str) -> float | None:
        """Seconds until a login from this address for this name may be tried again, or None."""
        lim, now = self.limits, time.time()
        since = now - lim.attempt_window_s
        waits = []
        for kind, key, limit in (("address", address, lim.attempts_per_address),
                                 ("user", name[:64], lim.attempts_per_user)):
            count, oldest = self.db.failures(kind, key, since)
            if count >= limit:
                waits.append(oldest + lim.attempt_window_s - now)
        return max(1.0, max(waits)) if waits else None

    async def login(self, address: str, name: str, password: str) -> tuple[str | None, float | None]:
        """(role, None) on success; (None, None) for a wrong name or password; (None, wait_s)
        when the attempt limit refuses it unchecked."""
        wait = await self.run(self.blocked, address, name)
        if wait is not None:
            log.warning("console: login for %r from %s refused: too many failed attempts", name[:64], address)
            return None, wait
        async with self._hash_slots:
            role = await self.run(self.db.verify, name, password)
        if role is None:
            await self.run(self.db.record_failure, address, name)
            log.warning("console: failed login for %r from %s", name[:64], address)
        else:
            await self.run(self.db.clear_failures, name)
            log.info("console: %s logged in from %s", name, address)
        return role, None

    def set_cookie(self, response: web.StreamResponse, name: str, value: str, path: str, max_age: float) -> None:
        response.set_cookie(name, value, path=path, max_age=int(max_age), httponly=True, samesite="Strict",
                            secure=self.secure)


AUTH_KEY = web.AppKey("console_auth", ConsoleAuth)


# -- errors, the same shape as the API's ----------------------------------------------------
def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/console/api/") or "application/json" in request.headers.get("Accept", "")


def error_response(request: web.Request, status: int, code: int, message: str) -> web.Response:
    """A Baidu-style error: JSON under /console/api/ (or when asked for), else a small page."""
    if wants_json(request):
        return web.json_response({"error_code": code, "error_msg": message}, status=status)
    from edge.console.render import render
    return render(request, "error.html", status=status, error_code=code, error_msg=message)


def not_logged_in(request: web.Request) -> web.Response:
    if wants_json(request) or request.method not in SAFE_METHODS:
        return error_response(request, 401, NOT_LOGGED_IN, "not logged in, or the session has ended")
    from urllib.parse import quote
    return web.Response(status=303, headers={"Location": "/console/login?next=" + quote(request.path_qs, safe="")})


def forbidden(request: web.Request, message: str) -> web.Response:
    return error_response(request, 403, NOT_ALLOWED, message)


def require(role: str):
    """Handler decorator: "viewer" (any logged-in user) or "admin"."""
    if role not in ROLES:
        raise ValueError(role)

    def wrap(handler):
        @functools.wraps(handler)
        async def guarded(request: web.Request):
            session: Session | None = request.get("user")
            if session is None:
                return not_logged_in(request)
            if role == "admin" and not session.is_admin:
                return forbidden(request, "this needs the admin role (you are a viewer)")
            return await handler(request)
        guarded.required_role = role
        return guarded
    return wrap


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith("/console/static/")


async def _sent_csrf(request: web.Request) -> str:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()          # cached: the handler reads the same form
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent or ""


@web.middleware
async def middleware(request: web.Request, handler):
    """Sets request["user"] (a Session or None); refuses, before any handler runs, a
    missing session, a viewer's write and a write without the right CSRF token."""
    auth = request.app[AUTH_KEY]
    request["user"] = None
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        request["user"] = await auth.session(token)
    session: Session | None = request["user"]
    write = request.method not in SAFE_METHODS
    if _public(request.path):
        if write:  # the login form: a double-submit cookie (no session yet)
            cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
            if not cookie or not hmac.compare_digest(cookie, await _sent_csrf(request)):
                return forbidden(request, "the login form is out of date or was not sent by this page "
                                          "(CSRF token missing or wrong): reload the page")
        return await handler(request)
    if session is None:
        return not_logged_in(request)
    if write:  # the role first: a viewer's upload is refused before its body is read
        if not session.is_admin and request.path not in ALWAYS_ALLOWED_WRITES:
            return forbidden(request, "this needs the admin role (you are a viewer)")
        if not hmac.compare_digest(session.csrf, await _sent_csrf(request)):
            return forbidden(request, "CSRF token missing or wrong: reload the page and try again")
    return await handler(request)
