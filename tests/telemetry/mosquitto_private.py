"""A private Mosquitto for the tests that need the product's broker configuration: the machine's
binary with ``deploy/mosquitto.conf`` on a free port of 127.0.0.1 and a persistence folder of the
test's own (no helper tests here)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support import service_missing

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto.conf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def product_config(port: int, folder: Path) -> str:
    """deploy/mosquitto.conf with only the port, the persistence folder and the user changed."""
    text = DEPLOY_CONF.read_text()
    text, listeners = re.subn(r"(?m)^listener 1883 127\.0\.0\.1$", f"listener {port} 127.0.0.1", text)
    text, folders = re.subn(r"(?m)^persistence_location .*$", f"persistence_location {folder}/", text)
    assert listeners == 1 and folders == 1, "deploy/mosquitto.conf lost its listener or persistence_location"
    # Run as whoever runs the tests (mosquitto started as root drops to its own user, which could
    # not write the persistence file in our folder).
    if os.geteuid() == 0:
        text += "\nuser root\n"
    return text


class PrivateBroker:
    def __init__(self, folder: Path):
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(binary):
            service_missing("the mosquitto binary", "not installed")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(product_config(self.port, folder))
        self.log = folder / "mosquitto.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"private mosquitto exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("private mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: mosquitto writes its persistence file on the way out
            self.process.wait(20)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")
