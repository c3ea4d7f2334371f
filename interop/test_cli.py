"""The binary answers --version and --help, under its own name and under tool names."""
import os
import subprocess


def test_version(flumen_bin):
    out = subprocess.run([flumen_bin, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert out.stdout.startswith("flumen ")


def test_help_lists_subcommands(flumen_bin):
    out = subprocess.run([flumen_bin, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert "serve" in out.stdout and "agent" in out.stdout


def test_invoked_as_kafka_server_start(flumen_bin, tmp_path):
    link = tmp_path / "kafka-server-start.sh"
    os.symlink(flumen_bin, link)
    out = subprocess.run([str(link), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert "server.properties" in out.stdout
