"""Drives the KafkaJS scripts in interop/js/ from pytest: one JSON spec in argv, one JSON
object per stdout line back; bytes travel as base64. Every wait is bounded in time and every
process started here is killed by pid."""
import base64
import json
import os
import pathlib
import shutil
import subprocess
import threading
import time

import pytest

JS = pathlib.Path(__file__).resolve().parent / "js"
NODE_MODULES = pathlib.Path(__file__).resolve().parent / "node_modules"


def node():
    """The node binary, or a failure saying how to install what the tests need."""
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed: the KafkaJS interop tests need Node.js 18+")
    if not (NODE_MODULES / "kafkajs").is_dir():
        pytest.fail("interop/node_modules is missing: run `npm install` in interop/ (./scripts/test does)")
    return path


def b64(b):
    return None if b is None else base64.b64encode(b).decode()


def unb64(s):
    return None if s is None else base64.b64decode(s)


def js_record(key, value, headers=(), timestamp=None, partition=None):
    """A record for produce.js: bytes keys/values, headers as [(name, bytes|None)]."""
    return {"key": b64(key), "value": b64(value), "headers": [[k, b64(v)] for k, v in headers],
            "timestamp": timestamp, "partition": partition}


def decoded(rec):
    """A record line from consume.js as (key, value, headers, timestamp) with bytes."""
    return (unb64(rec["key"]), unb64(rec["value"]),
            [(k, unb64(v)) for k, v in rec["headers"]], rec["timestamp"])


def run_js(script, spec, timeout=60):
    """Runs interop/js/<script> to completion; returns its JSON lines (fails on a non-zero exit)."""
    spec = {"limit_ms": int(timeout * 1000) - 2000, **spec}
    p = subprocess.run([node(), str(JS / script), json.dumps(spec)], capture_output=True, timeout=timeout,
                       cwd=str(JS))
    lines = [json.loads(line) for line in p.stdout.decode().splitlines() if line.startswith("{")]
    assert p.returncode == 0, f"{script} exited {p.returncode}: {lines} {p.stderr.decode()[-2000:]}"
    return lines


def js_produce(bootstrap, topic, records, codec="none", acks=-1, **extra):
    out = run_js("produce.js", {"bootstrap": bootstrap, "topic": topic, "records": records, "codec": codec,
                                "acks": acks, **extra})
    return out[-1]["offsets"]


def js_admin(bootstrap, *ops, timeout=60):
    """Runs the admin ops in one client; returns one {op, ok, result|error, type} per op."""
    out = run_js("admin.js", {"bootstrap": bootstrap, "ops": list(ops)}, timeout=timeout)
    assert len(out) == len(ops), out
    return out


class JsConsumer:
    """A long-running consume.js group member; its events are gathered by a reader thread."""

    def __init__(self, bootstrap, group, topics, limit=90, **spec):
        full = {"bootstrap": bootstrap, "group": group, "topics": list(topics), "limit_ms": int(limit * 1000),
                **spec}
        self.proc = subprocess.Popen([node(), str(JS / "consume.js"), json.dumps(full)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(JS))
        self.events = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(ev)

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def records(self):
        return [e for e in self.snapshot() if e.get("event") == "record"]

    def values(self):
        return [unb64(r["value"]) for r in self.records()]

    def assignment(self):
        """Partitions of the last join, as {topic: [partitions]}."""
        joins = [e for e in self.snapshot() if e.get("event") == "join"]
        return joins[-1]["assignment"] if joins else None

    def wait(self, pred, timeout=60, what="condition"):
        """Waits (bounded) until pred(self) holds; fails with the events seen otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self):
                return
            if self.proc.poll() is not None:
                self.reader.join(timeout=2)
                if pred(self):
                    return
                raise AssertionError(f"consumer exited {self.proc.returncode} before {what}: "
                                     f"{self.snapshot()[-5:]} {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}: {self.snapshot()[-5:]}")

    def close(self, timeout=20):
        """Closes stdin: the member commits, leaves the group and exits (bounded); else kill -9."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.reader.join(timeout=2)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 9)
            self.proc.wait(timeout=5)
