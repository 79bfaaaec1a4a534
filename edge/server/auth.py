"""Who is calling: Baidu's two ways to authenticate, checked without any stored state.

* ``access_token`` (query string, or a v2 form field): issued by /oauth/2.0/token and
  shaped like Baidu's, ``24.<mac>.<expires_in>.<expiry>.<nonce>-<APP_ID>``.  The mac is
  an HMAC of the rest keyed by the app's secret key, so a token survives a restart,
  needs no database and stops working the moment the secret is rotated.  Unknown or
  forged -> 110, past its expiry -> 111, absent -> 100 (the docs' codes).
* ``Authorization: bce-auth-v1/<api_key>/<timestamp>/<expire>/<signed headers>/<sig>``:
  what the official SDK sends when the token answer lacks ``brain_all_scope``.  The
  signature is recomputed from the request (method, path, sorted query, the signed
  headers, which must include host) and compared in constant time; the timestamp must
  lie within its own expiry window (and not too far in the future).  Any failure -> 14.

Secrets are only ever used as HMAC keys or compared with ``hmac.compare_digest``; no
function here logs or returns one.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from typing import Iterable, Mapping
from urllib.parse import quote, urlencode

from edge.config import AppConfig
from edge.errors import EdgeError

NO_TOKEN, BAD_TOKEN, EXPIRED_TOKEN, BAD_SIGNATURE = 100, 110, 111, 14
SCOPE = ("public brain_all_scope vis-faceverify_faceverify vis-faceverify_FACE_V3 "
         "vis-faceverify_FACE_Police")
TOKEN_RE = re.compile(r"^24\.([0-9a-f]{32})\.(\d{1,10})\.(\d{1,12})\.(\d{1,12})-([A-Za-z0-9_]{1,64})$")
BCE_RE = re.compile(r"^bce-auth-v1/([^/]+)/([^/]+)/(\d{1,6})/([^/]*)/([0-9a-f]{64})$")
BCE_MAX_EXPIRE_S = 86400


def _mac(app: AppConfig, kind: str, *fields) -> str:
    msg = "|".join(("edge", kind, app.app_id, app.api_key, *map(str, fields)))
    return hmac.new(app.secret_key.encode(), msg.encode(), hashlib.sha256).hexdigest()[:32]


def issue_token(app: AppConfig, now: float, ttl_s: int) -> dict:
    """The /oauth/2.0/token answer for an app whose credentials were checked."""
    expiry, nonce = int(now) + ttl_s, secrets.randbelow(10**6)
    token = f"24.{_mac(app, 'access', ttl_s, expiry, nonce)}.{ttl_s}.{expiry}.{nonce}-{app.app_id}"
    refresh = f"25.{_mac(app, 'refresh', 10 * ttl_s, expiry, nonce)}.{10 * ttl_s}.{expiry}.{nonce}-{app.app_id}"
    return {"refresh_token": refresh, "expires_in": ttl_s, "scope": SCOPE,
            "session_key": secrets.token_hex(16), "access_token": token,
            "session_secret": secrets.token_hex(16)}


def check_credentials(apps_by_key: Mapping[str, AppConfig], api_key: str, secret_key: str) -> AppConfig | None:
    """The app whose api_key/secret_key these are, or None; the secret comparison
    takes the same time whatever the secret's first wrong character."""
    app = apps_by_key.get(api_key)
    # compare against a dummy when the key is unknown, so both paths cost the same
    expected = app.secret_key if app else "\0" * 32
    ok = hmac.compare_digest(expected.encode(), secret_key.encode())
    return app if (app and ok) else None


