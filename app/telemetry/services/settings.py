"""The telemetry settings a service call is given (from the Flask config, or the defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from app.telemetry import DEFAULTS


@dataclass(frozen=True)
class Settings:
    max_interval_s: float = DEFAULTS["TELEMETRY_MAX_INTERVAL_S"]
    max_batch: int = DEFAULTS["TELEMETRY_MAX_BATCH"]
    max_future_s: float = DEFAULTS["TELEMETRY_MAX_FUTURE_S"]

    @classmethod
    def from_config(cls, config) -> Settings:
        return cls(
            max_interval_s=float(config.get("TELEMETRY_MAX_INTERVAL_S", cls.max_interval_s)),
            max_batch=int(config.get("TELEMETRY_MAX_BATCH", cls.max_batch)),
            max_future_s=float(config.get("TELEMETRY_MAX_FUTURE_S", cls.max_future_s)),
        )
