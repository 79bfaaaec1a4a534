"""The pusher thread of a terminal: send the upstream outbox to the hub, oldest first
(docs/sync.md, "Up").

Each batch is one signed POST; the hub applies its operations in order and answers per
op_id. Applied (or already applied: a retry after a lost answer) -> done; refused by
the hub (stale, unknown user or group, another model, no permission for an op) -> the
dead-letter table, reported (status, metrics, a WARNING), never retried by itself.
No answer, an unsigned or unreadable answer, a refused request (a feed-only key: 6) ->
nothing is marked, retried with back-off: an operation leaves the queue only on the
hub's signed word.
"""
from __future__ import annotations

import json
import logging
import threading

from edge.sync.feed import FeedClient, HubRefused, HubUnreachable
from edge.sync.protocol import signature_ok
from edge.sync.status import SyncStatus
from edge.sync.upstream import UpstreamOutbox

log = logging.getLogger("edge.sync")

PUSH_BATCH = 20
IDLE_POLL_S = 0.5    # another process (`edge enroll`) may queue beside this one


class AnswerRefused(Exception):
    """The hub's answer to a push is not one to act on (unsigned, malformed)."""


def _results(body: bytes, op_ids: list[str]) -> list[dict]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise AnswerRefused("push answer is not JSON") from None
    if not isinstance(data, dict) or data.get("error_code") != 0 or not isinstance(data.get("result"), dict):
        raise AnswerRefused(f"push answer error_code {str(data.get('error_code') if isinstance(data, dict) else '')}")
    results = data["result"].get("results")
    if not isinstance(results, list) or [r.get("op_id") if isinstance(r, dict) else None for r in results] != op_ids:
        raise AnswerRefused("push answer does not list the operations sent, in order")
    if any(type(r.get("error_code")) is not int for r in results):
        raise AnswerRefused("push answer without an error_code per operation")
    return results


class Pusher:
    def __init__(self, client: FeedClient, outbox: UpstreamOutbox, status: SyncStatus, secret_key: str,
                 wake: threading.Event, stop: threading.Event, backoff_min_s: float, backoff_max_s: float):
        self.client, self.outbox, self.st, self.secret_key = client, outbox, status, secret_key
        self._wake, self._stop = wake, stop
        self._backoff = (backoff_min_s, backoff_max_s)
        self._last_error: str | None = None
        status.upstream_enabled = True
        self.refresh()

    def refresh(self) -> None:
        """The status's upstream fields, from the outbox file (they survive a restart)."""
        st, stats = self.st, self.outbox.stats()
        st.upstream_queued, st.upstream_refused = stats.pending, stats.dead
        st.upstream_oldest_at = self.outbox.oldest_pending()
        dead = self.outbox.dead_letters(1)
        if dead:
            st.upstream_last_refusal, st.upstream_last_refusal_at = dead[0].error, dead[0].failed

    def step(self) -> str:
        """Send one batch: "sent", "idle" (nothing queued) or "failed" (retry later)."""
        items = self.outbox.claim(PUSH_BATCH)
        if not items:
            self.refresh()
            return "idle"
        ops = [json.loads(item.body) for item in items]
        body = json.dumps({"origin": self.outbox.origin, "ops": ops}, separators=(",", ":")).encode()
        try:
            fetched = self.client.push(body)
            if not signature_ok(self.secret_key, fetched.nonce, fetched.body, fetched.signature):
                raise AnswerRefused("push answer signature missing or wrong: not from a hub holding this secret")
            results = _results(fetched.body, [op["op_id"] for op in ops])
        except (HubUnreachable, HubRefused, AnswerRefused) as exc:
            return self._failed(f"push: {exc}")
        done = []
        for item, op, res in zip(items, ops, results):
            if res["error_code"] == 0:
                done.append(item.id)
                continue
            error = f"{res['error_code']} {res.get('error_msg', '')}: {str(res.get('detail', ''))[:300]}"
            self.outbox.dead(item.id, error)
            log.warning("sync %s: the hub refused %s of %s (op %s): %s", self.st.app_id, op["action"],
                        op["user_id"], op["op_id"], error)
        self.outbox.done(done)
        self.st.upstream_sent += len(done)
        if self._last_error is not None:
            log.info("sync %s: pushing to the hub again", self.st.app_id)
            self._last_error = self.st.upstream_last_error = None
        self.refresh()
        return "sent"

    def _failed(self, message: str) -> str:
        if message != self._last_error:
            log.warning("sync %s: %s (%d operation(s) wait)", self.st.app_id, message, self.outbox.pending_count())
        self._last_error = self.st.upstream_last_error = message[:500]
        self.refresh()
        return "failed"

    def run(self) -> None:
        backoff = self._backoff[0]
        while not self._stop.is_set():
            try:
                outcome = self.step()
            except Exception as exc:  # noqa: BLE001 - the pusher must outlive a bug; it is reported
                log.exception("sync %s: pusher: unexpected error", self.st.app_id)
                outcome = self._failed(f"internal error: {exc!r}"[:300])
            if outcome == "failed":
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._backoff[1])
                continue
            backoff = self._backoff[0]
            if outcome == "idle":
                self._wake.wait(IDLE_POLL_S)
                self._wake.clear()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="edge-sync-push", daemon=True)
        thread.start()
        return thread
