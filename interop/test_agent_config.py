"""Bad agent configurations: clear messages naming component, key and file line;
`--check` lists every problem and exits non-zero; start failures name the component."""
import socket
import subprocess

from agent_helpers import Agent, free_port

GOOD = """a1.sources = r1
a1.sinks = k1
a1.channels = c1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = ${PORT}
a1.sources.r1.channels = c1
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
a1.channels.c1.type = memory
"""


def run(flumen_bin, tmp_path, text, *args, name="a1"):
    conf = tmp_path / "agent.conf"
    conf.write_text(text)
    return subprocess.run([flumen_bin, "agent", "--check", "-f", str(conf), "-n", name, *args],
                          capture_output=True, text=True, timeout=30)


def test_check_accepts_a_good_file_with_substitution(flumen_bin, tmp_path):
    out = run(flumen_bin, tmp_path, GOOD, "-DPORT=5555")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "configuration OK" in out.stdout
    assert "source r1: netcat" in out.stdout


def test_check_lists_every_problem(flumen_bin, tmp_path):
    text = (GOOD.replace("${PORT}", "44444 # not a comment")
            .replace("a1.sinks.k1.channel = c1", "a1.sinks.k1.channels = c1")
            + "a1.sources = r1 r2\na1.sources.r2.type = sequence\na1.sources.r2.channels = c1\na1.foo = x\n")
    out = run(flumen_bin, tmp_path, text)
    assert out.returncode != 0
    o = out.stdout
    assert "source r1: property `port` (" in o and "agent.conf:6): `44444 # not a comment` is not a valid integer" in o
    assert "No channel configured for sink: k1 (`channels` is set at" in o and "a sink takes `channel`, singular" in o
    assert "Sink k1" not in o or "Removed" in o
    assert "source r2: property `type` (" in o and "type `sequence` is neither a Flume alias" in o
    assert "Invalid property specified: foo" in o
    assert "Channel c1 has no components connected and has been removed." in o


def test_batch_size_over_transaction_capacity(flumen_bin, tmp_path):
    text = GOOD.replace("${PORT}", "5555") + (
        "a1.sinks = k1 k2\na1.sinks.k2.type = null\na1.sinks.k2.channel = c1\na1.sinks.k2.batchSize = 500\n"
        "a1.channels.c1.transactionCapacity = 100\n")
    out = run(flumen_bin, tmp_path, text)
    assert out.returncode != 0
    assert "Sink k2 has been removed due to an error during configuration" in out.stdout
    assert "sink's batch size (500) is greater than the channel c1's transactionCapacity (100)" in out.stdout


def test_unknown_agent_name(flumen_bin, tmp_path):
    out = run(flumen_bin, tmp_path, GOOD, name="agent7")
    assert out.returncode != 0
    assert "No configuration found for this host:agent7 (the configuration defines agents: a1)" in out.stdout


def test_missing_file(flumen_bin, tmp_path):
    out = subprocess.run([flumen_bin, "agent", "-f", str(tmp_path / "nope.conf"), "-n", "a1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "The specified configuration file does not exist" in out.stderr


def test_port_in_use_fails_at_start_naming_the_source(flumen_bin, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        agent = Agent(flumen_bin, tmp_path, GOOD, extra=[f"-DPORT={port}"])
        assert agent.proc.wait(timeout=30) != 0
        agent.stop()
        assert f"source r1: cannot listen on 127.0.0.1:{port}" in agent.text()
    finally:
        busy.close()


def test_merged_conf_files_later_wins(flumen_bin, tmp_path):
    port = free_port()
    base = tmp_path / "base.conf"
    base.write_text(GOOD.replace("${PORT}", "1"))
    override = tmp_path / "override.conf"
    override.write_text(f"a1.sources.r1.port = {port}\n")
    proc = subprocess.Popen([flumen_bin, "agent", "-f", str(base), "-f", str(override), "-n", "a1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"hi\n")
                    assert s.recv(8) == b"OK\n"
                break
            except ConnectionRefusedError:
                assert time.time() < deadline and proc.poll() is None
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
