"""Shared fixtures for interop tests: they drive the built `flumen` binary with real clients."""
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def flumen_bin() -> str:
    """Path of the built binary (FLUMEN_BIN, else target/release/flumen)."""
    path = os.environ.get("FLUMEN_BIN") or str(ROOT / "target" / "release" / "flumen")
    if not os.path.exists(path):
        pytest.fail(f"flumen binary not found at {path}: run ./scripts/test")
    return path


import re
import signal
import socket
import time


class PortTaken(RuntimeError):
    """The broker could not bind its port."""


class Broker:
    """A running `flumen serve` started by the `broker` fixture."""

    def __init__(self, flumen_bin, data_dir, port=0, overrides=()):
        self.flumen_bin = flumen_bin
        self.data_dir = str(data_dir)
        self.port = port
        self.overrides = list(overrides)
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(self.data_dir), f"broker-{id(self)}.log")

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=30.0):
        """Starts the broker and waits for its "Broker ready." line (bounded in time). A port
        picked here and taken by someone else before the broker binds it is retried."""
        for attempt in range(3):
            auto_port = not self.port
            try:
                return self._start(timeout)
            except PortTaken:
                if not auto_port or attempt == 2:
                    raise
                self.port = 0

    def _start(self, timeout):
        if not self.port:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
        args = [
            self.flumen_bin, "serve",
            "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "--override", f"log.dirs={self.data_dir}",
        ]
        for o in self.overrides:
            args += ["--override", o]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                if "cannot listen" in self.output():
                    raise PortTaken(self.output())
                raise RuntimeError(f"broker exited with {self.proc.returncode}: {self.output()}")
            m = re.search(r"Broker ready\..*listener=127\.0\.0\.1:(\d+)", self.output())
            if m and int(m.group(1)) == self.port:
                return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"broker not ready within {timeout}s: {self.output()}")

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=15.0):
        """SIGTERM, then wait (bounded); returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode if self.proc else None

    def kill(self):
        """kill -9 by pid."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def restart(self):
        self.stop()
        self.log.close()
        return self.start()


@pytest.fixture
def broker(flumen_bin, tmp_path):
    """`flumen serve` on a free 127.0.0.1 port with a temporary data directory."""
    b = Broker(flumen_bin, tmp_path / "data").start()
    try:
        yield b
    finally:
        b.kill()
        b.log.close()


@pytest.fixture
def broker_factory(flumen_bin, tmp_path):
    """Starts brokers with extra `--override`s; every one is killed by pid afterwards."""
    started = []

    def make(*overrides, data_dir=None):
        b = Broker(flumen_bin, data_dir or (tmp_path / f"data{len(started)}"), overrides=overrides)
        started.append(b)
        return b.start()

    yield make
    for b in started:
        b.kill()
        if getattr(b, "log", None):
            b.log.close()
