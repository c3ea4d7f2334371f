"""Connect REST API additions through the real binary and a real `flumen serve`: PATCH of a
config, offsets altered and reset while STOPPED (with Kafka's messages), topic tracking,
`?expand=`, per-task status and restart, plugin validation, and a FileStreamSink with
`tasks.max=2` writing whole lines to one file."""
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from connect_helpers import Connect, read_lines, wait_for


def start(flumen_bin, tmp_path, broker):
    connect = Connect(flumen_bin, tmp_path, broker.bootstrap, with_source=False, with_sink=False,
                      worker_changes={"offset_flush_interval_ms": "500"})
    return connect.start()


def test_offsets_patch_and_reset_while_stopped(broker, flumen_bin, tmp_path):
    connect = start(flumen_bin, tmp_path, broker)
    try:
        src = tmp_path / "in.txt"
        src.write_text("a\nb\nc\n")
        out = tmp_path / "out.txt"
        code, body, _ = connect.request("POST", "/connectors", {
            "name": "src", "config": {"connector.class": "FileStreamSource", "file": str(src),
                                      "topic": "rest-offsets"}})
        assert code == 201, body
        code, body, _ = connect.request("POST", "/connectors", {
            "name": "sink", "config": {"connector.class": "FileStreamSink", "file": str(out),
                                       "topics": "rest-offsets"}})
        assert code == 201, body
        wait_for(lambda: read_lines(out) == ["a", "b", "c"], 30, "the three lines")
        # Offsets may change only when STOPPED (Kafka's message).
        code, body, _ = connect.request("DELETE", "/connectors/src/offsets")
        assert code == 400 and body["message"].startswith(
            "Connectors must be in the STOPPED state before their offsets can be modified."), body
        assert body["error_code"] == 400
        assert connect.request("PUT", "/connectors/src/stop")[0] == 204
        assert connect.request("PUT", "/connectors/sink/stop")[0] == 204
        wait_for(lambda: connect.get("/connectors/src/offsets")["offsets"] ==
                 [{"partition": {"filename": str(src)}, "offset": {"position": 6}}], 10, "source offsets")
        # The source starts again from byte 4 ("c"), the sink from the topic's offset 1 ("b").
        code, body, _ = connect.request("PATCH", "/connectors/src/offsets", {
            "offsets": [{"partition": {"filename": str(src)}, "offset": {"position": 4}}]})
        assert code == 200 and body == {"message": "The offsets for this connector have been altered successfully"}
        code, body, _ = connect.request("PATCH", "/connectors/sink/offsets", {
            "offsets": [{"partition": {"kafka_topic": "rest-offsets", "kafka_partition": 0},
                         "offset": {"kafka_offset": 1}}]})
        assert code == 200, body
        code, body, _ = connect.request("PATCH", "/connectors/sink/offsets", {
            "offsets": [{"partition": {"kafka_topic": "rest-offsets"}, "offset": {"kafka_offset": 1}}]})
        assert code == 400 and "kafka_partition" in body["message"], body
        assert connect.get("/connectors/sink/offsets")["offsets"] == [
            {"partition": {"kafka_topic": "rest-offsets", "kafka_partition": 0}, "offset": {"kafka_offset": 1}}]
        assert connect.request("PUT", "/connectors/sink/resume")[0] == 202
        assert connect.request("PUT", "/connectors/src/resume")[0] == 202
        # The sink re-reads b, c; the source re-sends c, which the sink writes too.
        wait_for(lambda: read_lines(out) == ["a", "b", "c", "b", "c", "c"], 30, "re-read records")
        # DELETE resets both: the sink reads the topic again from its start.
        assert connect.request("PUT", "/connectors/sink/stop")[0] == 204
        code, body, _ = connect.request("DELETE", "/connectors/sink/offsets")
        assert code == 200 and body == {"message": "The offsets for this connector have been reset successfully"}
        assert connect.get("/connectors/sink/offsets") == {"offsets": []}
        assert connect.request("PUT", "/connectors/sink/resume")[0] == 202
        wait_for(lambda: len(read_lines(out)) == 10, 30, "the topic read again from its start")
        assert read_lines(out)[6:] == ["a", "b", "c", "c"]
    finally:
        connect.kill()


