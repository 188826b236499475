"""Shared helpers: a command that runs the echo step, and a place to keep what steps received."""

import json
import sys
from pathlib import Path

import pytest

ECHO_STEP = [sys.executable, str(Path(__file__).with_name("echo_step.py"))]


@pytest.fixture(autouse=True)
def dagster_home(tmp_path, monkeypatch):
    """Each test on its own ephemeral instance's storage, and no WANDB_* from the caller's environment."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for name in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_ENTITY", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "dagster_home").mkdir()


def received(result, asset_key):
    """What the echo step of ``asset_key`` (a string) received, from its materialization."""
    import dagster as dg

    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key == dg.AssetKey.from_user_string(asset_key):
            return json.loads(materialization.metadata["received"].value)
    raise AssertionError(f"no materialization of {asset_key}")
