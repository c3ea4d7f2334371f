"""Kafka Connect standalone through the real binary and a real `flumen serve`: the seed's
web-log lesson (configs as typed, only hosts, ports and paths moved to the test folder)."""
import json
import os
import shutil

from confluent_kafka import Consumer, TopicPartition

from connect_helpers import SEED, Connect, read_lines, wait_for


def seed_lines():
    return (SEED / "access_log_small.txt").read_text().splitlines()


def topic_values(bootstrap, topic, count, timeout=60.0):
    """The first `count` record values of partition 0 of `topic`, read directly."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "connect-test-reader",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        out = []
        import time
        deadline = time.time() + timeout
        while len(out) < count and time.time() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                out.append((m.key(), m.value()))
        return out
    finally:
        c.close()


def test_seed_lesson_tails_the_log_into_one_file(broker, flumen_bin, tmp_path):
    lines = seed_lines()
    shutil.copy(SEED / "access_log_small.txt", tmp_path / "access_log_small.txt")
    connect = Connect(flumen_bin, tmp_path, broker.bootstrap).start()
    try:
        wait_for(lambda: read_lines(connect.out) == lines, 60, "the access log in logout.txt")

        # The REST API answers as Kafka's does.
        assert connect.get("/connectors") == ["local-file-sink", "local-file-source"]
        st = connect.get("/connectors/local-file-source/status")
        assert st["connector"]["state"] == "RUNNING" and st["type"] == "source"
        assert st["tasks"][0]["state"] == "RUNNING" and st["tasks"][0]["id"] == 0
        info = connect.get("/connectors/local-file-sink")
        assert info["config"]["topics"] == "log-test" and info["type"] == "sink"
        assert info["tasks"] == [{"connector": "local-file-sink", "task": 0}]
        assert "version" in connect.get("/") and "kafka_cluster_id" in connect.get("/")
        classes = {p["class"] for p in connect.get("/connector-plugins")}
        assert "org.apache.kafka.connect.file.FileStreamSourceConnector" in classes
        code, body, _ = connect.request("GET", "/connectors/nope")
        assert code == 404 and body == {"error_code": 404, "message": "Connector nope not found"}

        # The topic holds JsonConverter envelopes (schemas.enable=true in the seed worker file).
        got = topic_values(broker.bootstrap, "log-test", 2)
        assert got[0][0] is None
        assert got[0][1] == json.dumps({"schema": {"type": "string", "optional": False},
                                        "payload": lines[0]}, separators=(",", ":")).encode()

        # Appended lines arrive; a partial last line waits for its newline.
        with open(connect.access_log, "a") as f:
            f.write("appended one\nappended two\n")
        wait_for(lambda: read_lines(connect.out)[-2:] == ["appended one", "appended two"], 60,
                 "appended lines")
        with open(connect.access_log, "a") as f:
            f.write("partial")
        import time
        time.sleep(1.0)
        assert "partial" not in read_lines(connect.out)
        with open(connect.access_log, "a") as f:
            f.write(" line\n")
        wait_for(lambda: read_lines(connect.out)[-1:] == ["partial line"], 60, "completed line")
        assert connect.stop() == 0

        # A clean restart resumes from the stored positions: nothing twice, nothing lost.
        offsets = (tmp_path / "connect.offsets").read_text()
        assert "local-file-source" in offsets and "local-file-sink" in offsets
        with open(connect.access_log, "a") as f:
            f.write("after restart\n")
        connect.start()
        expected = lines + ["appended one", "appended two", "partial line", "after restart"]
        wait_for(lambda: read_lines(connect.out) == expected, 60, "the line written while stopped")
        time.sleep(1.0)
        assert read_lines(connect.out) == expected
        offs = connect.get("/connectors/local-file-source/offsets")["offsets"]
        assert offs[0]["partition"] == {"filename": str(connect.access_log)}
    finally:
        connect.kill()


def test_string_converter_rotation_and_late_file(broker, flumen_bin, tmp_path):
    conv = "org.apache.kafka.connect.storage.StringConverter"
    connect = Connect(flumen_bin, tmp_path, broker.bootstrap,
                      worker_changes={"key_converter": conv, "value_converter": conv},
                      source_changes={"topic": "rot"}, sink_changes={"topics": "rot"}).start()
    try:
        # The log does not exist yet: the source waits for it.
        wait_for(lambda: "sleeping to wait for it to be created" in connect.text(), 60, "the wait warning")
        connect.access_log.write_text("one\ntwo\n")
        wait_for(lambda: read_lines(connect.out) == ["one", "two"], 60, "the first lines")
        assert topic_values(broker.bootstrap, "rot", 1)[0][1] == b"one"
        # Rotation (rename + create), as logrotate does it.
        os.rename(connect.access_log, tmp_path / "access_log_small.txt.1")
        connect.access_log.write_text("three\n")
        wait_for(lambda: read_lines(connect.out) == ["one", "two", "three"], 60, "the rotated file")
        # Truncation in place.
        with open(connect.access_log, "w") as f:
            f.write("4\n")
        wait_for(lambda: read_lines(connect.out) == ["one", "two", "three", "4"], 60, "after truncation")
    finally:
        connect.kill()


def test_rest_lifecycle(broker, flumen_bin, tmp_path):
    # Started under Kafka's tool name, with no connector file (allowed since Kafka 3.4).
    link = tmp_path / "connect-standalone.sh"
    link.symlink_to(os.path.abspath(flumen_bin))
    connect = Connect(flumen_bin, tmp_path, broker.bootstrap, with_source=False, with_sink=False)
    connect.start(argv0=str(link))
    try:
        assert connect.get("/connectors") == []
        src = tmp_path / "in.txt"
        src.write_text("x\ny\n")
        code, body, headers = connect.request("POST", "/connectors", {
            "name": "rest-src", "config": {"connector.class": "FileStreamSource", "file": str(src),
                                           "topic": "rest-topic"}})
        assert code == 201, body
        assert headers.get("Location") == "/connectors/rest-src"
        assert body["name"] == "rest-src" and body["type"] == "source"
        code, body, _ = connect.request("POST", "/connectors", {
            "name": "rest-src", "config": {"connector.class": "FileStreamSource", "topic": "t"}})
        assert code == 409 and body["message"] == "Connector rest-src already exists"
        code, body, _ = connect.request("POST", "/connectors", {
            "name": "bad", "config": {"connector.class": "FileStreamSource"}})
        assert code == 400 and "topic" in body["message"]
        sink_out = tmp_path / "rest-out.txt"
        code, body, _ = connect.request("PUT", "/connectors/rest-sink/config", {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "topics": "rest-topic", "file": str(sink_out)})
        assert code == 201, body
        wait_for(lambda: read_lines(sink_out) == ["x", "y"], 60, "records through REST-created connectors")
        assert connect.request("PUT", "/connectors/rest-src/pause")[0] == 202
        wait_for(lambda: connect.get("/connectors/rest-src/status")["tasks"][0]["state"] == "PAUSED", 60, "PAUSED")
        assert connect.request("PUT", "/connectors/rest-src/resume")[0] == 202
        tasks = connect.get("/connectors/rest-sink/tasks")
        assert tasks[0]["id"] == {"connector": "rest-sink", "task": 0}
        assert connect.request("PUT", "/connectors/rest-src/stop")[0] == 204
        assert connect.get("/connectors/rest-src/status")["connector"]["state"] == "STOPPED"
        offs = connect.get("/connectors/rest-src/offsets")["offsets"]
        assert offs == [{"partition": {"filename": str(src)}, "offset": {"position": 4}}]
        assert connect.request("POST", "/connectors/rest-sink/restart")[0] == 204
        assert connect.request("DELETE", "/connectors/rest-src")[0] == 204
        assert connect.request("DELETE", "/connectors/rest-src")[0] == 404
        assert connect.get("/connectors") == ["rest-sink"]
    finally:
        connect.kill()


def test_bad_connector_exits_3(broker, flumen_bin, tmp_path):
    connect = Connect(flumen_bin, tmp_path, broker.bootstrap, sink_changes={"topics": ""})
    connect.start(wait=False)
    try:
        connect.proc.wait(timeout=20)
        assert connect.proc.returncode == 3, connect.text()
        assert "Must configure one of topics or topics.regex" in connect.text()
    finally:
        connect.kill()


def test_kill_9_is_at_least_once(broker, flumen_bin, tmp_path):
    lines = seed_lines()
    shutil.copy(SEED / "access_log_small.txt", tmp_path / "access_log_small.txt")
    connect = Connect(flumen_bin, tmp_path, broker.bootstrap,
                      worker_changes={"offset_flush_interval_ms": "200"}).start()
    try:
        wait_for(lambda: read_lines(connect.out) == lines, 60, "the access log in logout.txt")
        connect.kill()
        with open(connect.access_log, "a") as f:
            f.write("after the crash\n")
        connect.start()
        wait_for(lambda: read_lines(connect.out)[-1:] == ["after the crash"], 60, "the line written while down")
        out = read_lines(connect.out)
        # Every line at least once; anything repeated is a tail of what was in flight.
        assert set(lines) | {"after the crash"} == set(out)
        assert out[:len(lines)] == lines
    finally:
        connect.kill()
