"""The perf tools and `install-links` through the real binary."""
import json
import os
import re
import subprocess

import pytest

from tools_util import HOW, tool

FINAL = re.compile(
    r"^(\d+) records sent, \d+\.\d{6} records/sec \(\d+\.\d\d MB/sec\), \d+\.\d\d ms avg latency, "
    r"\d+\.\d\d ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99\.9th\.$")


@pytest.mark.parametrize("how", HOW)
def test_producer_then_consumer_perf(flumen_bin, broker, tmp_path, how):
    bs = broker.bootstrap
    tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--create", "--topic", "perf",
         "--bootstrap-server", bs, "--partitions", "2")
    out = tool(flumen_bin, tmp_path, how, "kafka-producer-perf-test.sh", "--topic", "perf",
               "--num-records", "5000", "--throughput", "-1", "--record-size", "100",
               "--producer-props", f"bootstrap.servers={bs}", "acks=1")
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    m = FINAL.match(last)
    assert m, last
    assert m.group(1) == "5000"

    out = tool(flumen_bin, tmp_path, how, "kafka-consumer-perf-test.sh", "--bootstrap-server", bs,
               "--topic", "perf", "--messages", "5000", "--timeout", "20000")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, "
                        "nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
    cols = lines[-1].split(", ")
    assert len(cols) == 10
    assert cols[4] == "5000"
    assert cols[2] == "0.4768"  # 5000 × 100 bytes in MiB, 4 decimals


def test_producer_perf_json_and_payload_file(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    payloads = tmp_path / "payloads.txt"
    payloads.write_text("alpha\nbeta\ngamma\n")
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-producer-perf-test.sh", "--topic", "pj",
               "--num-records", "300", "--throughput", "1000", "--payload-file", str(payloads),
               "--bootstrap-server", bs, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["records_sent"] == 300
    assert result["p99_ms"] >= result["p50_ms"]
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", "pj", "--from-beginning", "--max-messages",
               "300")
    assert set(out.stdout.split()) <= {"alpha", "beta", "gamma"}
    assert len(out.stdout.split()) == 300


def test_consumer_perf_timeout_warning(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--create", "--topic", "few",
         "--bootstrap-server", bs)
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-consumer-perf-test.sh", "--broker-list",
               bs, "--topic", "few", "--messages", "10", "--timeout", "1000")
    assert out.returncode == 0, out.stderr
    assert "WARNING: Exiting before consuming the expected number of messages: timeout (1000 ms) exceeded." in out.stdout
    assert "--broker-list is deprecated" in out.stderr


def test_install_links(flumen_bin, broker, tmp_path):
    bindir = tmp_path / "links"
    out = subprocess.run([flumen_bin, "install-links", str(bindir)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for name in ["kafka-topics.sh", "kafka-topics", "kafka-console-producer.sh",
                 "kafka-console-consumer.sh", "kafka-consumer-groups.sh",
                 "kafka-producer-perf-test.sh", "kafka-consumer-perf-test.sh",
                 "kafka-server-start.sh", "connect-standalone.sh", "flume-ng"]:
        assert os.path.islink(bindir / name), name
    out = subprocess.run([str(bindir / "kafka-topics"), "--create", "--topic", "linked",
                          "--bootstrap-server", broker.bootstrap], capture_output=True, text=True,
                         timeout=30)
    assert out.stdout == "Created topic linked.\n", out.stderr
    # Running it again is harmless.
    out = subprocess.run([flumen_bin, "install-links", str(bindir)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
