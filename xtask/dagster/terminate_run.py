"""Terminates the run of job JOB that process PID (`dagster job execute`) executes, the way Dagster terminates a
run: marks it CANCELING, then interrupts the process executing it (which forwards the interrupt to its steps, and
Pipes to their external processes). Prints the run id, for `cargo xtask dagster-e2e`."""

import os
import signal
import sys
import time
import warnings

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

warnings.simplefilter("ignore")
job_name, pid = sys.argv[1], int(sys.argv[2])
instance = DagsterInstance.get()
deadline = time.monotonic() + 120
while True:
    runs = instance.get_runs(RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.STARTED]))
    if runs:
        break
    if time.monotonic() > deadline:
        sys.exit(f"no started run of {job_name} after 120 s")
    time.sleep(0.5)
[run] = runs
instance.report_run_canceling(run, message="Terminated by cargo xtask dagster-e2e.")
os.kill(pid, signal.SIGINT)
print(run.run_id)