def test_patch_config_topics_expand_tasks_and_validate(broker, flumen_bin, tmp_path):
    connect = start(flumen_bin, tmp_path, broker)
    try:
        src = tmp_path / "in.txt"
        src.write_text("one\n")
        code, body, _ = connect.request("POST", "/connectors", {
            "name": "src", "config": {"connector.class": "FileStreamSource", "file": str(src),
                                      "topic": "rest-t1"}})
        assert code == 201, body
        wait_for(lambda: connect.get("/connectors/src/topics") == {"src": {"topics": ["rest-t1"]}},
                 30, "topic tracked")
        assert connect.request("PUT", "/connectors/src/topics/reset")[0] == 202
        assert connect.get("/connectors/src/topics") == {"src": {"topics": []}}
        # PATCH (Kafka 3.8+): merge, null removes; the connector restarts with the new topic.
        code, body, _ = connect.request("PATCH", "/connectors/src/config",
                                        {"topic": "rest-t2", "batch.size": None})
        assert code == 200 and body["config"]["topic"] == "rest-t2" and "batch.size" not in body["config"], body
        with open(src, "a") as f:
            f.write("two\n")
        wait_for(lambda: connect.get("/connectors/src/topics") == {"src": {"topics": ["rest-t2"]}},
                 30, "new topic tracked")
        code, body, _ = connect.request("PATCH", "/connectors/nope/config", {"topic": "x"})
        assert code == 404 and body == {"error_code": 404, "message": "Connector nope not found"}
        # ?expand=status&expand=info
        both = connect.get("/connectors?expand=status&expand=info")
        assert set(both) == {"src"}
        assert both["src"]["status"]["connector"]["state"] == "RUNNING"
        assert both["src"]["info"]["config"]["topic"] == "rest-t2"
        only = connect.get("/connectors?expand=status")
        assert set(only["src"]) == {"status"}
        # Per-task status and restart.
        st = connect.get("/connectors/src/tasks/0/status")
        assert st["id"] == 0 and st["state"] == "RUNNING" and st["worker_id"]
        code, body, _ = connect.request("GET", "/connectors/src/tasks/3/status")
        assert code == 404 and body["message"] == "Task src-3 not found"
        assert connect.request("POST", "/connectors/src/tasks/0/restart")[0] == 204
        wait_for(lambda: connect.get("/connectors/src/tasks/0/status")["state"] == "RUNNING", 10, "restarted")
        # Validation.
        code, body, _ = connect.request("PUT", "/connector-plugins/FileStreamSinkConnector/config/validate",
                                        {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                                         "name": "v", "topics": "a", "topics.regex": "b.*"})
        assert code == 200, body
        assert body["name"] == "org.apache.kafka.connect.file.FileStreamSinkConnector"
        assert body["error_count"] == 2 and "Common" in body["groups"]
        by = {c["value"]["name"]: c for c in body["configs"]}
        assert by["topics"]["value"]["errors"] and by["topics.regex"]["value"]["errors"]
        assert by["tasks.max"]["definition"]["default_value"] == "1"
        code, body, _ = connect.request("PUT", "/connector-plugins/FileStreamSource/config/validate",
                                        {"connector.class": "FileStreamSink"})
        assert code == 400 and "does not match" in body["message"]
    finally:
        connect.kill()


def test_sink_with_two_tasks_writes_whole_lines(broker, flumen_bin, tmp_path):
    topic = "rest-two-tasks"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    want = []
    for i in range(4000):
        line = f"line-{i:05d}-" + "x" * (i % 97)
        want.append(line)
        p.produce(topic, line.encode(), partition=i % 4)
    assert p.flush(30) == 0
    connect = start(flumen_bin, tmp_path, broker)
    try:
        out = tmp_path / "out.txt"
        code, body, _ = connect.request("POST", "/connectors", {
            "name": "two", "config": {"connector.class": "FileStreamSink", "file": str(out),
                                      "topics": topic, "tasks.max": "2",
                                      "value.converter": "org.apache.kafka.connect.storage.StringConverter"}})
        assert code == 201, body
        assert body["tasks"] == [{"connector": "two", "task": 0}, {"connector": "two", "task": 1}]
        wait_for(lambda: len(read_lines(out)) >= len(want), 60, "every line")
        assert sorted(read_lines(out)) == sorted(want)
        st = connect.get("/connectors/two/status")
        assert [t["id"] for t in st["tasks"]] == [0, 1]
        assert len(connect.get("/connectors/two/tasks")) == 2
    finally:
        connect.kill()
