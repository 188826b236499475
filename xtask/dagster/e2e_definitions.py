"""Assets only `cargo xtask dagster-e2e` runs: Rust steps that fail and panic (Dagster must show failed steps with
their errors), one that sends 200,000 messages before its materialization (none may be lost), one whose
configuration is refused before its step starts, and one whose resource sets the W&B run's id, name and tags and
the IO manager's base_dir (the Rust step must use them all)."""

import os
import sys
from pathlib import Path

import dagster as dg
from dagster_wandb_rust import PipesWandbClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "dagster"))
from definitions import step_command, wandb_client  # noqa: E402

# Declared, never materialized: the failing step's input.
never_materialized = dg.AssetSpec("never_materialized")


@dg.asset(group_name="wandb_e2e", ins={"missing": dg.AssetIn("never_materialized", dagster_type=dg.Nothing)})
def failing_step(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    return wandb.run(command=step_command("fail"), context=context).get_materialize_result()


@dg.asset(group_name="wandb_e2e")
def panicking_step(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    return wandb.run(command=step_command("panic"), context=context).get_materialize_result()


@dg.asset(group_name="wandb_e2e", metadata={"wandb_artifact_configuration": {"type": "dataset", "alias": "x"}})
def refused_configuration(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    # The marker proves the step never started: the configuration is refused in Python first.
    marker = os.environ["DAGSTER_WANDB_E2E_MARKER"]
    return wandb.run(command=["sh", "-c", f"touch {marker}"], context=context).get_materialize_result()


STRESS_MESSAGES = 200_000


@dg.asset(group_name="wandb_e2e")
def pipes_stress(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    invocation = wandb.run(command=step_command("stress"), context=context, extras={"messages": STRESS_MESSAGES})
    received = invocation.get_custom_messages()
    in_order = all(message == {"n": n} for n, message in enumerate(received))
    result = invocation.get_materialize_result()
    return dg.MaterializeResult(
        metadata={**result.metadata, "custom_messages_received": len(received), "custom_messages_in_order": in_order},
        data_version=result.data_version)


#: The W&B run of `custom_run_settings` (instead of the Dagster run's id and `dagster-run-<8>`).
CUSTOM_RUN_ID = "e2e-custom-run"
CUSTOM_RUN_NAME = "e2e custom name"


@dg.asset(group_name="wandb_e2e", metadata={"wandb_artifact_configuration": {"type": "dataset"}})
def custom_run_settings(context: dg.AssetExecutionContext, wandb_custom: PipesWandbClient):
    # The step sweeps its base_dir with cache_duration_in_minutes=0, which removes every file there.
    return wandb_custom.run(command=step_command("raw-numbers"), context=context).get_materialize_result()


defs = dg.Definitions(
    assets=[never_materialized, failing_step, panicking_step, refused_configuration, pipes_stress,
            custom_run_settings],
    resources={
        "wandb": wandb_client(api_key=os.environ.get("WANDB_API_KEY")),
        "wandb_custom": wandb_client(
            api_key=os.environ.get("WANDB_API_KEY"), run_id=CUSTOM_RUN_ID, run_name=CUSTOM_RUN_NAME,
            run_tags=["e2e"], base_dir=os.environ.get("DAGSTER_WANDB_E2E_BASE_DIR"), cache_duration_in_minutes=0),
    },
)
