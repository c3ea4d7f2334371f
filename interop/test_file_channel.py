"""The durable `file` channel through the real binary: kill -9 at random moments, a corrupt
checkpoint, a file system that runs full (issue 9)."""
import os
import random
import signal
import subprocess
import time

import pytest

from agent_helpers import Agent, wait_until


def spool_files(spool, files, lines_per_file, width=60):
    """Writes the input; returns the set of lines (each unique)."""
    spool.mkdir(exist_ok=True)
    want = set()
    for f in range(files):
        lines = [f"f{f:03d}-l{i:06d}-".ljust(width, "x") for i in range(lines_per_file)]
        want.update(lines)
        (spool / f"in-{f:03d}.log").write_text("\n".join(lines) + "\n")
    return want


def conf(tmp_path, spool, out=None, extra_channel="", sink=True):
    data = f"{tmp_path / 'data1'},{tmp_path / 'data2'}"
    text = ("a1.sources = r1\na1.channels = c1\n"
            f"a1.sources.r1.type = spooldir\na1.sources.r1.spoolDir = {spool}\n"
            "a1.sources.r1.pollDelay = 20\na1.sources.r1.batchSize = 500\na1.sources.r1.channels = c1\n"
            "a1.channels.c1.type = file\n"
            f"a1.channels.c1.checkpointDir = {tmp_path / 'cp'}\n"
            f"a1.channels.c1.dataDirs = {data}\n"
            "a1.channels.c1.useDualCheckpoints = true\n"
            f"a1.channels.c1.backupCheckpointDir = {tmp_path / 'bcp'}\n"
            "a1.channels.c1.checkpointInterval = 300\n"
            "a1.channels.c1.maxFileSize = 300000\n"
            "a1.channels.c1.minimumRequiredSpace = 1048576\n"
            "a1.channels.c1.transactionCapacity = 1000\n"
            + extra_channel)
    if sink:
        text += ("a1.sinks = k1\na1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\n"
                 f"a1.sinks.k1.sink.directory = {out}\na1.sinks.k1.sink.rollInterval = 0\n"
                 "a1.sinks.k1.sink.batchSize = 200\n")
    return text


def output_lines(out, torn=None):
    """Lines of every output file. A kill -9 may cut the sink's last write short (a
    file_roll matter, not the channel's): such a partial last line goes to `torn`."""
    lines = []
    for p in sorted(out.iterdir()):
        text = p.read_text()
        parts = text.split("\n")
        if parts[-1] and torn is not None:
            torn.append(parts[-1])
        lines.extend(parts[:-1])
    return lines


def test_kill_9_at_random_moments_loses_nothing(flumen_bin, tmp_path):
    spool, out = tmp_path / "spool", tmp_path / "out"
    out.mkdir()
    want = spool_files(spool, files=40, lines_per_file=10000)
    text = conf(tmp_path, spool, out)
    rnd = random.Random(int(os.environ.get("CRASH_SEED", "9")))
    kills = 0
    sigkills = 0
    for _ in range(12):
        agent = Agent(flumen_bin, tmp_path, text)
        time.sleep(rnd.uniform(0.05, 0.3))
        if agent.proc.poll() is not None:
            raise AssertionError(f"agent exited early:\n{agent.text()}")
        agent.proc.send_signal(signal.SIGKILL)
        sigkills += 1
        agent.proc.wait()
        agent.log.close()
        if not any(spool.glob("*.log")) and set(output_lines(out)) >= want:
            break
        kills += 1  # killed with work left
    def log_files():
        return sorted(p.name for d in ("data1", "data2") for p in (tmp_path / d).iterdir()
                      if p.name.startswith("log-"))

    agent = Agent(flumen_bin, tmp_path, text)
    try:
        wait_until(lambda: set(output_lines(out)) >= want, timeout=60,
                   what=f"all {len(want)} lines after {kills} kills")
        # Every line is out once, but recovered events whose takes were in flight at a kill
        # may still be queued (they come out again as duplicates); files stay until those
        # are taken too. Once the channel is empty, checkpoints remove the fully taken files.
        wait_until(lambda: len(log_files()) <= 4, timeout=60,
                   what="fully taken log files removed")
    finally:
        assert agent.stop() == 0, agent.text()
    torn = []
    got = output_lines(out, torn)
    assert set(got) == want, "output has lines that were never input (corruption)"
    assert all(any(w.startswith(t) for w in want) for t in torn), torn
    assert kills >= 3, f"only {kills} kills hit a running transfer"
    # Duplicates only from batches in flight: per kill at most the sink's one uncommitted
    # take batch (200) and the source's one batch whose read position was not yet saved (500).
    dups = len(got) - len(set(got))
    assert dups <= sigkills * (200 + 500), f"{dups} duplicate lines after {sigkills} kills"
    # Fully taken log files were removed, and the checkpoint at a clean stop kept it so.
    assert len(log_files()) <= 4, log_files()


