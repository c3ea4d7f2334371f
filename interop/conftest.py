"""Shared fixtures for interop tests: they drive the built `flumen` binary with real clients."""
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def flumen_bin() -> str:
    """Path of the built binary (FLUMEN_BIN, else target/release/flumen)."""
    path = os.environ.get("FLUMEN_BIN") or str(ROOT / "target" / "release" / "flumen")
    if not os.path.exists(path):
        pytest.fail(f"flumen binary not found at {path}: run ./scripts/test")
    return path
