"""Dagster definitions whose assets are Rust steps that version their data in W&B, written the dagster-wandb way:
W&B configured once, as a resource, and each artifact described in its asset's metadata.

Install the companion (``pip install ./python``), then, from the repository root (the store is selected by
WANDB_BASE_URL; ``file:///dir`` is an embedded store, ``http://…`` a W&B server or ``dagster-wandb server``):

    export DAGSTER_HOME=$PWD/target/dagster-home WANDB_BASE_URL=file://$PWD/target/example-store
    mkdir -p $DAGSTER_HOME
    dagster asset materialize -f examples/dagster/definitions.py --select 'group:wandb_example'
    for day in 2024-01-01 2024-01-02 2024-01-03; do
        dagster asset materialize -f examples/dagster/definitions.py --select daily_readings --partition $day
    done
    dagster asset materialize -f examples/dagster/definitions.py --select readings_summary

The launch jobs, dagster-wandb's ``run_launch_agent`` and ``run_launch_job`` ops, need a W&B server
(DAGSTER_WANDB_LAUNCH_URL, e.g. ``dagster-wandb server``), a job (``dagster-wandb launch create-job``) and the
``dagster-wandb`` binary (on the PATH, or DAGSTER_WANDB_BIN). The agent serves the queue the launch pushes to:

    dagster job execute -f examples/dagster/definitions.py -j launch_agent &   # until the run is terminated
    # train.yaml: ops: {train: {config: {job: ENTITY/PROJECT/train-job:latest, queue: default}}}
    dagster job execute -f examples/dagster/definitions.py -j train_on_launch -c train.yaml

Each asset runs the example binary ``dagster_step`` (with ``cargo run``, or the binary named by
``DAGSTER_WANDB_STEP_BIN``) through ``PipesWandbClient``, which hands it the resource's settings, the
``wandb_artifact_configuration`` of the asset and of its inputs, and the upstream partitions to read.
"""

import os
from pathlib import Path

import dagster as dg
from dagster_wandb_rust import PipesWandbClient, run_launch_agent, run_launch_job

REPOSITORY = Path(__file__).resolve().parents[2]


def step_command(step: str) -> list[str]:
    """The command that runs one Rust step."""
    binary = os.environ.get("DAGSTER_WANDB_STEP_BIN")
    if binary:
        return [binary, step]
    return ["cargo", "run", "--quiet", "--manifest-path", str(REPOSITORY / "Cargo.toml"),
            "-p", "examples", "--example", "dagster_step", "--", step]


@dg.asset(
    group_name="wandb_example", kinds={"rust", "wandb"},
    metadata={"wandb_artifact_configuration": {
        "type": "dataset", "description": "Numbers and their squares", "aliases": ["example"]}},
)
def raw_numbers(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    """Ten numbers and their squares, as a W&B Table."""
    return wandb.run(command=step_command("raw-numbers"), context=context).get_materialize_result()


@dg.asset(
    group_name="wandb_example", kinds={"rust", "wandb"},
    ins={"raw_numbers": dg.AssetIn(dagster_type=dg.Nothing,
                                   metadata={"wandb_artifact_configuration": {"get": "Table"}})},
    metadata={"wandb_artifact_configuration": {"type": "statistics"}},
    check_specs=[dg.AssetCheckSpec("has_rows", asset="number_stats")],
)
def number_stats(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    """Statistics over ``raw_numbers``, loaded from its artifact by the Rust step."""
    yield from wandb.run(command=step_command("number-stats"), context=context).get_results()


daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


@dg.asset(group_name="wandb_partitioned", kinds={"rust", "wandb"}, partitions_def=daily,
          metadata={"wandb_artifact_configuration": {"type": "readings"}})
def daily_readings(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    """One day's hourly readings; the artifact is ``daily_readings.<day>``."""
    return wandb.run(command=step_command("daily-readings"), context=context).get_materialize_result()


@dg.asset(
    group_name="wandb_partitioned", kinds={"rust", "wandb"},
    ins={"daily_readings": dg.AssetIn(dagster_type=dg.Nothing, metadata={
        "wandb_artifact_configuration": {"partitions": {"*": {"alias": "latest"}}}})},
    metadata={"wandb_artifact_configuration": {"type": "summary"}},
)
def readings_summary(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    """The maximum of every day, reading all partitions of ``daily_readings`` at once."""
    return wandb.run(command=step_command("readings-summary"), context=context).get_materialize_result()


@dg.job(tags={"kind": "wandb_launch"})
def train_on_launch():
    """dagster-wandb's launch job, carried over: ``run_launch_job`` configured in the run config
    (``ops: {train: {config: {job: …, queue: default}}}``), on ``dagster-wandb pipes launch-job``. Synchronous by
    default: the op waits until an agent on the queue (the job ``launch_agent``) has run the job to the end."""
    run_launch_job("train", resource_key="wandb_launch")()


@dg.job(tags={"kind": "wandb_launch"})
def launch_agent():
    """dagster-wandb's launch agent, carried over: ``run_launch_agent`` configured in the run config
    (``ops: {agent: {config: {queues: [default], max_jobs: 1}}}``), on ``dagster-wandb pipes launch-agent``. It
    runs the queues' jobs until the run is terminated."""
    run_launch_agent("agent", resource_key="wandb_launch")()


def wandb_client(**fields) -> PipesWandbClient:
    """The W&B settings every step shares (dagster-wandb's ``wandb_config`` and resource); ``fields`` add to them
    or replace them."""
    return PipesWandbClient(**{
        "entity": os.environ.get("WANDB_ENTITY", "dagster"),
        "project": os.environ.get("WANDB_PROJECT", "dagster-wandb-example"),
        "cache_duration_in_minutes": 60,
        **fields,
    })


defs = dg.Definitions(
    assets=[raw_numbers, number_stats, daily_readings, readings_summary],
    jobs=[train_on_launch, launch_agent],
    resources={
        "wandb": wandb_client(api_key=os.environ.get("WANDB_API_KEY")),
        # Launch needs a W&B server even when the artifacts live in an embedded store.
        "wandb_launch": wandb_client(host=os.environ.get("DAGSTER_WANDB_LAUNCH_URL"),
                                     api_key=os.environ.get("WANDB_API_KEY")),
    },
)
