"""`flumen consumer-groups` / `kafka-consumer-groups.sh` against the real broker: the lag table,
reset-offsets (dry run, execute, refused while active), delete. These need the broker's group
coordinator; on a broker without one they are skipped (reason: "needs group coordinator")."""
import subprocess
import time

import pytest

from tools_util import HOW, groups_supported, tool


@pytest.fixture
def gbroker(flumen_bin, broker):
    if not groups_supported(flumen_bin, broker.bootstrap):
        pytest.skip("needs group coordinator")
    return broker


def produce(flumen_bin, tmp_path, bs, topic, n, partitions=2):
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--create", "--topic", topic,
               "--bootstrap-server", bs, "--partitions", str(partitions))
    assert out.returncode == 0, out.stdout + out.stderr
    # Keys spread the records over the partitions deterministically.
    lines = "".join(f"k{i}\tv{i}\n" for i in range(n))
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-producer.sh",
               "--bootstrap-server", bs, "--topic", topic, "--property", "parse.key=true",
               stdin=lines)
    assert out.returncode == 0, out.stderr


def consume(flumen_bin, tmp_path, bs, topic, group, n):
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", topic, "--group", group, "--from-beginning",
               "--max-messages", str(n), "--timeout-ms", "20000")
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def table(stdout):
    """Parses the describe table: a list of dicts keyed by header."""
    lines = [l for l in stdout.splitlines() if l.strip()]
    header = lines[0].split()
    return [dict(zip(header, l.split())) for l in lines[1:]]


