"""Shared fixtures: a real Prefect test harness (temporary API and database) and a LanceDB folder per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Before Prefect is imported: results and its database live in a scratch home, never the user's ~/.prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="docintel-test-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

import pytest  # noqa: E402

import docintel  # noqa: E402,F401  (sets the offline environment)
from docintel.settings import get_settings  # noqa: E402

from paths import SAMPLES  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


@pytest.fixture
def settings_env(monkeypatch, tmp_path):
    """Point settings at a fresh database; extra DOCINTEL_* values can be set with the returned function."""

    def apply(**values):
        for key, value in values.items():
            monkeypatch.setenv(f"DOCINTEL_{key.upper()}", str(value))
        get_settings.cache_clear()
        return get_settings()

    apply(db_uri=tmp_path / "lancedb")
    yield apply
    get_settings.cache_clear()


@pytest.fixture
def sample(tmp_path):
    """Copy a sample document into the test's folder (tests may change or rename their copies)."""

    def copy(name: str, target_name: str | None = None) -> Path:
        target = tmp_path / "inbox" / (target_name or name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLES / name, target)
        return target

    return copy
