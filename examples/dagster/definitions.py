"""Dagster definitions whose assets are Rust steps that version their data in W&B.

Run from the repository root (the store is selected by WANDB_BASE_URL; ``file:///dir`` is an embedded store):

    export DAGSTER_HOME=$PWD/target/dagster-home WANDB_BASE_URL=file://$PWD/target/example-store
    mkdir -p $DAGSTER_HOME
    dagster asset materialize -f examples/dagster/definitions.py --select 'group:wandb_example'
    for day in 2024-01-01 2024-01-02 2024-01-03; do
        dagster asset materialize -f examples/dagster/definitions.py --select daily_readings --partition $day
    done
    dagster asset materialize -f examples/dagster/definitions.py --select readings_summary

Each asset launches the example binary ``dagster_step`` through ``PipesSubprocessClient`` (with
``cargo run``, or the binary named by ``DAGSTER_WANDB_STEP_BIN``) and passes what dagster-wandb would read from
its resources and from ``wandb_artifact_configuration`` metadata as Pipes extras.
"""

import os
import sys
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from line_safe_reader import LineSafeFileMessageReader  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[2]


def step_command(step: str) -> list[str]:
    """The command that runs one Rust step."""
    binary = os.environ.get("DAGSTER_WANDB_STEP_BIN")
    if binary:
        return [binary, step]
    return ["cargo", "run", "--quiet", "--manifest-path", str(REPOSITORY / "Cargo.toml"),
            "-p", "examples", "--example", "dagster_step", "--", step]


def wandb_extras(**more) -> dict:
    """The W&B entity and project (dagster-wandb's ``wandb_config`` resource), plus per-step settings."""
    return {
        "wandb_config": {
            "entity": os.environ.get("WANDB_ENTITY", "dagster"),
            "project": os.environ.get("WANDB_PROJECT", "dagster-wandb-example"),
        },
        **more,
    }


@dg.asset(group_name="wandb_example", kinds={"rust", "wandb"}, )
def raw_numbers(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
    """Ten numbers and their squares, as a W&B Table."""
    extras = wandb_extras(outputs={"raw_numbers": {"wandb_artifact_configuration": {
        "type": "dataset", "description": "Numbers and their squares", "aliases": ["example"]}}})
    return pipes_subprocess_client.run(
        command=step_command("raw-numbers"), context=context, extras=extras).get_materialize_result()


@dg.asset(group_name="wandb_example", kinds={"rust", "wandb"}, deps=[raw_numbers],
          check_specs=[dg.AssetCheckSpec("has_rows", asset="number_stats")])
def number_stats(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
    """Statistics over ``raw_numbers``, loaded from its artifact."""
    extras = wandb_extras(
        inputs={"raw_numbers": {"asset_key": "raw_numbers", "wandb_artifact_configuration": {"get": "Table"}}},
        outputs={"number_stats": {"wandb_artifact_configuration": {"type": "statistics"}}},
    )
    yield from pipes_subprocess_client.run(
        command=step_command("number-stats"), context=context, extras=extras).get_results()


daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


@dg.asset(group_name="wandb_partitioned", kinds={"rust", "wandb"}, partitions_def=daily)
def daily_readings(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
    """One day's hourly readings; the artifact is ``daily_readings.<day>``."""
    extras = wandb_extras(outputs={"daily_readings": {"wandb_artifact_configuration": {"type": "readings"}}})
    return pipes_subprocess_client.run(
        command=step_command("daily-readings"), context=context, extras=extras).get_materialize_result()


@dg.asset(group_name="wandb_partitioned", kinds={"rust", "wandb"}, deps=[daily_readings])
def readings_summary(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
    """The maximum of every day, reading all partitions of ``daily_readings`` at once."""
    extras = wandb_extras(
        inputs={"daily_readings": {
            "asset_key": "daily_readings",
            "partition_keys": daily.get_partition_keys(),
            "wandb_artifact_configuration": {"partitions": {"*": {"alias": "latest"}}},
        }},
        outputs={"readings_summary": {"wandb_artifact_configuration": {"type": "summary"}}},
    )
    return pipes_subprocess_client.run(
        command=step_command("readings-summary"), context=context, extras=extras).get_materialize_result()


@dg.asset(group_name="wandb_launch", kinds={"rust", "wandb"})
def launched_training(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
    """dagster-wandb's run_launch_job, synchronous: the training job goes to a W&B Launch queue, an agent runs it
    (`dagster-wandb launch agent --queue default`), and the asset waits for its run. Needs a W&B server:
    DAGSTER_WANDB_LAUNCH_URL (e.g. `dagster-wandb server`) and the job DAGSTER_WANDB_LAUNCH_JOB."""
    extras = wandb_extras(
        wandb_resource={"host": os.environ["DAGSTER_WANDB_LAUNCH_URL"], "api_key": {"env": "WANDB_API_KEY"}},
        op_config={
            "job": os.environ.get("DAGSTER_WANDB_LAUNCH_JOB", "dagster/dagster-wandb-example/train-job:latest"),
            "queue": "default",
            "resource": "local-process",
            "config": {"overrides": {"run_config": {"epochs": 3}}},
            "synchronous": True,
        },
    )
    return pipes_subprocess_client.run(
        command=step_command("launch-training"), context=context, extras=extras).get_materialize_result()


defs = dg.Definitions(
    assets=[raw_numbers, number_stats, daily_readings, readings_summary, launched_training],
    resources={"pipes_subprocess_client": dg.PipesSubprocessClient(message_reader=LineSafeFileMessageReader())},
)
