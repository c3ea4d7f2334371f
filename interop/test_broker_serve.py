"""`flumen serve` as a process: configuration errors, warnings, ready line, graceful stop;
admin through kafka-python."""
import os
import subprocess

import pytest


def test_invalid_value_refuses_to_start_naming_key_and_value(flumen_bin, tmp_path):
    out = subprocess.run([flumen_bin, "serve", "--override", f"log.dirs={tmp_path}", "--override", "num.partitions=lots"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "num.partitions" in out.stderr and "lots" in out.stderr


def test_replication_factor_other_than_one_is_refused(flumen_bin, tmp_path):
    conf = tmp_path / "server.properties"
    conf.write_text("default.replication.factor=3\n")
    out = subprocess.run([flumen_bin, "serve", str(conf)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "default.replication.factor" in out.stderr and "single node" in out.stderr


def test_unknown_key_is_a_warning_and_sigterm_stops_cleanly(broker_factory):
    b = broker_factory("no.such.key=1")
    assert "no.such.key" in b.output() and "WARN" in b.output()
    subprocess.run(["kcat", "-b", b.bootstrap, "-P", "-t", "clean"], input=b"x\n", timeout=30, check=True)
    assert b.stop() == 0
    assert "Broker stopped cleanly." in b.output()
    assert os.path.exists(os.path.join(b.data_dir, "clean-0", ".kafka_cleanshutdown"))


def test_kafka_python_admin(broker):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic("kp-admin", 2, 1, topic_configs={"cleanup.policy": "delete"})])
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic("kp-admin", 2, 1)])
        assert "kp-admin" in admin.list_topics()
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-admin", configs={"retention.ms": "60000"})])
        res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-admin")])
        entries = {e[0]: e[1] for r in res for e in r.resources[0][4]}
        assert entries["retention.ms"] == "60000"
        admin.create_partitions({"kp-admin": NewPartitions(3)})
        desc = admin.describe_topics(["kp-admin"])
        assert len(desc[0]["partitions"]) == 3
        admin.delete_topics(["kp-admin"])
        assert "kp-admin" not in admin.list_topics()
    finally:
        admin.close()
