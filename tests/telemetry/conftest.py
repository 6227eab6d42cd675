"""Fixtures of the telemetry tests: a box with sensors, filled two days ago, and a gateway's device token."""

from __future__ import annotations

import pytest

from tests.telemetry.builders import device_token, make_sensor_box


@pytest.fixture
def sensor_box(world):
    return make_sensor_box(world)


@pytest.fixture
def gateway(api, world):
    return device_token(api, world.enterprise)
