"""Helpers for the Connect interop tests: the seed's files moved to a test folder, a running
`flumen connect-standalone`, and small waiting loops (bounded in time)."""
import json
import pathlib
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

from agent_helpers import free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The seed's Connect lesson, as shipped in examples/ (byte-identical copies of the seed files).
SEED = ROOT / "examples" / "connect"


def set_keys(text: str, **changes) -> str:
    """Rewrites `key=value` lines of a properties text (keys given with `_` for `.`)."""
    changes = {k.replace("_", "."): v for k, v in changes.items()}
    out = []
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9._]+)=", line)
        if m and m.group(1) in changes:
            line = f"{m.group(1)}={changes.pop(m.group(1))}"
        out.append(line)
    out += [f"{k}={v}" for k, v in changes.items()]
    return "\n".join(out) + "\n"


class Connect:
    """A running `flumen connect-standalone` with the seed's configs moved into `folder`."""

    def __init__(self, flumen_bin, folder: pathlib.Path, bootstrap: str, worker_changes=None,
                 source_changes=None, sink_changes=None, with_source=True, with_sink=True, port=None):
        self.folder = folder
        self.port = port or free_port()
        self.log_path = folder / f"connect-{time.monotonic_ns()}.log"
        self.log_file = None
        self.flumen_bin = flumen_bin
        self.access_log = folder / "access_log_small.txt"
        self.out = folder / "logout.txt"
        wc = {"bootstrap_servers": bootstrap, "offset_storage_file_filename": str(folder / "connect.offsets"),
              "listeners": f"http://127.0.0.1:{self.port}"}
        wc.update(worker_changes or {})
        (folder / "connect-standalone.properties").write_text(
            set_keys((SEED / "connect-standalone.properties").read_text(), **wc))
        sc = {"file": str(self.access_log)}
        sc.update(source_changes or {})
        (folder / "connect-file-source.properties").write_text(
            set_keys((SEED / "connect-file-source.properties").read_text(), **sc))
        kc = {"file": str(self.out)}
        kc.update(sink_changes or {})
        (folder / "connect-file-sink.properties").write_text(
            set_keys((SEED / "connect-file-sink.properties").read_text(), **kc))
        self.args = [str(folder / "connect-standalone.properties")]
        if with_source:
            self.args.append(str(folder / "connect-file-source.properties"))
        if with_sink:
            self.args.append(str(folder / "connect-file-sink.properties"))
        self.proc = None

    def start(self, argv0=None, wait=True):
        self.log_file = open(self.log_path, "ab")
        cmd = [argv0, *self.args] if argv0 else [self.flumen_bin, "connect-standalone", *self.args]
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT)
        if wait:
            self.wait_rest()
        return self

    def text(self):
        return self.log_path.read_text(errors="replace")

    def wait_rest(self, timeout=60.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"connect exited with {self.proc.returncode}:\n{self.text()}")
            try:
                self.get("/")
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"REST not up:\n{self.text()}")

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None), dict(r.headers)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None), dict(e.headers)

    def get(self, path):
        return self.request("GET", path)[1]

    def stop(self, timeout=20.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.log_file:
            self.log_file.close()
            self.log_file = None
        return self.proc.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=5)
        if self.log_file:
            self.log_file.close()
            self.log_file = None


def read_lines(path: pathlib.Path):
    if not path.exists():
        return []
    return path.read_bytes().decode("utf-8", "replace").splitlines()


def wait_for(pred, timeout=60.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
