"""The launch ops: dagster-wandb's config schemas, the op config handed to the step."""

import json
import sys

import dagster as dg
import pytest
from conftest import ECHO_STEP

from dagster_wandb_rust import PipesWandbClient, run_launch_agent, run_launch_job


def run_job(op, config):
    @dg.job(resource_defs={"wandb": PipesWandbClient(entity="team", project="proj")})
    def job():
        op()

    return job.execute_in_process(run_config={"ops": {op.name: {"config": config}}}, raise_on_error=False)


def extras_recorder(tmp_path):
    """A step that writes the extras it received to a file, and that file."""
    received = tmp_path / "received.json"
    script = ("import json; from dagster_pipes import open_dagster_pipes\n"
              f"with open_dagster_pipes() as p: open({str(received)!r}, 'w').write(json.dumps(p.extras))")
    return [sys.executable, "-c", script], received


def test_launch_job_op_config_reaches_the_step_with_synchronous_by_default(tmp_path):
    command, received = extras_recorder(tmp_path)
    op = run_launch_job("launch_it", command=command)
    config = {"job": "team/proj/j:latest", "queue": "default", "config": {"overrides": {"run_config": {"epochs": 3}}}}
    assert run_job(op, config).success
    extras = json.loads(received.read_text())
    assert extras["op_config"] == {**config, "synchronous": True}
    assert extras["wandb_config"] == {"entity": "team", "project": "proj"}
    assert run_job(op, {"job": "team/proj/j:latest", "synchronous": False}).success
    assert json.loads(received.read_text())["op_config"] == {"job": "team/proj/j:latest", "synchronous": False}


def test_launch_job_timeout_is_passed_to_the_binary(tmp_path):
    argv = tmp_path / "argv.json"
    script = ("import json, sys; from dagster_pipes import open_dagster_pipes\n"
              f"with open_dagster_pipes(): open({str(argv)!r}, 'w').write(json.dumps(sys.argv[1:]))")
    op = run_launch_job(command=[sys.executable, "-c", script], timeout_seconds=60)
    assert run_job(op, {"job": "team/proj/j:latest"}).success
    assert json.loads(argv.read_text()) == ["--timeout", "60"]


def test_an_unknown_launch_key_is_refused_by_dagster():
    op = run_launch_job(command=ECHO_STEP)
    with pytest.raises(dg.DagsterInvalidConfigError, match="queue_name"):
        run_job(op, {"queue_name": "default"})


def test_launch_agent_schema():
    op = run_launch_agent(command=ECHO_STEP)
    assert run_job(op, {"queues": ["a", "b"], "max_jobs": -1}).success
    with pytest.raises(dg.DagsterInvalidConfigError):
        run_job(op, {"queues": "a"})
