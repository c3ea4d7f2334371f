"""Helpers for the agent interop tests: start `flumen agent` on a config, talk to it, stop it."""
import os
import pathlib
import random
import signal
import socket
import subprocess
import time


_handed_out = set()


def _ephemeral_range():
    try:
        lo, hi = map(int, pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A 127.0.0.1 port free now, for a process started next to bind. It is picked below the
    kernel's ephemeral range, so no outgoing connection (of a client in the same test) nor
    any port-0 listener can take it in between, and never twice in one session."""
    lo, _ = _ephemeral_range()
    rnd = random.Random()
    for _ in range(1000):
        port = rnd.randrange(10000, lo) if lo > 11000 else 0
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


class Agent:
    """A running `flumen agent` whose stderr (the log) goes to a file."""

    def __init__(self, flumen_bin, tmp_path: pathlib.Path, conf_text: str, name="a1", extra=(), argv0=None):
        self.conf = tmp_path / f"agent-{time.monotonic_ns()}.conf"
        self.conf.write_text(conf_text)
        self.log_path = tmp_path / f"{self.conf.stem}.log"
        self.log = open(self.log_path, "wb")
        cmd = [argv0 or flumen_bin, "agent", "--conf", str(tmp_path), "--conf-file", str(self.conf),
               "--name", name, "-Dflume.root.logger=INFO,console", *extra]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout=60.0) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = self.text()
            if needle in t:
                return t
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in agent log:\n{self.text()}")

    def wait_port(self, port: int, timeout=60.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"port {port} not open:\n{self.text()}")

    def stop(self, timeout=60.0) -> int:  # above the agent's 10 s drain on SIGTERM
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def wait_until(predicate, timeout=60.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def read_dir(d: pathlib.Path) -> str:
    return "".join(p.read_text() for p in sorted(d.iterdir()) if p.is_file())


def netcat_lines(port: int, lines, timeout=60.0) -> bytes:
    """Sends lines, returns the replies once one reply line per sent line arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"".join(lines))
        got = b""
        deadline = time.time() + timeout
        while got.count(b"\n") < len(lines) and time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def fan_in(flumen_bin, tmp_path, collector_text, sender_text, rpc_port, lines_per_sender=300, timeout=60):
    """Two netcat agents (`sender_text(nc_port)`) forward to one collector (`collector_text`,
    writing `header_and_text` into tmp_path/out): every line must arrive exactly once."""
    out = tmp_path / "out"
    nc1, nc2 = free_port(), free_port()
    d1, d2 = tmp_path / "s1", tmp_path / "s2"
    d1.mkdir()
    d2.mkdir()
    collector = Agent(flumen_bin, tmp_path, collector_text)
    s1 = Agent(flumen_bin, d1, sender_text(nc1))
    s2 = Agent(flumen_bin, d2, sender_text(nc2))
    try:
        collector.wait_port(rpc_port)
        s1.wait_port(nc1)
        s2.wait_port(nc2)
        n = lines_per_sender
        a = [f"a{i}\n".encode() for i in range(n)]
        b = [f"b{i}\n".encode() for i in range(n)]
        assert netcat_lines(nc1, a) == b"OK\n" * n
        assert netcat_lines(nc2, b) == b"OK\n" * n
        want = sorted("{} " + l.decode().rstrip("\n") for l in a + b)
        wait_until(lambda: sorted(read_dir(out).splitlines()) == want, timeout=timeout,
                   what="every line once at the collector")
    finally:
        assert s1.stop() == 0
        assert s2.stop() == 0
        assert collector.stop() == 0
