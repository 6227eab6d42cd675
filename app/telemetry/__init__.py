"""Sensor telemetry: readings from gateways (HTTP and MQTT), integrated saturation, sensor
alarms for the four-colour code, hourly roll-ups and a dead-letter store for MQTT messages.

Integration (the "what counts as adsorbed" decisions, also in :mod:`app.telemetry.integration`):
each reading holds until the next reading of the box (zero-order hold), for at most
``TELEMETRY_MAX_INTERVAL_S`` (default 600 s); the rest of a longer gap counts as no adsorption
(the silence rules flag long gaps). A stopped fan (``running=false``) adsorbs nothing; a negative
difference (outlet above inlet) counts as zero. The sum is over the readings of the current fill
only, so a replacement starts from zero. Because each reading's contribution depends only on its
successor, a late reading changes exactly two terms and ingest never re-reads a box's history.
"""

from typing import Any

# Defaults for the telemetry settings (override in the Flask config).
DEFAULTS: dict[str, Any] = {  # numbers and strings: each read as its setting's type
    "TELEMETRY_MAX_INTERVAL_S": 600,  # a reading holds for at most this long (gap handling)
    "TELEMETRY_MAX_BATCH": 5000,  # readings per HTTP request or MQTT message; more → 413
    "TELEMETRY_MAX_BODY_BYTES": 8 * 1024 * 1024,
    "TELEMETRY_MAX_FUTURE_S": 300,  # readings further ahead of the server clock are rejected
    "TELEMETRY_MQTT_TOPIC": "tanxiang/readings/#",
    "TELEMETRY_MQTT_CLIENT_ID": "tanxiang-ingest",
}


def setting(config, name: str):
    return config.get(name, DEFAULTS[name])
