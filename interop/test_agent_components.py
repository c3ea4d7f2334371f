"""Agent components end to end through the real binary: file_roll, spooldir, interceptors,
multiplexing, failover, monitoring, graceful drain."""
import json
import shutil
import urllib.request

from agent_helpers import Agent, free_port, netcat_lines, read_dir, wait_until


def netcat_head(port, channels="c1"):
    return (f"a1.sources = r1\na1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\n"
            f"a1.sources.r1.port = {port}\na1.sources.r1.channels = {channels}\n")


def memory(name="c1"):
    return f"a1.channels.{name}.type = memory\na1.channels.{name}.capacity = 10000\na1.channels.{name}.transactionCapacity = 1000\n"


def file_roll(name, channel, directory, extra=""):
    return (f"a1.sinks.{name}.type = file_roll\na1.sinks.{name}.channel = {channel}\n"
            f"a1.sinks.{name}.sink.directory = {directory}\na1.sinks.{name}.sink.rollInterval = 0\n{extra}")


def test_netcat_interceptors_file_roll_header_and_text(flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    conf = (netcat_head(port) + "a1.channels = c1\na1.sinks = k1\n" + memory()
            + "a1.sources.r1.interceptors = s x\n"
            + "a1.sources.r1.interceptors.s.type = static\na1.sources.r1.interceptors.s.key = dc\n"
            + "a1.sources.r1.interceptors.s.value = eu-1\n"
            + "a1.sources.r1.interceptors.x.type = regex_extractor\n"
            + "a1.sources.r1.interceptors.x.regex = ^(\\\\w+)\n"
            + "a1.sources.r1.interceptors.x.serializers = w\n"
            + "a1.sources.r1.interceptors.x.serializers.w.name = first\n"
            + file_roll("k1", "c1", out, "a1.sinks.k1.sink.serializer = header_and_text\n"))
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(port)
        assert netcat_lines(port, [b"alpha one\n", b"beta two\n"]) == b"OK\nOK\n"
        want = "{dc=eu-1, first=alpha} alpha one\n{dc=eu-1, first=beta} beta two\n"
        wait_until(lambda: read_dir(out) == want, what=f"file_roll output {want!r}, got {read_dir(out)!r}")
        names = [p.name for p in out.iterdir()]
        assert len(names) == 1 and names[0].endswith("-1"), names
    finally:
        assert agent.stop() == 0


def test_spooldir_to_file_roll_with_edge_cases(flumen_bin, tmp_path):
    spool, out = tmp_path / "spool", tmp_path / "out"
    spool.mkdir()
    out.mkdir()
    (spool / "a.log").write_text("one\ntwo\nthree")  # last line without newline
    (spool / "empty.log").write_text("")
    (spool / "skip.tmp").write_text("ignored\n")
    conf = ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            f"a1.sources.r1.type = spooldir\na1.sources.r1.spoolDir = {spool}\n"
            "a1.sources.r1.ignorePattern = .*\\\\.tmp\na1.sources.r1.basenameHeader = true\n"
            "a1.sources.r1.pollDelay = 50\na1.sources.r1.channels = c1\n" + memory()
            + file_roll("k1", "c1", out, "a1.sinks.k1.sink.serializer = header_and_text\n"))
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        wait_until(lambda: (spool / "a.log.COMPLETED").exists() and (spool / "empty.log.COMPLETED").exists(),
                   what="files completed")
        want = {"{basename=a.log} one", "{basename=a.log} two", "{basename=a.log} three", "{basename=empty.log} "}
        wait_until(lambda: set(read_dir(out).splitlines()) == want, what="spooled lines")
        assert (spool / "skip.tmp").exists()
        # A name re-used after completion: quarantined, and the source carries on.
        (spool / "a.log").write_text("again\n")
        (spool / "b.log").write_text("bee\n")
        wait_until(lambda: (spool / "a.log.QUARANTINED").exists(), what="quarantine")
        wait_until(lambda: (spool / "b.log.COMPLETED").exists(), what="next file after quarantine")
        agent.wait_log("File name has been re-used with different files")
        wait_until(lambda: "{basename=b.log} bee" in read_dir(out), what="b.log ingested")
    finally:
        assert agent.stop() == 0


