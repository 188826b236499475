"""The launch ops: dagster-wandb's config schemas and log lines, the op config handed to the step, and what the
Rust step would refuse refused before it starts."""

import ast
import json
import sys

import dagster as dg
import pytest
from conftest import ECHO_STEP

from dagster_wandb_rust import PipesWandbClient, run_launch_agent, run_launch_job
from dagster_wandb_rust.launch import QUEUE_REQUIRED, REFUSED_LAUNCH_JOB_KEYS

JOB = {"job": "team/proj/j:latest", "queue": "default"}


def run_job(op, config, instance=None, raise_on_error=False, **fields):
    @dg.job(resource_defs={"wandb": PipesWandbClient(**{"entity": "team", "project": "proj", **fields})})
    def job():
        op()

    return job.execute_in_process(run_config={"ops": {op.name: {"config": config}}}, raise_on_error=raise_on_error,
                                  instance=instance)


def extras_recorder(tmp_path):
    """A step that writes the extras it received to a file, and that file."""
    received = tmp_path / "received.json"
    script = ("import json; from dagster_pipes import open_dagster_pipes\n"
              f"with open_dagster_pipes() as p: open({str(received)!r}, 'w').write(json.dumps(p.extras))")
    return [sys.executable, "-c", script], received


def logged(instance, result, prefix):
    """The messages the run logged that start with ``prefix``."""
    return [entry.user_message for entry in instance.all_logs(result.run_id)
            if entry.dagster_event is None and entry.user_message.startswith(prefix)]


def test_launch_job_op_config_reaches_the_step_with_synchronous_by_default(tmp_path):
    command, received = extras_recorder(tmp_path)
    op = run_launch_job("launch_it", command=command)
    config = {**JOB, "config": {"overrides": {"run_config": {"epochs": 3}}}}
    assert run_job(op, config).success
    extras = json.loads(received.read_text())
    assert extras["op_config"] == {**config, "synchronous": True}
    assert extras["wandb_config"] == {"entity": "team", "project": "proj"}
    assert run_job(op, {**JOB, "synchronous": False}).success
    assert json.loads(received.read_text())["op_config"] == {**JOB, "synchronous": False}


def test_launch_job_logs_dagster_wandbs_configuration_line(tmp_path):
    command, _ = extras_recorder(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    result = run_job(run_launch_job(command=command), {**JOB, "name": "nightly"}, instance=instance)
    assert result.success
    [line] = logged(instance, result, "Launch job configuration: ")
    # dagster-wandb's: {"entity": …, "project": …, **op_config}, as a Python dict.
    configuration = ast.literal_eval(line.removeprefix("Launch job configuration: "))
    assert list(configuration)[:2] == ["entity", "project"]
    assert configuration == {"entity": "team", "project": "proj", **JOB, "name": "nightly", "synchronous": True}


def test_launch_job_timeout_is_passed_to_the_binary(tmp_path):
    argv = tmp_path / "argv.json"
    script = ("import json, sys; from dagster_pipes import open_dagster_pipes\n"
              f"with open_dagster_pipes(): open({str(argv)!r}, 'w').write(json.dumps(sys.argv[1:]))")
    op = run_launch_job(command=[sys.executable, "-c", script], timeout_seconds=60)
    assert run_job(op, JOB).success
    assert json.loads(argv.read_text()) == ["--timeout", "60"]


def test_an_unknown_launch_key_is_refused_by_dagster():
    op = run_launch_job(command=ECHO_STEP)
    with pytest.raises(dg.DagsterInvalidConfigError, match="queue_name"):
        run_job(op, {"queue_name": "default"})


@pytest.mark.parametrize("config, message", [
    ({**JOB, "uri": "https://github.com/a/b"}, f"The 'uri' property of the 'run_launch_job' config "
                                               f"{REFUSED_LAUNCH_JOB_KEYS['uri']}."),
    ({**JOB, "parameters": {"lr": 0.1}}, "The 'parameters' property of the 'run_launch_job' config is not an "
                                         "argument of launch_add: give run config under "
                                         "`config.overrides.run_config`."),
    ({**JOB, "cuda": True}, "The 'cuda' property of the 'run_launch_job' config is not an argument of launch_add"),
    ({"job": "team/proj/j:latest"}, f"The 'queue' property of the 'run_launch_job' config {QUEUE_REQUIRED}."),
])
def test_what_the_step_would_refuse_fails_before_it_starts(tmp_path, config, message):
    marker = tmp_path / "ran"
    op = run_launch_job(command=[sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"])
    with pytest.raises(RuntimeError) as error:
        run_job(op, config, raise_on_error=True)
    assert str(error.value).startswith(f"(dagster_wandb) {message}"), str(error.value)
    assert not marker.exists()


def test_a_null_dead_key_is_no_value(tmp_path):
    command, received = extras_recorder(tmp_path)
    assert run_job(run_launch_job(command=command), {**JOB, "parameters": None}).success
    assert json.loads(received.read_text())["op_config"]["parameters"] is None


def test_an_empty_project_is_dagster_wandbs_error(tmp_path):
    command, _ = extras_recorder(tmp_path)
    with pytest.raises(RuntimeError, match=r"^\(dagster_wandb\) An empty string was provided for the 'project'"):
        run_job(run_launch_job(command=command), JOB, raise_on_error=True, project="")


def test_launch_agent_schema_and_log_lines():
    instance = dg.DagsterInstance.ephemeral()
    op = run_launch_agent(command=ECHO_STEP)
    result = run_job(op, {"queues": ["a", "b"], "max_jobs": -1}, instance=instance)
    assert result.success
    [line] = logged(instance, result, "Launch agent configuration: ")
    assert ast.literal_eval(line.removeprefix("Launch agent configuration: ")) == {
        "entity": "team", "project": "proj", "queues": ["a", "b"], "max_jobs": -1}
    assert logged(instance, result, "Running Launch agent...") == ["Running Launch agent..."]
    with pytest.raises(dg.DagsterInvalidConfigError):
        run_job(op, {"queues": "a"})


@pytest.mark.parametrize("max_jobs", [0, -2])
def test_an_agent_max_jobs_the_step_would_refuse_fails_before_it_starts(tmp_path, max_jobs):
    marker = tmp_path / "ran"
    op = run_launch_agent(command=[sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"])
    with pytest.raises(RuntimeError, match=rf"'max_jobs' property of the 'run_launch_agent' config is {max_jobs}:"):
        run_job(op, {"max_jobs": max_jobs}, raise_on_error=True)
    assert not marker.exists()
