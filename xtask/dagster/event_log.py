"""Prints what Dagster's event log holds, as JSON, for `cargo xtask dagster-e2e` to check."""

import json
import warnings

from dagster import DagsterEventType, DagsterInstance, EventRecordsFilter


def metadata(entries) -> dict:
    return {key: {"type": type(value).__name__, "value": value.value} for key, value in entries.items()}


def error_chain(error) -> list:
    chain = []
    while error is not None:
        chain.append(error.message)
        error = error.cause
    return chain


warnings.simplefilter("ignore")
instance = DagsterInstance.get()
out = {"materializations": [], "runs": [], "checks": []}
records = instance.get_event_records(EventRecordsFilter(event_type=DagsterEventType.ASSET_MATERIALIZATION), limit=100)
for record in records:
    materialization = record.event_log_entry.dagster_event.event_specific_data.materialization
    out["materializations"].append({
        "asset": materialization.asset_key.to_user_string(),
        "partition": materialization.partition,
        "run_id": record.event_log_entry.run_id,
        "tags": dict(materialization.tags or {}),
        "metadata": metadata(materialization.metadata),
    })
records = instance.get_event_records(EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION), limit=100)
for record in records:
    evaluation = record.event_log_entry.dagster_event.event_specific_data
    out["checks"].append({"asset": evaluation.asset_key.to_user_string(), "check": evaluation.check_name,
                          "passed": evaluation.passed})
for run in instance.get_runs():
    failures = []
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE):
        data = entry.dagster_event.step_failure_data
        failures.append({"step": entry.dagster_event.step_key, "errors": error_chain(data.error)})
    pipes_errors = []
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data
        if "[pipes]" in (entry.user_message or "") and data is not None and data.error is not None:
            pipes_errors.append({"step": entry.dagster_event.step_key, "message": entry.user_message,
                                 "errors": error_chain(data.error)})
    # What the run's ops and Pipes steps logged (context.log, and the steps' `log` messages).
    logs = [entry.user_message for entry in instance.all_logs(run.run_id) if entry.dagster_event is None]
    out["runs"].append({"run_id": run.run_id, "job": run.job_name, "status": run.status.value, "failures": failures,
                        "pipes_errors": pipes_errors, "logs": logs})
print(json.dumps(out, default=str))