def test_corrupt_checkpoints_fall_back_to_full_replay(flumen_bin, tmp_path):
    spool, out = tmp_path / "spool", tmp_path / "out"
    out.mkdir()
    want = spool_files(spool, files=3, lines_per_file=1000)
    # No sink: every event stays in the channel.
    agent = Agent(flumen_bin, tmp_path, conf(tmp_path, spool, sink=False,
                                             extra_channel="a1.channels.c1.encryption.activeKey = key-0\n"))
    try:
        agent.wait_log("encryption.activeKey")  # Flume-only keys are named in a warning
        wait_until(lambda: len(list(spool.glob("*.COMPLETED"))) == 3, what="files ingested")
        time.sleep(0.5)  # a checkpoint or two
    finally:
        assert agent.stop() == 0, agent.text()
    for d in ("cp", "bcp"):
        cp = tmp_path / d / "checkpoint"
        data = bytearray(cp.read_bytes())
        data[len(data) // 2] ^= 0xFF
        cp.write_bytes(bytes(data))
    agent = Agent(flumen_bin, tmp_path, conf(tmp_path, spool, out))
    try:
        wait_until(lambda: set(output_lines(out)) == want, what="all lines after full replay")
        text = agent.wait_log("Checkpoint unusable")
        assert "corrupt" in text
    finally:
        assert agent.stop() == 0, agent.text()
    assert sorted(output_lines(out)) == sorted(want)


def mount_tmpfs(path, size):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True)
    return r.returncode == 0


def test_full_file_system_refuses_puts_then_resumes(flumen_bin, tmp_path):
    small = tmp_path / "small"
    if os.geteuid() != 0 or not mount_tmpfs(small, "12m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        spool, out = tmp_path / "spool", tmp_path / "out"
        out.mkdir()
        want = spool_files(spool, files=10, lines_per_file=6000, width=100)  # ~6 MB
        filler = small / "filler"
        filler.write_bytes(b"\0" * (7 << 20))
        text = conf(tmp_path, spool, sink=False).replace(
            f"{tmp_path / 'data1'},{tmp_path / 'data2'}", f"{small / 'd1'},{small / 'd2'}")
        agent = Agent(flumen_bin, tmp_path, text)
        try:
            agent.wait_log("minimumRequiredSpace", timeout=30)
            assert any(spool.glob("*.log")), "everything fit: the file system was not filled"
            filler.unlink()  # space returns: ingestion resumes
            wait_until(lambda: not any(spool.glob("*.log")), timeout=30, what="ingestion resumed")
        finally:
            assert agent.stop() == 0, agent.text()
        agent = Agent(flumen_bin, tmp_path, conf(tmp_path, spool, out).replace(
            f"{tmp_path / 'data1'},{tmp_path / 'data2'}", f"{small / 'd1'},{small / 'd2'}"))
        try:
            wait_until(lambda: set(output_lines(out)) >= want, timeout=30, what="all lines delivered")
        finally:
            assert agent.stop() == 0, agent.text()
        assert set(output_lines(out)) == want
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)
