"""A Pipes step in Python that hands back what it was given: its extras and whether WANDB_API_KEY reached it.

Stands in for a Rust step where the tests check what PipesWandbClient sends (the Rust side of the same extras
is tested by `cargo xtask dagster-e2e`)."""

import json
import os

from dagster_pipes import open_dagster_pipes

with open_dagster_pipes() as pipes:
    received = {"extras": pipes.extras, "api_key": os.environ.get("WANDB_API_KEY"),
                "test_variable": os.environ.get("DAGSTER_WANDB_TEST_VARIABLE"),
                "partition_key": pipes.partition_key if pipes.is_partition_step else None}
    if pipes.is_asset_step:
        for key in pipes.asset_keys:
            pipes.report_asset_materialization(asset_key=key, metadata={"received": {"raw_value": json.dumps(received),
                                                                                     "type": "text"}})
    else:
        pipes.report_custom_message(received)
