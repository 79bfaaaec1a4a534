"""The web console: live view, kiosk page, events, enrolment, library and status, for
the installer at the gate, the admin and the viewer (docs/console.md).

Served by the HTTP server of `edge serve` (a hub: library, terminals, status) and of
`edge run` (a terminal: the same plus its cameras' live view, kiosk page and events),
mounted at /console. Pages are rendered on the server (Jinja2) with a little committed
JavaScript: no build step and no CDN, terminals are offline. The console reads and
writes through the interfaces the API uses (the runtime's libraries, the loop's status,
the event bus), never around them.
"""
