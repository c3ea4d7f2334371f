"""TAILDIR through the real binary: tailing, rename rotation followed by inode, restart from
Flume's JSON position file."""
import json

from agent_helpers import Agent, read_dir, wait_until


def conf(logs, out, pos):
    return ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            "a1.sources.r1.type = TAILDIR\na1.sources.r1.filegroups = g1\n"
            f"a1.sources.r1.filegroups.g1 = {logs}/app.*\\\\.log\n"
            f"a1.sources.r1.positionFile = {pos}\na1.sources.r1.writePosInterval = 200\n"
            "a1.sources.r1.channels = c1\n"
            "a1.channels.c1.type = memory\n"
            f"a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\na1.sinks.k1.sink.directory = {out}\n"
            "a1.sinks.k1.sink.rollInterval = 0\n")


def test_taildir_rotation_and_restart(flumen_bin, tmp_path):
    logs, out = tmp_path / "logs", tmp_path / "out"
    logs.mkdir()
    out.mkdir()
    pos = tmp_path / "pos" / "taildir_position.json"
    (logs / "app.log").write_text("one\ntwo\n")
    (logs / "ignored.txt").write_text("nope\n")
    agent = Agent(flumen_bin, tmp_path, conf(logs, out, pos))
    try:
        wait_until(lambda: read_dir(out) == "one\ntwo\n", what="initial lines")
        with open(logs / "app.log", "a") as f:
            f.write("three\n")
        (logs / "app.log").rename(logs / "app.log.1")  # no longer matches: read to its end
        (logs / "app.log").write_text("four\n")
        wait_until(lambda: sorted(read_dir(out).split()) == ["four", "one", "three", "two"], what="rotated lines")
        wait_until(lambda: pos.exists() and '"pos":5' in pos.read_text(), what="position file")
    finally:
        assert agent.stop() == 0
    entries = json.loads(pos.read_text())
    assert [list(e.keys()) for e in entries] == [["inode", "pos", "file"]]
    assert entries[0]["file"] == str(logs / "app.log") and entries[0]["pos"] == 5
    # Restart: nothing is read twice, new lines are read.
    with open(logs / "app.log", "a") as f:
        f.write("five\n")
    agent = Agent(flumen_bin, tmp_path, conf(logs, out, pos))
    try:
        wait_until(lambda: "five" in read_dir(out), what="line written while stopped")
    finally:
        assert agent.stop() == 0
    assert sorted(read_dir(out).split()) == ["five", "four", "one", "three", "two"]
