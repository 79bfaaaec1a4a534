"""The `mqtt:` section: events and camera state to an MQTT broker (docs/mqtt.md).

Kept apart from edge/events/mqtt.py, and outside edge/events/, so that loading a config
imports neither paho nor the events package (3 MB at every start, issue 15's memory
bound: tests/test_memory.py).
"""
from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field

PROTOCOLS = ("5", "3.1.1")
# a topic level may not hold MQTT's wildcards or separators; Home Assistant's ids are narrower still
_TOPIC_BAD = re.compile(r"[+#\x00]")
_ID_BAD = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class MqttConfig:
    """Off while host is empty. Credentials may come from $EDGE_MQTT_USERNAME and
    $EDGE_MQTT_PASSWORD instead of the file (edge/config.py)."""
    host: str = ""                    # the broker ("" = MQTT off)
    port: int = 0                     # 0: 1883, or 8883 with tls
    node_id: str = ""                 # this terminal's name in topics ("" = the host name)
    prefix: str = ""                  # topic prefix ("" = edge/<node_id>)
    client_id: str = ""               # "" = edge-<node_id>
    protocol: str = "5"               # "5" or "3.1.1"
    username: str = ""
    password: str = field(default="", repr=False)
    tls: bool = False                 # TLS to the broker (on by itself when ca_file or cert_file is set)
    ca_file: str = ""                 # PEM CA bundle ("" = the system's)
    cert_file: str = ""               # client certificate (PEM), with key_file
    key_file: str = ""
    keepalive_s: int = 30             # the broker declares us gone (last will) after 1.5x this silent
    reconnect_min_s: float = 1.0      # paho's reconnect back-off, doubled up to reconnect_max_s
    reconnect_max_s: float = 30.0
    max_rows: int = 50_000            # the outbox's bound (edge/events/outbox.py)
    flush_timeout_s: float = 5.0      # at stop, keep delivering this long; the rest waits in the outbox
    discovery: bool = False           # Home Assistant discovery messages
    discovery_prefix: str = "homeassistant"

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def use_tls(self) -> bool:
        return self.tls or bool(self.ca_file or self.cert_file)

    @property
    def broker_port(self) -> int:
        return self.port or (8883 if self.use_tls else 1883)

    @property
    def node(self) -> str:
        """node_id, or the host name's first label, made safe for topics and HA ids."""
        raw = self.node_id or socket.gethostname().split(".")[0] or "edge"
        return _ID_BAD.sub("_", raw)

    @property
    def topic_prefix(self) -> str:
        return (self.prefix or f"edge/{self.node}").rstrip("/")


def validate_mqtt(mqtt: MqttConfig, error) -> None:
    """Raise error(message) for an unusable `mqtt:` section (only when it is enabled)."""
    if not mqtt.enabled:
        return
    if "/" in mqtt.host or any(c.isspace() for c in mqtt.host):
        raise error("mqtt.host: a host name or address, without scheme or port (mqtt.port)")
    if not 0 <= mqtt.port <= 65535:
        raise error("mqtt.port: must be between 0 and 65535")
    if mqtt.protocol not in PROTOCOLS:
        raise error(f"mqtt.protocol: one of {', '.join(PROTOCOLS)}")
    for key in ("prefix", "discovery_prefix"):
        value = getattr(mqtt, key)
        if _TOPIC_BAD.search(value) or value.startswith("/") or "//" in value or value.startswith("$"):
            raise error(f"mqtt.{key}: a topic without wildcards (+ #), empty levels or a leading / or $")
    if mqtt.node_id and _ID_BAD.search(mqtt.node_id):
        raise error("mqtt.node_id: letters, digits, _ and - only")
    if bool(mqtt.cert_file) != bool(mqtt.key_file):
        raise error("mqtt: set both cert_file and key_file, or neither")
    if mqtt.password and not mqtt.username:
        raise error("mqtt.password: needs mqtt.username (or $EDGE_MQTT_USERNAME)")
    if not 5 <= mqtt.keepalive_s <= 3600:
        raise error("mqtt.keepalive_s: must be between 5 and 3600")
    if mqtt.reconnect_min_s <= 0 or mqtt.reconnect_max_s < mqtt.reconnect_min_s:
        raise error("mqtt: reconnect_min_s positive, reconnect_max_s >= reconnect_min_s")
    if mqtt.max_rows < 1 or mqtt.flush_timeout_s < 0:
        raise error("mqtt: max_rows positive, flush_timeout_s >= 0")
