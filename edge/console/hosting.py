"""`edge run` hosting the HTTP server: the Baidu API and the console, in the loop's process.

The server runs on a thread of its own with its own asyncio loop, so the processing
threads never wait for it, and the console sees the loop's live frames, status and
events directly. The door matters more than the page: a port already taken is one
warning and the loop runs on without a console. SIGTERM stays the Runner's: it stops
the loop, then this (open WebSockets are closed, in-flight requests finish).
"""
from __future__ import annotations

import asyncio
import logging
import threading

from edge.console.context import ConsoleContext
from edge.console.live import LiveHub

log = logging.getLogger("edge.console")

START_TIMEOUT_S = 30.0


class ConsoleHost:
    def __init__(self, runner):
        self.runner = runner
        self.url: str | None = None
        self.error: Exception | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="edge-console", daemon=True)
        self.service = None

    def start(self) -> bool:
        """Listening (True), or the reason it is not in `error` (False)."""
        self._thread.start()
        self._ready.wait(START_TIMEOUT_S)
        return self.url is not None

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        if self.runner.live is not None:
            self.runner.live.close()

    def context(self, service) -> ConsoleContext:
        r = self.runner
        return ConsoleContext(config=r.config, runtime=service.runtime, role="terminal", service=service,
                              live=r.live, status=lambda: r.last_snapshot, events=getattr(r, "event_feed", None))

    def app(self, service):
        from edge.server.app import make_app
        return make_app(service, console=self.context(service) if self.runner.config.console.enabled else None)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as exc:  # noqa: BLE001 - the console must never take the loop down
            self.error = self.error or exc
            log.exception("edge run: the console stopped")
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        from edge.server.app import FaceService, start_site
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self.service = service = FaceService(self.runner.config)
        try:
            runner, self.url = await start_site(service, self.app(service))
        except OSError as exc:
            self.error = exc
            service.close()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await self._loop.run_in_executor(None, service.close)


def start_console(runner) -> ConsoleHost | None:
    """The API and console of this `edge run` (run.serve), the address printed; None
    (warned) when it cannot listen."""
    cfg = runner.config
    runner.live = LiveHub(list(runner.pipelines), redecide={n: p.redecide for n, p in runner.pipelines.items()})
    host = ConsoleHost(runner)
    if not host.start():
        runner.live = None
        log.warning("edge run: no console or API: cannot serve on %s:%s (%s); the loop runs on without them "
                    "(set server.port, or run.serve: false)", cfg.server.host, cfg.server.port, host.error)
        return None
    from edge.console.app import refusal
    from edge.server.app import announce_console
    if cfg.console.enabled and not refusal(cfg):
        say(f"edge run: console on {host.url}/console/ (live view, kiosk, enrolment); API on {host.url}")
        password = announce_console(cfg, host.url)
        if password:
            print(f"edge run: first start: console user admin, password {password} (shown once)", flush=True)
    else:
        say(f"edge run: API on {host.url}" + (f"; {refusal(cfg)}" if cfg.console.enabled else ""))
    return host


def say(text: str) -> None:
    """A line an installer must see: stdout (the first run's terminal) and the log (journald)."""
    print(text, flush=True)
    log.info("%s", text)