@pytest.mark.parametrize("how", HOW)
def test_lag_reset_and_delete(flumen_bin, gbroker, tmp_path, how):
    bs = gbroker.bootstrap
    produce(flumen_bin, tmp_path, bs, "fred", 10, partitions=1)
    assert len(consume(flumen_bin, tmp_path, bs, "fred", "g1", 10)) == 10
    # Four more records after the group's position: a lag of 4.
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-producer.sh",
               "--bootstrap-server", bs, "--topic", "fred", stdin="a\nb\nc\nd\n")
    assert out.returncode == 0, out.stderr

    out = tool(flumen_bin, tmp_path, how, "kafka-consumer-groups.sh", "--bootstrap-server", bs,
               "--list")
    assert "g1" in out.stdout.splitlines()

    out = tool(flumen_bin, tmp_path, how, "kafka-consumer-groups.sh", "--bootstrap-server", bs,
               "--describe", "--group", "g1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("\nGROUP ")
    assert out.stdout.splitlines()[1].split() == [
        "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID",
        "HOST", "CLIENT-ID"]
    (row,) = table(out.stdout)
    assert (row["GROUP"], row["TOPIC"], row["PARTITION"]) == ("g1", "fred", "0")
    assert (row["CURRENT-OFFSET"], row["LOG-END-OFFSET"], row["LAG"]) == ("10", "14", "4")
    assert (row["CONSUMER-ID"], row["HOST"], row["CLIENT-ID"]) == ("-", "-", "-")
    assert "Consumer group 'g1' has no active members." in out.stderr

    # Dry run (the default) changes nothing.
    out = tool(flumen_bin, tmp_path, how, "kafka-consumer-groups.sh", "--bootstrap-server", bs,
               "--reset-offsets", "--group", "g1", "--topic", "fred", "--to-earliest")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "WARN: No action will be performed as the --execute option is missing." in out.stderr
    plan = table(out.stdout)
    assert [(r["TOPIC"], r["PARTITION"], r["NEW-OFFSET"]) for r in plan] == [("fred", "0", "0")]
    # --execute moves the group: it then reads everything again.
    out = tool(flumen_bin, tmp_path, how, "kafka-consumer-groups.sh", "--bootstrap-server", bs,
               "--reset-offsets", "--group", "g1", "--all-topics", "--to-earliest", "--execute")
    assert out.returncode == 0, out.stdout + out.stderr
    out = tool(flumen_bin, tmp_path, how, "kafka-consumer-groups.sh", "--bootstrap-server", bs,
               "--describe", "--group", "g1")
    assert sum(int(r["LAG"]) for r in table(out.stdout)) == 14
    assert len(consume(flumen_bin, tmp_path, bs, "fred", "g1", 14)) == 14

    # --shift-by and --to-offset, clamped to the log.
    out = tool(flumen_bin, tmp_path, how, "kafka-consumer-groups.sh", "--bootstrap-server", bs,
               "--reset-offsets", "--group", "g1", "--topic", "fred:0", "--to-offset", "1000",
               "--dry-run")
    (row,) = table(out.stdout)
    assert row["PARTITION"] == "0" and row["NEW-OFFSET"] == "14"

    out = tool(flumen_bin, tmp_path, how, "kafka-consumer-groups.sh", "--bootstrap-server", bs,
               "--delete", "--group", "g1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "Deletion of requested consumer groups ('g1') was successful."
    out = tool(flumen_bin, tmp_path, how, "kafka-consumer-groups.sh", "--bootstrap-server", bs,
               "--describe", "--group", "g1")
    assert out.returncode == 1
    assert "Error: Consumer group 'g1' does not exist." in out.stdout


def test_reset_refused_while_group_is_active(flumen_bin, gbroker, tmp_path):
    bs = gbroker.bootstrap
    produce(flumen_bin, tmp_path, bs, "busy", 4)
    consumer = subprocess.Popen(
        [flumen_bin, "console-consumer", "--bootstrap-server", bs, "--topic", "busy", "--group",
         "g2", "--timeout-ms", "30000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 25
        state = ""
        while time.monotonic() < deadline:
            out = tool(flumen_bin, tmp_path, "subcommand", "kafka-consumer-groups.sh",
                       "--bootstrap-server", bs, "--describe", "--group", "g2", "--state")
            state = out.stdout
            if "Stable" in state:
                break
            time.sleep(0.3)
        assert "Stable" in state, state
        lines = [l for l in state.splitlines() if l.strip()]
        assert lines[0].split() == ["GROUP", "COORDINATOR", "(ID)", "ASSIGNMENT-STRATEGY", "STATE",
                                    "#MEMBERS"]
        out = tool(flumen_bin, tmp_path, "subcommand", "kafka-consumer-groups.sh",
                   "--bootstrap-server", bs, "--describe", "--group", "g2", "--members")
        (member,) = [l for l in out.stdout.splitlines() if "console-consumer-" in l]
        assert member.startswith("g2 ")
        assert member.split()[-1] == "2", "#PARTITIONS: both partitions of busy"
        out = tool(flumen_bin, tmp_path, "subcommand", "kafka-consumer-groups.sh",
                   "--bootstrap-server", bs, "--reset-offsets", "--group", "g2", "--topic", "busy",
                   "--to-earliest", "--execute")
        assert out.returncode != 0
        assert ("Error: Assignments can only be reset if the group 'g2' is inactive, but the "
                "current state is Stable.") in out.stdout
        out = tool(flumen_bin, tmp_path, "subcommand", "kafka-consumer-groups.sh",
                   "--bootstrap-server", bs, "--delete", "--group", "g2")
        assert out.returncode != 0
        assert "Error: Deletion of some consumer groups failed:" in out.stdout
    finally:
        consumer.kill()
        consumer.wait(timeout=10)


def test_groups_usage_errors(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    out = tool(flumen_bin, tmp_path, "kafka-name", "kafka-consumer-groups.sh",
               "--bootstrap-server", bs)
    assert out.returncode == 1
    assert "exactly one action" in out.stderr
    out = tool(flumen_bin, tmp_path, "kafka-name", "kafka-consumer-groups.sh",
               "--bootstrap-server", bs, "--reset-offsets", "--group", "g", "--topic", "t",
               "--to-earliest", "--dry-run", "--execute")
    assert out.returncode == 1


@pytest.mark.parametrize("how", HOW)
def test_delete_offsets(flumen_bin, gbroker, tmp_path, how):
    bs = gbroker.bootstrap
    produce(flumen_bin, tmp_path, bs, "off", 3, partitions=1)
    assert len(consume(flumen_bin, tmp_path, bs, "off", "g3", 3)) == 3
    out = tool(flumen_bin, tmp_path, how, "kafka-consumer-groups.sh", "--bootstrap-server", bs,
               "--delete-offsets", "--group", "g3", "--topic", "off")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Request succeed for deleting offsets with topic off group g3"
    assert lines[1] == ""
    assert lines[2].split() == ["TOPIC", "PARTITION", "STATUS"]
    assert lines[3].split() == ["off", "0", "Successful"]
    out = tool(flumen_bin, tmp_path, how, "kafka-consumer-groups.sh", "--bootstrap-server", bs,
               "--describe", "--group", "g3")
    assert table(out.stdout) == []


def test_from_beginning_hint_for_a_group_with_offsets(flumen_bin, gbroker, tmp_path):
    bs = gbroker.bootstrap
    produce(flumen_bin, tmp_path, bs, "again", 2, partitions=1)
    assert len(consume(flumen_bin, tmp_path, bs, "again", "g4", 2)) == 2
    out = tool(flumen_bin, tmp_path, "kafka-name", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", "again", "--group", "g4", "--from-beginning",
               "--timeout-ms", "8000")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert "group 'g4' already has committed offsets on 'again'" in out.stderr
    assert out.stderr.strip().splitlines()[-1] == "Processed a total of 0 messages"
