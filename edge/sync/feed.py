"""The follower's HTTP client for a hub's change feed: signed requests, bounded reads.

Requests are signed with bce-auth-v1 (the secret never crosses the wire, TLS or not);
a fresh nonce per request lets the follower check the page's signature (protocol.py).
Nothing here judges a page: apply.py does, before anything is touched.
"""
from __future__ import annotations

import json
import secrets
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from edge.server.auth import sign_bce
from edge.sync.config import SyncConfig
from edge.sync.protocol import FEED_PATH, PAGE_MAX_BYTES, SIGNATURE_HEADER, SNAPSHOT_PATH, sign_page
from edge.sync.push import PUSH_PATH, PUSH_SIGNATURE_HEADER

# A page body may exceed PAGE_MAX_BYTES by its last change and its header; more is refused unread.
MAX_BODY_BYTES = 2 * PAGE_MAX_BYTES + 64 * 1024


class HubUnreachable(Exception):
    """No answer from the hub (refused, reset, timed out, DNS, TLS handshake)."""


class HubRefused(Exception):
    """The hub answered, with an error (bad credentials: 14/110/111/6, a busy library...)."""


@dataclass(frozen=True)
class Fetched:
    body: bytes
    signature: str | None
    nonce: str


def tls_context(sync: SyncConfig, ca_file: Path | None) -> ssl.SSLContext | None:
    if not sync.hub_url.startswith("https:"):
        return None
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not sync.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class FeedClient:
    def __init__(self, sync: SyncConfig, ca_file: Path | None = None):
        self.sync = sync
        self._base = sync.hub_url.rstrip("/")
        self._host = urllib.parse.urlsplit(self._base).netloc
        self._ctx = tls_context(sync, ca_file)

    def fetch(self, since: int, wait_s: float) -> Fetched:
        """A feed page from `since`, held by the hub up to wait_s when there is no news."""
        return self._get(FEED_PATH, [("since", str(since)), ("wait", f"{wait_s:g}")], wait_s + self.sync.timeout_s)

    def fetch_snapshot(self, phase: str, after: int) -> Fetched:
        """A snapshot page: rows of `phase` (groups, members, faces) after rowid `after`."""
        return self._get(SNAPSHOT_PATH, [("after", str(after)), ("phase", phase)], self.sync.timeout_s)

    def push(self, body: bytes) -> Fetched:
        """POST a batch of upstream operations; the body is signed beside bce-auth-v1
        (which signs no body), the answer is checked by the pusher (edge/sync/pusher.py)."""
        s = self.sync
        nonce = secrets.token_hex(16)
        params = sorted([("app_id", s.app_id), ("nonce", nonce)])
        auth = sign_bce(s.api_key, s.secret_key, method="POST", path=PUSH_PATH, query=params, host=self._host,
                        now=time.time())
        request = urllib.request.Request(
            f"{self._base}{PUSH_PATH}?{urllib.parse.urlencode(params)}", data=body, method="POST",
            headers={"Authorization": auth, "Accept": "application/json", "Content-Type": "application/json",
                     PUSH_SIGNATURE_HEADER: sign_page(s.secret_key, nonce, body)})
        return self._send(request, nonce, s.timeout_s)

    def _get(self, path: str, extra: list, timeout: float) -> Fetched:
        s = self.sync
        nonce = secrets.token_hex(16)
        params = sorted([("app_id", s.app_id), ("limit", str(s.limit)), ("nonce", nonce), *extra])
        if s.group_list:
            params.append(("groups", ",".join(s.group_list)))
        auth = sign_bce(s.api_key, s.secret_key, method="GET", path=path, query=params, host=self._host,
                        now=time.time())
        request = urllib.request.Request(f"{self._base}{path}?{urllib.parse.urlencode(params)}",
                                         headers={"Authorization": auth, "Accept": "application/json"})
        return self._send(request, nonce, timeout)

    def _send(self, request, nonce: str, timeout: float) -> Fetched:
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._ctx) as resp:
                body = resp.read(MAX_BODY_BYTES + 1)
                signature = resp.headers.get(SIGNATURE_HEADER)
        except urllib.error.HTTPError as exc:
            raise HubRefused(f"HTTP {exc.code} from the hub") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:  # ValueError: http.client's bad status lines
            reason = getattr(exc, "reason", exc)
            raise HubUnreachable(f"{type(reason).__name__}: {reason}"[:200]) from None
        if len(body) > MAX_BODY_BYTES:
            raise HubRefused(f"page over {MAX_BODY_BYTES} bytes: not read")
        if signature is None:
            error = _error_of(body)
            if error:
                raise HubRefused(error)
        return Fetched(body, signature, nonce)


def _error_of(body: bytes) -> str | None:
    """'error_code N: msg' when the body is a Baidu-style error answer."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("error_code"):
        return f"hub answered error_code {data.get('error_code')}: {str(data.get('error_msg'))[:100]}"
    return None