def check_token(token: str | None, apps_by_id: Mapping[str, AppConfig | tuple], now: float) -> AppConfig:
    """The credential a token was issued to. apps_by_id maps an APP_ID to its AppConfig
    or to all its credentials (the app's key and its feed keys, docs/sync.md)."""
    if not token:
        raise EdgeError(NO_TOKEN, "no access_token")
    m = TOKEN_RE.match(token)
    creds = apps_by_id.get(m.group(5)) if m else None
    if not creds:
        raise EdgeError(BAD_TOKEN, "unknown access_token")
    mac, ttl, expiry, nonce = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
    app = None
    for cred in creds if isinstance(creds, tuple) else (creds,):
        if hmac.compare_digest(mac, _mac(cred, "access", ttl, expiry, nonce)):
            app = cred
    if app is None:
        raise EdgeError(BAD_TOKEN, "forged access_token")
    if now >= expiry:
        raise EdgeError(EXPIRED_TOKEN, "access_token expired")
    return app


def _canonical_queries(query: Iterable[tuple[str, str]]) -> set[str]:
    """Both spellings of the canonical query: the official SDK's (urlencode, sorted
    pairs) and the BCE specification's (RFC 3986 escaping); either may sign."""
    pairs = [(k, v) for k, v in query if k.lower() != "authorization"]
    sdk = "&".join(sorted(urlencode(pairs).split("&"))) if pairs else ""
    spec = "&".join(sorted(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs))
    return {sdk, spec}


def sign_bce(api_key: str, secret_key: str, *, method: str, path: str, query: Iterable[tuple[str, str]],
             host: str, now: float, expire_s: int = 1800) -> str:
    """The Authorization header bce-auth-v1 for a request signing only `host` (what a
    follower sends the hub; verify_bce is its inverse)."""
    stamp = dt.datetime.fromtimestamp(int(now), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    prefix = f"bce-auth-v1/{api_key}/{stamp}/{expire_s}"
    signing_key = hmac.new(secret_key.encode(), prefix.encode(), hashlib.sha256).hexdigest()
    pairs = list(query)
    canonical_query = "&".join(sorted(urlencode(pairs).split("&"))) if pairs else ""
    request = f"{method.upper()}\n{quote(path)}\n{canonical_query}\nhost:{quote(host.strip(), '')}"
    signature = hmac.new(signing_key.encode(), request.encode(), hashlib.sha256).hexdigest()
    return f"{prefix}/host/{signature}"


def verify_bce(authorization: str, *, method: str, path: str, query: Iterable[tuple[str, str]],
               headers: Mapping[str, str], apps_by_key: Mapping[str, AppConfig], now: float,
               clock_skew_s: int) -> AppConfig:
    """The app that signed this request with bce-auth-v1, or EdgeError 14."""
    m = BCE_RE.match(authorization.strip())
    if not m:
        raise EdgeError(BAD_SIGNATURE, "malformed bce-auth-v1 authorization")
    api_key, stamp, expire, signed, signature = m.groups()
    app = apps_by_key.get(api_key)
    if app is None:
        raise EdgeError(BAD_SIGNATURE, "unknown access key")
    try:
        t = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        raise EdgeError(BAD_SIGNATURE, "malformed timestamp") from None
    expire_s = int(expire)
    if not 0 < expire_s <= BCE_MAX_EXPIRE_S or now > t + expire_s or now < t - clock_skew_s:
        raise EdgeError(BAD_SIGNATURE, "signature outside its time window")
    names = [h.strip().lower() for h in signed.split(";") if h.strip()]
    lower = {k.lower(): v for k, v in headers.items()}
    if "host" not in names or any(n not in lower for n in names):
        raise EdgeError(BAD_SIGNATURE, "signed headers must include host and be present")
    canonical_headers = "\n".join(sorted(
        f"{quote(n, '')}:{quote(lower[n].strip(), '')}" for n in names))
    signing_key = hmac.new(app.secret_key.encode(), f"bce-auth-v1/{api_key}/{stamp}/{expire}".encode(),
                           hashlib.sha256).hexdigest()
    ok = False
    for canonical_query in _canonical_queries(query):
        request = f"{method.upper()}\n{quote(path)}\n{canonical_query}\n{canonical_headers}"
        expected = hmac.new(signing_key.encode(), request.encode(), hashlib.sha256).hexdigest()
        ok |= hmac.compare_digest(expected, signature)
    if not ok:
        raise EdgeError(BAD_SIGNATURE, "signature does not match")
    return app
