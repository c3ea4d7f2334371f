"""Helpers for the tool interop tests: run a Kafka tool through the real binary, either as a
`flumen` subcommand or under its Kafka name (a symlink, as `flumen install-links` makes)."""
import os
import subprocess

SUBCOMMANDS = {
    "kafka-topics.sh": "topics",
    "kafka-console-producer.sh": "console-producer",
    "kafka-console-consumer.sh": "console-consumer",
    "kafka-consumer-groups.sh": "consumer-groups",
    "kafka-producer-perf-test.sh": "producer-perf-test",
    "kafka-consumer-perf-test.sh": "consumer-perf-test",
}

# Each test that takes `how` runs twice: as `flumen <subcommand>` and as `kafka-<tool>.sh`.
HOW = ["subcommand", "kafka-name"]


def tool(flumen_bin, tmp_path, how, name, *args, stdin=None, timeout=60, env=None):
    """Runs the Kafka tool `name` (e.g. "kafka-topics.sh") with `args`; returns the
    CompletedProcess (text mode). Bounded by `timeout` seconds."""
    if how == "subcommand":
        argv = [flumen_bin, SUBCOMMANDS[name], *args]
    else:
        bindir = tmp_path / "bin"
        bindir.mkdir(exist_ok=True)
        link = bindir / name
        if not link.exists():
            os.symlink(flumen_bin, link)
        argv = [str(link), *args]
    full_env = dict(os.environ)
    full_env.pop("FLUMEN_BOOTSTRAP_SERVER", None)
    full_env.update(env or {})
    return subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def groups_supported(flumen_bin, bootstrap):
    """Whether the broker has a group coordinator (answers ListGroups)."""
    out = subprocess.run(
        [flumen_bin, "consumer-groups", "--bootstrap-server", bootstrap, "--list"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    return "UnsupportedFeature" not in out.stderr