def test_multiplexing_by_header(flumen_bin, tmp_path):
    out_ca, out_other = tmp_path / "ca", tmp_path / "other"
    out_ca.mkdir()
    out_other.mkdir()
    port = free_port()
    conf = (netcat_head(port, "c1 c2") + "a1.channels = c1 c2\na1.sinks = k1 k2\n" + memory("c1") + memory("c2")
            + "a1.sources.r1.interceptors = x\na1.sources.r1.interceptors.x.type = regex_extractor\n"
            + "a1.sources.r1.interceptors.x.regex = ^([A-Z]+):\na1.sources.r1.interceptors.x.serializers = s\n"
            + "a1.sources.r1.interceptors.x.serializers.s.name = state\n"
            + "a1.sources.r1.selector.type = multiplexing\na1.sources.r1.selector.header = state\n"
            + "a1.sources.r1.selector.mapping.CA = c1\na1.sources.r1.selector.default = c2\n"
            + file_roll("k1", "c1", out_ca) + file_roll("k2", "c2", out_other))
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(port)
        assert netcat_lines(port, [b"CA:sf\n", b"NY:nyc\n", b"no header\n", b"CA:la\n"]) == b"OK\n" * 4
        wait_until(lambda: read_dir(out_ca) == "CA:sf\nCA:la\n", what="CA lines")
        wait_until(lambda: read_dir(out_other) == "NY:nyc\nno header\n", what="other lines")
    finally:
        assert agent.stop() == 0


def test_failover_when_a_sink_fails(flumen_bin, tmp_path):
    d1, d2 = tmp_path / "primary", tmp_path / "backup"
    d1.mkdir()
    d2.mkdir()
    port = free_port()
    conf = (netcat_head(port) + "a1.channels = c1\na1.sinks = k1 k2\n" + memory()
            + file_roll("k1", "c1", d1).replace("rollInterval = 0", "rollInterval = 1")
            + file_roll("k2", "c1", d2)
            + "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = failover\n"
            + "a1.sinkgroups.g1.processor.priority.k1 = 10\na1.sinkgroups.g1.processor.priority.k2 = 5\n")
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(port)
        assert netcat_lines(port, [b"first\n"]) == b"OK\n"
        wait_until(lambda: read_dir(d1) == "first\n", what="primary sink gets the event")
        shutil.rmtree(d1)  # k1's next roll (every second) fails: it is parked, k2 takes over
        agent.wait_log("Sink failed and has been sent to failover list", timeout=60)
        assert netcat_lines(port, [b"second\n", b"third\n"]) == b"OK\nOK\n"
        wait_until(lambda: read_dir(d2) == "second\nthird\n", timeout=60, what="backup sink gets the events")
    finally:
        assert agent.stop() == 0


