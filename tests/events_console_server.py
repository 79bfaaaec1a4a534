"""A real console server process for the events stream test (tests/test_console_events.py).

    python tests/events_console_server.py CONFIG

Serves make_app(service, console=...) as a terminal does, its ConsoleContext.events an
EventFeed over an EventHistory in <data_dir>/run/events.db, and prints "url <URL>" and
"password <admin password>". Each JSON line on stdin is an Event, published to the feed
and history from a thread of its own (as a camera's processing thread does); it prints
"published <stream id>" after. Ends at EOF or SIGTERM.
"""
from __future__ import annotations

import asyncio
import signal
import sys
import threading

from aiohttp import web

from edge.config import load_config
from edge.console.auth import ensure_admin
from edge.console.context import ConsoleContext
from edge.events.bus import EventBus
from edge.events.event import Event
from edge.events.history import HistorySink
from edge.loop.runner import event_feed
from edge.server.app import FaceService, make_app


async def main(config_path: str) -> None:
    config = load_config(config_path)
    feed = event_feed(config)
    bus = EventBus([HistorySink(feed.history), feed])
    service = FaceService(config)
    ctx = ConsoleContext(config, service.runtime, role="terminal", service=service, events=feed)
    runner = web.AppRunner(make_app(service, console=ctx), handle_signals=False, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"password {ensure_admin(config)}", flush=True)
    print(f"url http://{host}:{port}", flush=True)
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def publish():      # the loop's side: another thread than the server's
        for line in sys.stdin:
            bus.publish(Event.from_json(line))
            print(f"published {feed.stream_id(feed._seq)}", flush=True)
        loop.call_soon_threadsafe(stop.set)
    threading.Thread(target=publish, daemon=True).start()
    await stop.wait()
    await runner.cleanup()
    bus.close()
    service.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
