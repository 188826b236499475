"""Assets only `cargo xtask dagster-e2e` runs: Rust steps that fail and panic (Dagster must show failed steps with
their errors), and one that sends 200,000 messages before its materialization (none may be lost)."""

import sys
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "dagster"))
from definitions import step_command, wandb_extras  # noqa: E402
from line_safe_reader import LineSafeFileMessageReader  # noqa: E402


@dg.asset(group_name="wandb_e2e")
def failing_step(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
    extras = wandb_extras(inputs={"missing": {"asset_key": "never_materialized"}})
    return pipes_subprocess_client.run(command=step_command("fail"), context=context, extras=extras).get_materialize_result()


@dg.asset(group_name="wandb_e2e")
def panicking_step(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
    return pipes_subprocess_client.run(command=step_command("panic"), context=context, extras=wandb_extras()).get_materialize_result()


STRESS_MESSAGES = 200_000


@dg.asset(group_name="wandb_e2e")
def pipes_stress(context: dg.AssetExecutionContext, pipes_subprocess_client: dg.PipesSubprocessClient):
    extras = wandb_extras(messages=STRESS_MESSAGES)
    invocation = pipes_subprocess_client.run(command=step_command("stress"), context=context, extras=extras)
    received = invocation.get_custom_messages()
    in_order = all(message == {"n": n} for n, message in enumerate(received))
    result = invocation.get_materialize_result()
    return dg.MaterializeResult(
        metadata={**result.metadata, "custom_messages_received": len(received), "custom_messages_in_order": in_order},
        data_version=result.data_version)


defs = dg.Definitions(
    assets=[failing_step, panicking_step, pipes_stress],
    resources={"pipes_subprocess_client": dg.PipesSubprocessClient(message_reader=LineSafeFileMessageReader())},
)
