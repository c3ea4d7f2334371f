"""`flumen topics` / `kafka-topics.sh` against the real broker: create, list, describe,
alter, delete, the errors Kafka prints, and the legacy `--zookeeper` spelling."""
import time

import pytest

from tools_util import HOW, tool


@pytest.mark.parametrize("how", HOW)
def test_create_list_describe_delete(flumen_bin, broker, tmp_path, how):
    bs = broker.bootstrap
    out = tool(flumen_bin, tmp_path, how, "kafka-topics.sh", "--create", "--topic", "fred",
               "--bootstrap-server", bs, "--partitions", "3", "--replication-factor", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Created topic fred.\n"

    out = tool(flumen_bin, tmp_path, how, "kafka-topics.sh", "--list", "--bootstrap-server", bs)
    assert out.returncode == 0, out.stderr
    assert "fred" in out.stdout.splitlines()

    out = tool(flumen_bin, tmp_path, how, "kafka-topics.sh", "--describe", "--topic", "fred",
               "--bootstrap-server", bs)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("Topic: fred\t")
    assert "\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: " in lines[0]
    assert len(lines) == 4
    for p, line in enumerate(lines[1:]):
        assert line.startswith(f"\tTopic: fred\tPartition: {p}\tLeader: ")
        assert "\tReplicas: " in line and "\tIsr: " in line

    out = tool(flumen_bin, tmp_path, how, "kafka-topics.sh", "--delete", "--topic", "fred",
               "--bootstrap-server", bs)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = tool(flumen_bin, tmp_path, how, "kafka-topics.sh", "--list", "--bootstrap-server", bs)
        if "fred" not in out.stdout.splitlines():
            break
        time.sleep(0.2)
    assert "fred" not in out.stdout.splitlines()


def test_describe_shows_config_overrides_and_legacy_layout(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--create", "--topic", "logs",
               "--bootstrap-server", bs, "--partitions", "1", "--replication-factor", "1",
               "--config", "retention.ms=60000", "--config", "cleanup.policy=delete")
    assert out.returncode == 0, out.stderr
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--describe", "--topic",
               "logs", "--bootstrap-server", bs)
    header = out.stdout.splitlines()[0]
    assert "retention.ms=60000" in header
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--describe", "--topic",
               "logs", "--bootstrap-server", bs, "--legacy-format")
    assert out.stdout.splitlines()[0].startswith("Topic:logs\tPartitionCount:1\tReplicationFactor:1\tConfigs:")


def test_alter_adds_partitions(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--create", "--topic", "grow",
         "--bootstrap-server", bs, "--partitions", "1")
    out = tool(flumen_bin, tmp_path, "kafka-name", "kafka-topics.sh", "--alter", "--topic", "grow",
               "--partitions", "4", "--bootstrap-server", bs)
    assert out.returncode == 0, out.stdout + out.stderr
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--describe", "--topic",
               "grow", "--bootstrap-server", bs)
    assert "PartitionCount: 4" in out.stdout


def test_errors_as_kafka_prints_them(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    args = ["--create", "--topic", "dup", "--bootstrap-server", bs, "--partitions", "1"]
    assert tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", *args).returncode == 0
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", *args)
    assert out.returncode == 1
    assert out.stdout == "Error while executing topic command : Topic 'dup' already exists.\n"
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", *args, "--if-not-exists")
    assert out.returncode == 0 and out.stdout == ""

    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--describe", "--topic",
               "nosuch", "--bootstrap-server", bs)
    assert out.returncode == 1
    assert "Topic 'nosuch' does not exist as expected" in out.stdout
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--delete", "--topic",
               "nosuch", "--bootstrap-server", bs, "--if-exists")
    assert out.returncode == 0

    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--bootstrap-server", bs)
    assert out.returncode == 1
    assert "exactly one action" in out.stderr

    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--list", "--bootstrap", bs)
    assert out.returncode == 1, "abbreviated options are errors, as in Kafka"


def test_topic_names_with_dots_warn(flumen_bin, broker, tmp_path):
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--create", "--topic",
               "web.logs", "--bootstrap-server", broker.bootstrap)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("WARNING: Due to limitations in metric names")
    assert out.stdout.endswith("Created topic web.logs.\n")


def test_unreachable_broker_fails_fast(flumen_bin, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    out = tool(flumen_bin, tmp_path, "kafka-name", "kafka-topics.sh", "--list",
               "--bootstrap-server", f"127.0.0.1:{port}", env={"FLUMEN_CONNECT_TIMEOUT_MS": "1500"},
               timeout=30)
    assert out.returncode != 0
    assert time.monotonic() - start < 15
    assert f"could not reach a Kafka broker at 127.0.0.1:{port} within 1500 ms" in out.stderr


@pytest.mark.parametrize("how", HOW)
def test_legacy_zookeeper_flag(flumen_bin, broker, tmp_path, how):
    env = {"FLUMEN_BOOTSTRAP_SERVER": broker.bootstrap}
    out = tool(flumen_bin, tmp_path, how, "kafka-topics.sh", "--create", "--zookeeper",
               "localhost:2181", "--replication-factor", "1", "--partitions", "1", "--topic",
               "fred", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Created topic fred.\n"
    assert "--zookeeper is deprecated" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = tool(flumen_bin, tmp_path, how, "kafka-topics.sh", "--list", "--zookeeper",
               "localhost:2181", env=env)
    assert out.stdout.splitlines() == ["fred"]
