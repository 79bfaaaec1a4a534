"""Events of the capture loop and where they go: log, webhook (durable outbox), door
relay, attendance. The loop builds an Event per decision and publishes it on an EventBus."""
from edge.events.attendance import AttendanceSink, AttendanceStore
from edge.events.bus import EventBus, Published
from edge.events.event import Event
from edge.events.outbox import Outbox
from edge.events.sinks import (CommandRelay, DoorSide, GpiozeroRelay, LogSink, RelayDecision, RelayDriver, RelayError,
                               RelaySink, Sink, WebhookSink)

__all__ = ["AttendanceSink", "AttendanceStore", "CommandRelay", "DoorSide", "EventBus", "Event", "GpiozeroRelay",
           "LogSink", "Outbox", "Published", "RelayDecision", "RelayDriver", "RelayError", "RelaySink", "Sink",
           "WebhookSink"]