def test_monitoring_json_and_prometheus(flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mport = free_port()
    conf = ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            "a1.sources.r1.type = seq\na1.sources.r1.totalEvents = 250\na1.sources.r1.batchSize = 50\n"
            "a1.sources.r1.channels = c1\n" + memory() + file_roll("k1", "c1", out))
    agent = Agent(flumen_bin, tmp_path, conf,
                  extra=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
    try:
        agent.wait_port(mport)

        def metrics():
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
                assert r.headers["Content-Type"].startswith("application/json")
                return json.load(r)

        m = wait_until(lambda: (lambda m: m if m["SINK.k1"]["EventDrainSuccessCount"] == "250" else None)(metrics()),
                       what="all events drained")
        assert m["SOURCE.r1"]["EventAcceptedCount"] == "250"
        assert m["SOURCE.r1"]["Type"] == "SOURCE"
        assert m["CHANNEL.c1"]["EventPutSuccessCount"] == "250"
        assert m["CHANNEL.c1"]["ChannelCapacity"] == "10000"
        assert m["CHANNEL.c1"]["ChannelSize"] == "0"
        assert m["CHANNEL.c1"]["ChannelFillPercentage"] == "0.0"
        assert m["SINK.k1"]["StopTime"] == "0"
        assert all(isinstance(v, str) for group in m.values() for v in group.values())
        req = urllib.request.Request(f"http://127.0.0.1:{mport}/metrics", headers={"Accept": "text/plain"})
        with urllib.request.urlopen(req, timeout=5) as r:
            text = r.read().decode()
        assert 'flume_channel_event_put_success_count{component="c1"} 250' in text
        assert len(read_dir(out).splitlines()) == 250
    finally:
        assert agent.stop() == 0


def test_sigterm_drains_the_channel(flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    # A slow-to-start sink: events wait in the channel until SIGTERM lets the sink drain them.
    conf = (netcat_head(port) + "a1.channels = c1\na1.sinks = k1\n" + memory() + file_roll("k1", "c1", out))
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(port)
        assert netcat_lines(port, [b"x%d\n" % i for i in range(300)]) == b"OK\n" * 300
    finally:
        assert agent.stop() == 0
    assert len(read_dir(out).splitlines()) == 300


def test_reload_on_change(flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    base = (netcat_head(port) + "a1.channels = c1\na1.sinks = k1\n" + memory()
            + file_roll("k1", "c1", out, "a1.sinks.k1.sink.serializer = header_and_text\n"))
    agent = Agent(flumen_bin, tmp_path, base, extra=["--poll-interval", "1"])
    try:
        agent.wait_port(port)
        assert netcat_lines(port, [b"before\n"]) == b"OK\n"
        wait_until(lambda: read_dir(out) == "{} before\n", what="first event")
        agent.conf.write_text(base + "a1.sources.r1.interceptors = s\na1.sources.r1.interceptors.s.type = static\n"
                              "a1.sources.r1.interceptors.s.key = v\na1.sources.r1.interceptors.s.value = 2\n")
        agent.wait_log("Reusing Channel c1", timeout=60)
        agent.wait_port(port)
        assert netcat_lines(port, [b"after\n"]) == b"OK\n"
        wait_until(lambda: "{v=2} after\n" in read_dir(out), what="event through the reloaded config")
    finally:
        assert agent.stop() == 0


def test_load_balance_round_robin(flumen_bin, tmp_path):
    d1, d2 = tmp_path / "k1", tmp_path / "k2"
    d1.mkdir()
    d2.mkdir()
    port = free_port()
    conf = (netcat_head(port) + "a1.channels = c1\na1.sinks = k1 k2\n" + memory()
            + file_roll("k1", "c1", d1, "a1.sinks.k1.sink.batchSize = 1\n")
            + file_roll("k2", "c1", d2, "a1.sinks.k2.sink.batchSize = 1\n")
            + "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = load_balance\n"
            + "a1.sinkgroups.g1.processor.selector = round_robin\n")
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(port)
        lines = [b"e%d\n" % i for i in range(20)]
        assert netcat_lines(port, lines) == b"OK\n" * 20
        wait_until(lambda: len((read_dir(d1) + read_dir(d2)).split()) == 20, what="all events delivered")
        assert read_dir(d1) and read_dir(d2), "both sinks got events"
    finally:
        assert agent.stop() == 0


def test_spooldir_tracker_dir_and_youngest_first(flumen_bin, tmp_path):
    import os
    spool, out = tmp_path / "spool", tmp_path / "out"
    spool.mkdir()
    out.mkdir()
    (spool / "old.log").write_text("old\n")
    os.utime(spool / "old.log", (1_000_000, 1_000_000))
    (spool / "new.log").write_text("new\n")
    conf = ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            f"a1.sources.r1.type = spooldir\na1.sources.r1.spoolDir = {spool}\n"
            "a1.sources.r1.trackingPolicy = tracker_dir\na1.sources.r1.consumeOrder = youngest\n"
            "a1.sources.r1.pollDelay = 50\na1.sources.r1.channels = c1\n" + memory() + file_roll("k1", "c1", out))
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        tracker = spool / ".flumespool"
        wait_until(lambda: (tracker / "old.log.COMPLETED").exists() and (tracker / "new.log.COMPLETED").exists(),
                   what="tracker markers")
        wait_until(lambda: read_dir(out) == "new\nold\n", what="youngest first")
        assert (spool / "old.log").exists() and (spool / "new.log").exists()  # not renamed
    finally:
        assert agent.stop() == 0
