"""Throttling of failed sign-ins (``POST /api/v1/auth/token`` and the ``/login`` page), with Flask-Limiter.

Only failures count, per account (the username, without case) and per address (the client's,
``request.remote_addr``: behind a reverse proxy set ``PROXY_FIX_X_FOR=1`` so that it is the
client's, see README "Operations"). Once either budget is spent, sign-ins for that account or from
that address are refused with 429 and ``Retry-After`` until the window has moved on, even with the
right password: otherwise guessing would only need to wait for a success.

The counters live in Flask-Limiter's storage, ``RATELIMIT_STORAGE_URI``: ``memory://`` (one
process; the default, for development and tests) or, in production with several gunicorn workers
or hosts, Redis (``redis://127.0.0.1:6379``), so that every worker counts the same failures.
``RATELIMIT_KEY_PREFIX`` keeps installations that share one Redis apart. The limits are ``LOGIN_FAILURES_PER_ACCOUNT`` and ``LOGIN_FAILURES_PER_ADDRESS`` (``limits``
notation, e.g. ``10 per 15 minutes``). A storage that fails does not lock everyone out: the
failure is logged and the sign-in goes on unthrottled.

The limiter belongs to the app (``app.extensions[EXTENSION_KEY]``), never to the process.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse

EXTENSION_KEY = "tanxiang.limiter"


@dataclass(frozen=True)
class Throttled:
    retry_after: int  # seconds

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))


def init_app(app: Flask) -> Limiter:
    # auto_check=False: no limit on any route; this module asks the limiter itself, for failures only.
    limiter = Limiter(
        get_remote_address, app=app, auto_check=False, storage_uri=app.config.get("RATELIMIT_STORAGE_URI", "memory://")
    )
    app.extensions[EXTENSION_KEY] = limiter
    return limiter


def _budgets(username: str) -> list[tuple[RateLimitItem, str]]:
    config = current_app.config
    address = get_remote_address() or "unknown"
    # RATELIMIT_KEY_PREFIX separates installations (or test runs) that share one Redis.
    prefix = config.get("RATELIMIT_KEY_PREFIX") or ""
    return [
        (
            parse(config.get("LOGIN_FAILURES_PER_ACCOUNT", "10 per 15 minutes")),
            prefix + "account:" + username.strip().casefold(),
        ),
        (parse(config.get("LOGIN_FAILURES_PER_ADDRESS", "30 per 15 minutes")), prefix + "address:" + address),
    ]


def _strategy():
    return current_app.extensions[EXTENSION_KEY].limiter


def check(username: str) -> Throttled | None:
    """None when a sign-in may be tried; else how long to wait."""
    try:
        strategy = _strategy()
        waits = []
        for item, key in _budgets(username):
            if not strategy.test(item, "login-failures", key):
                reset_at, _remaining = strategy.get_window_stats(item, "login-failures", key)
                waits.append(max(1, math.ceil(reset_at - time.time())))
    except Exception as exc:  # a storage outage must not lock everyone out
        current_app.logger.warning("sign-in throttle unavailable: %s", exc)
        return None
    return Throttled(max(waits)) if waits else None


def failed(username: str) -> None:
    """Count a failed sign-in against the account and the address."""
    try:
        strategy = _strategy()
        for item, key in _budgets(username):
            strategy.hit(item, "login-failures", key)
    except Exception as exc:
        current_app.logger.warning("sign-in throttle unavailable: %s", exc)


def reset() -> None:
    """Forget every count (tests; an operator after an incident)."""
    current_app.extensions[EXTENSION_KEY].reset()
