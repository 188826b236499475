"""dagster-wandb's launch ops, ``run_launch_job`` and ``run_launch_agent``, as factories of ops that run our
binary's Pipes launch steps (``dagster-wandb pipes launch-job`` / ``launch-agent``).

The config schemas are dagster-wandb's (``launch/configs.py``): a launch job's or agent's definitions carry over,
and the ops log what dagster-wandb's log (``Launch job configuration: {entity, project, **op_config}``). Unlike
dagster-wandb's, which fail against every wandb release they allow, these speak wandb 0.31.0's launch protocol.
What the Rust step (``dagster_bridge::launch``) would refuse is refused here, before it starts, with the same
reasons (``cargo xtask dagster-e2e`` compares them): keys that mean nothing there (``uri``, ``parameters``,
``cuda``), and a job without a ``queue`` — dagster-wandb runs a queue-less job on the local machine through a
container runner, which this toolkit does not have, so a job always goes to a queue that an agent serves (a
``run_launch_agent`` op, or ``dagster-wandb launch agent``).
"""

import os
from typing import Optional, Sequence

import dagster as dg

#: The binary of the launch steps: ``DAGSTER_WANDB_BIN`` if set, else ``dagster-wandb`` on the PATH.
BINARY_VARIABLE = "DAGSTER_WANDB_BIN"

#: ``run_launch_job`` keys that mean nothing in wandb 0.31.0's launch protocol, with why and what to use instead
#: (``dagster_bridge::launch::REFUSED_LAUNCH_JOB_KEYS``, word for word).
REFUSED_LAUNCH_JOB_KEYS = {
    "uri": "has no meaning in wandb 0.31.0's launch protocol, which ignores it: a launch names a `job` or a "
           "`docker_image`",
    "parameters": "is not an argument of launch_add: give run config under `config.overrides.run_config`",
    "cuda": "is not an argument of launch_add: request GPUs through `resource_args` of your runner",
}
#: Why a ``run_launch_job`` config without a ``queue`` is refused (``dagster_bridge::launch::QUEUE_REQUIRED``).
QUEUE_REQUIRED = (
    "is required: without a queue dagster-wandb launches on the local machine through a container runner, which "
    "this toolkit does not have; give a queue and run an agent on it (`dagster-wandb launch agent`, or a "
    "`run_launch_agent` op)"
)


def launch_config() -> dict:
    """dagster-wandb's ``run_launch_job`` config schema: every field optional, ``synchronous`` True by default."""
    return {
        "uri": dg.Field(str, is_required=False,
                        description="Reference to a wandb or Git repository URI. Refused: wandb 0.31.0 ignores it."),
        "job": dg.Field(str, is_required=False, description="The job to launch, e.g. 'wandb/test/my-job:latest'."),
        "queue": dg.Field(str, is_required=False,
                          description="The run queue to push the job to. Required here: an agent runs the job."),
        "entry_point": dg.Field([str], is_required=False,
                                description="The entry point of the job, replacing its own; defaults to 'main.py'."),
        "version": dg.Field(str, is_required=False, description="The version of a Git job."),
        "parameters": dg.Field(dg.Noneable(dg.Permissive()), is_required=False,
                               description="Parameters of the job. Refused: use config.overrides.run_config."),
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
        "cuda": dg.Field(bool, is_required=False,
                         description="Build a CUDA-enabled image. Refused: use the runner's resource_args."),
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


def launch_configuration(client, op_config) -> dict:
    """dagster-wandb's launch configuration: ``{"entity": …, "project": …, **op_config}``, after its check that
    neither is the empty string."""
    for name in ("entity", "project"):
        if getattr(client, name) == "":
            raise RuntimeError(
                f"(dagster_wandb) An empty string was provided for the '{name}' property of the 'wandb_config'.")
    return {"entity": client.entity, "project": client.project, **op_config}


def refuse_unsupported_launch_job_config(op_config) -> None:
    """Raises what the Rust step would: a key that means nothing today, or no ``queue``."""
    for key, reason in REFUSED_LAUNCH_JOB_KEYS.items():
        if op_config.get(key) is not None:
            raise RuntimeError(f"(dagster_wandb) The '{key}' property of the 'run_launch_job' config {reason}.")
    if op_config.get("queue") is None:
        raise RuntimeError(f"(dagster_wandb) The 'queue' property of the 'run_launch_job' config {QUEUE_REQUIRED}.")


def refuse_unsupported_launch_agent_config(op_config) -> None:
    """Raises what the Rust step would: a ``max_jobs`` that is neither positive nor -1."""
    max_jobs = op_config.get("max_jobs")
    if max_jobs is not None and max_jobs != -1 and max_jobs < 1:
        raise RuntimeError(f"(dagster_wandb) The 'max_jobs' property of the 'run_launch_agent' config is "
                           f"{max_jobs}: give a positive number of jobs at once, or -1 for no limit.")


def run_launch_job(
    name: str = "run_launch_job",
    *,
    resource_key: str = "wandb",
    command: Optional[Sequence[str]] = None,
    timeout_seconds: Optional[int] = None,
) -> dg.OpDefinition:
    """An op like dagster-wandb's ``run_launch_job``: enqueues the configured job on its W&B Launch ``queue``
    (required: dagster-wandb's queue-less local launch is refused, see the module) and, when ``synchronous`` (the
    default), waits for an agent to run it to the end (up to ``timeout_seconds``, default an hour).
    ``resource_key`` names the ``PipesWandbClient``; ``command`` replaces ``dagster-wandb pipes launch-job``.
    A config the step would refuse fails the op before the step starts."""
    step = list(command) if command is not None else default_command("launch-job")
    if timeout_seconds is not None:
        step += ["--timeout", str(timeout_seconds)]

    @dg.op(name=name, config_schema=launch_config(), required_resource_keys={resource_key},
           description="Runs a W&B Launch job (dagster-wandb's run_launch_job) through a Rust Pipes step.")
    def _run_launch_job(context: dg.OpExecutionContext) -> None:
        client = getattr(context.resources, resource_key)
        op_config = dict(context.op_config)
        context.log.info(f"Launch job configuration: {launch_configuration(client, op_config)}")
        refuse_unsupported_launch_job_config(op_config)
        client.run(command=step, context=context, extras={"op_config": op_config})

    return _run_launch_job


def run_launch_agent(
    name: str = "run_launch_agent",
    *,
    resource_key: str = "wandb",
    command: Optional[Sequence[str]] = None,
) -> dg.OpDefinition:
    """An op like dagster-wandb's ``run_launch_agent``: a launch agent on the configured ``queues`` (default
    ``default``), ``max_jobs`` at once, until the run is terminated (Dagster interrupts the step, which stops the
    agent and logs how many jobs it ran) or the server tells the agent to stop polling."""
    step = list(command) if command is not None else default_command("launch-agent")

    @dg.op(name=name, config_schema=launch_agent_config(), required_resource_keys={resource_key},
           description="Runs a W&B Launch agent (dagster-wandb's run_launch_agent) through a Rust Pipes step.")
    def _run_launch_agent(context: dg.OpExecutionContext) -> None:
        client = getattr(context.resources, resource_key)
        op_config = dict(context.op_config)
        context.log.info(f"Launch agent configuration: {launch_configuration(client, op_config)}")
        refuse_unsupported_launch_agent_config(op_config)
        context.log.info("Running Launch agent...")
        client.run(command=step, context=context, extras={"op_config": op_config})

    return _run_launch_agent
