"""dagster-wandb's launch ops, ``run_launch_job`` and ``run_launch_agent``, as factories of ops that run our
binary's Pipes launch steps (``dagster-wandb pipes launch-job`` / ``launch-agent``).

The config schemas are dagster-wandb's (``launch/configs.py``): a launch job's or agent's definitions carry over.
Unlike dagster-wandb's, which fail against every wandb release they allow, these speak wandb 0.31.0's launch
protocol; keys that mean nothing there (``uri``, ``parameters``, ``cuda``) are refused saying what to use instead,
and a job needs a ``queue`` served by an agent (dagster-wandb's local launch needs a container runner).
"""

import os
from typing import Optional, Sequence

import dagster as dg

#: The binary of the launch steps: ``DAGSTER_WANDB_BIN`` if set, else ``dagster-wandb`` on the PATH.
BINARY_VARIABLE = "DAGSTER_WANDB_BIN"

def launch_config() -> dict:
    """dagster-wandb's ``run_launch_job`` config schema: every field optional, ``synchronous`` True by default."""
    return {
        "uri": dg.Field(str, is_required=False, description="Reference to a wandb or Git repository URI."),
        "job": dg.Field(str, is_required=False, description="The job to launch, e.g. 'wandb/test/my-job:latest'."),
        "queue": dg.Field(str, is_required=False, description="The run queue to push the job to."),
        "entry_point": dg.Field([str], is_required=False,
                                description="The entry point of the job, replacing its own; defaults to 'main.py'."),
        "version": dg.Field(str, is_required=False, description="The version of a Git job."),
        "parameters": dg.Field(dg.Noneable(dg.Permissive()), is_required=False,
                               description="Parameters of the job."),
        "name": dg.Field(str, is_required=False, description="The launched run's name."),
        "resource": dg.Field(str, is_required=False,
                             description="The execution backend; defaults to 'local' (here: local-process)."),
        "resource_args": dg.Field(dg.Noneable(dg.Permissive()), is_required=False,
                                  description="Arguments of the execution backend."),
        "docker_image": dg.Field(str, is_required=False, description="An image to run instead of a job."),
        "config": dg.Field(dg.Noneable(dg.Permissive()), is_required=False,
                           description="The launch config, e.g. {'overrides': {'run_config': {...}}}."),
        "synchronous": dg.Field(bool, is_required=False, default_value=True,
                                description="Wait for the launched run to end."),
        "cuda": dg.Field(bool, is_required=False, description="Build a CUDA-enabled image."),
        "run_id": dg.Field(str, is_required=False, description="The launched run's id."),
    }

def launch_agent_config() -> dict:
    """dagster-wandb's ``run_launch_agent`` config schema."""
    return {
        "queues": dg.Field([str], is_required=False, description="List of queue names to poll."),
        "max_jobs": dg.Field(int, is_required=False,
                             description="The maximum number of launch jobs this agent can run in parallel. Defaults "
                             "to 1. Set to -1 for no upper limit."),
    }

def default_command(step: str) -> list[str]:
    """``[<binary>, "pipes", step]``, the binary from ``DAGSTER_WANDB_BIN`` or the PATH."""
    return [os.environ.get(BINARY_VARIABLE, "dagster-wandb"), "pipes", step]

def run_launch_job(
    name: str = "run_launch_job",
    *,
    resource_key: str = "wandb",
    command: Optional[Sequence[str]] = None,
    timeout_seconds: Optional[int] = None,
) -> dg.OpDefinition:
    """An op like dagster-wandb's ``run_launch_job``: enqueues the configured job on a W&B Launch queue (or runs
    it locally without one) and, when ``synchronous``, waits for its run. ``resource_key`` names the
    ``PipesWandbClient``; ``command`` replaces ``dagster-wandb pipes launch-job``."""
    step = list(command) if command is not None else default_command("launch-job")
    if timeout_seconds is not None:
        step += ["--timeout", str(timeout_seconds)]

    @dg.op(name=name, config_schema=launch_config(), required_resource_keys={resource_key},
           description="Runs a W&B Launch job (dagster-wandb's run_launch_job) through a Rust Pipes step.")
    def _run_launch_job(context: dg.OpExecutionContext) -> None:
        client = getattr(context.resources, resource_key)
        context.log.info(f"Launch job configuration: {dict(context.op_config)}")
        client.run(command=step, context=context, extras={"op_config": dict(context.op_config)})

    return _run_launch_job

def run_launch_agent(
    name: str = "run_launch_agent",
    *,
    resource_key: str = "wandb",
    command: Optional[Sequence[str]] = None,
) -> dg.OpDefinition:
    """An op like dagster-wandb's ``run_launch_agent``: a launch agent on the configured queues until the run is
    terminated (the step stops on SIGINT) or the server stops it."""
    step = list(command) if command is not None else default_command("launch-agent")

    @dg.op(name=name, config_schema=launch_agent_config(), required_resource_keys={resource_key},
           description="Runs a W&B Launch agent (dagster-wandb's run_launch_agent) through a Rust Pipes step.")
    def _run_launch_agent(context: dg.OpExecutionContext) -> None:
        client = getattr(context.resources, resource_key)
        context.log.info(f"Launch agent configuration: {dict(context.op_config)}")
        context.log.info("Running Launch agent...")
        client.run(command=step, context=context, extras={"op_config": dict(context.op_config)})

    return _run_launch_agent
