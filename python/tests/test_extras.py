"""The extras PipesWandbClient builds from real Dagster definitions, as a Pipes step receives them."""

import dagster as dg
import pytest
from conftest import ECHO_STEP, received

from dagster_wandb_rust import PipesWandbClient, WandbArtifactsIOManagerError
from dagster_wandb_rust.resource import IO_MANAGER_CONFIGURATION_KEYS

CONFIG = "wandb_artifact_configuration"


def client(**fields):
    return PipesWandbClient(entity="team", project="proj", **fields)


@dg.asset(metadata={CONFIG: {"type": "dataset", "aliases": ["best"], "description": "numbers"}})
def raw_numbers(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    return wandb.run(command=ECHO_STEP, context=context).get_materialize_result()


@dg.asset(deps=[raw_numbers], metadata={CONFIG: {"type": "statistics"}})
def number_stats(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    return wandb.run(command=ECHO_STEP, context=context).get_materialize_result()


@dg.asset(ins={"numbers": dg.AssetIn("raw_numbers", dagster_type=dg.Nothing,
                                     metadata={CONFIG: {"get": "Table", "alias": "best"}})})
def table_reader(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    return wandb.run(command=ECHO_STEP, context=context).get_materialize_result()


def test_single_asset_resource_and_output_configuration():
    result = dg.materialize([raw_numbers], resources={"wandb": client(
        api_key="k" * 40, host="http://127.0.0.1:1", run_tags=["nightly"], cache_duration_in_minutes=5)})
    got = received(result, "raw_numbers")
    extras = got["extras"]
    assert extras["wandb_config"] == {"entity": "team", "project": "proj"}
    # The key reaches the step in its environment, never in the Pipes context.
    assert extras["wandb_resource"] == {"api_key": {"env": "WANDB_API_KEY"}, "host": "http://127.0.0.1:1"}
    assert got["api_key"] == "k" * 40
    assert "k" * 40 not in str(extras)
    io_manager = extras["wandb_artifacts_io_manager"]
    assert io_manager["run_tags"] == ["nightly"] and io_manager["cache_duration_in_minutes"] == 5
    # dagster-wandb's default base_dir: the instance's storage directory.
    assert io_manager["base_dir"].endswith("storage")
    assert extras["outputs"] == {"raw_numbers": {CONFIG: {
        "type": "dataset", "aliases": ["best"], "description": "numbers"}}}
    assert extras["inputs"] == {}


def test_an_env_var_api_key_is_resolved_and_reaches_the_step_in_its_environment_only(monkeypatch):
    # Another variable than WANDB_API_KEY, so the step gets the key from the resource, not by inheritance.
    monkeypatch.setenv("TEAM_WANDB_KEY", "e" * 40)
    result = dg.materialize([raw_numbers], resources={"wandb": client(api_key=dg.EnvVar("TEAM_WANDB_KEY"))})
    got = received(result, "raw_numbers")
    assert got["api_key"] == "e" * 40
    assert got["extras"]["wandb_resource"] == {"api_key": {"env": "WANDB_API_KEY"}}
    assert "e" * 40 not in str(got["extras"])


def test_dagster_wandbs_own_env_var_form(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "f" * 40)
    resource = client(api_key=dg.EnvVar("WANDB_API_KEY"))
    got = received(dg.materialize([raw_numbers], resources={"wandb": resource}), "raw_numbers")
    assert got["api_key"] == "f" * 40
    assert got["extras"]["wandb_resource"] == {"api_key": {"env": "WANDB_API_KEY"}}


def test_custom_run_id_run_name_and_base_dir_reach_the_step(tmp_path):
    base_dir = str(tmp_path / "wandb-base")
    resource = client(run_id="my-run", run_name="my run", base_dir=base_dir, run_tags=["a", "b"])
    result = dg.materialize([raw_numbers, number_stats], resources={"wandb": resource})
    for asset in ("raw_numbers", "number_stats"):
        # Every step gets the same settings: they resume one W&B run, `my-run`, not the Dagster run's.
        io_manager = received(result, asset)["extras"]["wandb_artifacts_io_manager"]
        assert io_manager == {"base_dir": base_dir, "run_id": "my-run", "run_name": "my run", "run_tags": ["a", "b"]}
    # The keys are the Rust side's (dagster_bridge::config::IO_MANAGER_CONFIGURATION_KEYS, compared by the e2e).
    assert set(io_manager) <= set(IO_MANAGER_CONFIGURATION_KEYS)


@pytest.mark.parametrize("run_id", ["", "a/b", "a:b", "50%"])
def test_a_run_id_w_and_b_refuses_fails_before_the_step_starts(tmp_path, run_id):
    command, marker = marker_step(tmp_path)

    @dg.asset
    def step(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
        return wandb.run(command=command, context=context).get_materialize_result()

    with pytest.raises(WandbArtifactsIOManagerError, match="invalid configuration run_id"):
        dg.materialize([step], resources={"wandb": client(run_id=run_id)})
    assert not marker.exists()


def test_no_host_and_no_key_leave_the_choice_to_the_step():
    extras = received(dg.materialize([raw_numbers], resources={"wandb": client()}), "raw_numbers")["extras"]
    assert "wandb_resource" not in extras


def test_deps_are_inputs_with_an_empty_configuration():
    result = dg.materialize([raw_numbers, number_stats], resources={"wandb": client()})
    inputs = received(result, "number_stats")["extras"]["inputs"]
    assert inputs == {"raw_numbers": {"asset_key": "raw_numbers", CONFIG: {}}}


def test_asset_in_metadata_is_the_input_configuration():
    result = dg.materialize([raw_numbers, table_reader], resources={"wandb": client()})
    inputs = received(result, "table_reader")["extras"]["inputs"]
    assert inputs == {"numbers": {"asset_key": "raw_numbers", CONFIG: {"get": "Table", "alias": "best"}}}


@dg.multi_asset(outs={
    "m1": dg.AssetOut(metadata={CONFIG: {"type": "model"}}, is_required=False),
    "m2": dg.AssetOut(key=dg.AssetKey(["k2a", "k2b"]), metadata={CONFIG: {"aliases": ["x"]}}, is_required=False),
}, can_subset=True)
def two_models(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    yield from wandb.run(command=ECHO_STEP, context=context).get_results()


def test_multi_asset_outputs_are_keyed_by_asset_key():
    result = dg.materialize([two_models], resources={"wandb": client()})
    outputs = received(result, "m1")["extras"]["outputs"]
    assert outputs == {"m1": {CONFIG: {"type": "model"}}, "k2a/k2b": {CONFIG: {"aliases": ["x"]}}}


def test_multi_asset_subset_passes_only_the_selected_outputs():
    result = dg.materialize([two_models], resources={"wandb": client()}, selection=["k2a/k2b"])
    assert received(result, "k2a/k2b")["extras"]["outputs"] == {"k2a/k2b": {CONFIG: {"aliases": ["x"]}}}


daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


@dg.asset(partitions_def=daily, metadata={CONFIG: {"type": "readings"}})
def daily_readings(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    return wandb.run(command=ECHO_STEP, context=context).get_materialize_result()


@dg.asset(deps=[daily_readings])
def readings_summary(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    return wandb.run(command=ECHO_STEP, context=context).get_materialize_result()


@dg.asset(partitions_def=daily, ins={"daily_readings": dg.AssetIn(
    dagster_type=dg.Nothing,
    partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=0),
    metadata={CONFIG: {"partitions": {"*": {"get": "Table"}}}})})
def two_day_window(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    return wandb.run(command=ECHO_STEP, context=context).get_materialize_result()


def materialize_days():
    """An instance with every day of ``daily_readings`` materialized."""
    instance = dg.DagsterInstance.ephemeral()
    for day in daily.get_partition_keys():
        assert dg.materialize([daily_readings], instance=instance, partition_key=day,
                              resources={"wandb": client()}).success
    return instance


def test_partition_of_the_run_and_all_upstream_partitions_for_an_unpartitioned_reader():
    instance = materialize_days()
    result = dg.materialize([daily_readings, readings_summary], instance=instance, selection=["readings_summary"],
                            resources={"wandb": client()})
    inputs = received(result, "readings_summary")["extras"]["inputs"]
    assert inputs == {"daily_readings": {"asset_key": "daily_readings",
                                         "partition_keys": ["2024-01-01", "2024-01-02", "2024-01-03"], CONFIG: {}}}
    one_day = dg.materialize([daily_readings], partition_key="2024-01-02", resources={"wandb": client()})
    assert received(one_day, "daily_readings")["partition_key"] == "2024-01-02"


def test_time_window_mapping_selects_the_previous_and_current_day():
    instance = materialize_days()
    result = dg.materialize([daily_readings, two_day_window], instance=instance, selection=["two_day_window"],
                            partition_key="2024-01-03", resources={"wandb": client()})
    inputs = received(result, "two_day_window")["extras"]["inputs"]
    assert inputs["daily_readings"]["partition_keys"] == ["2024-01-02", "2024-01-03"]
    assert inputs["daily_readings"][CONFIG] == {"partitions": {"*": {"get": "Table"}}}


colors = dg.StaticPartitionsDefinition(["red", "green", "blue"])


@dg.asset(partitions_def=colors)
def paint(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    return wandb.run(command=ECHO_STEP, context=context).get_materialize_result()


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["warm", "cold"]), ins={"paint": dg.AssetIn(
    dagster_type=dg.Nothing,
    partition_mapping=dg.StaticPartitionMapping({"red": "warm", "green": "cold", "blue": "cold"}))})
def palette(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    return wandb.run(command=ECHO_STEP, context=context).get_materialize_result()


@dg.asset(partitions_def=colors, deps=[paint])
def same_color(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
    return wandb.run(command=ECHO_STEP, context=context).get_materialize_result()


def test_static_partitions_identity_and_static_mapping():
    instance = dg.DagsterInstance.ephemeral()
    for color in colors.get_partition_keys():
        dg.materialize([paint], instance=instance, partition_key=color, resources={"wandb": client()})
    identity = dg.materialize([paint, same_color], instance=instance, selection=["same_color"], partition_key="green",
                              resources={"wandb": client()})
    assert received(identity, "same_color")["extras"]["inputs"]["paint"]["partition_keys"] == ["green"]
    mapped = dg.materialize([paint, palette], instance=instance, selection=["palette"], partition_key="cold",
                            resources={"wandb": client()})
    assert sorted(received(mapped, "palette")["extras"]["inputs"]["paint"]["partition_keys"]) == ["blue", "green"]


def marker_step(tmp_path):
    """A step that leaves a file behind: it must never run when the configuration is refused."""
    marker = tmp_path / "ran"
    return ["python3", "-c", f"open({str(marker)!r}, 'w').close()"], marker


def test_an_unknown_output_key_fails_before_the_step_starts(tmp_path):
    command, marker = marker_step(tmp_path)

    @dg.asset(metadata={CONFIG: {"type": "dataset", "alias": ["oops"]}})
    def misconfigured(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
        return wandb.run(command=command, context=context).get_materialize_result()

    with pytest.raises(WandbArtifactsIOManagerError, match=r"The configuration keys '\['alias'\]' you are trying"):
        dg.materialize([misconfigured], resources={"wandb": client()})
    assert not marker.exists()


def test_partitions_for_an_unpartitioned_input_fail_before_the_step_starts(tmp_path):
    command, marker = marker_step(tmp_path)

    @dg.asset(ins={"raw_numbers": dg.AssetIn(dagster_type=dg.Nothing, metadata={CONFIG: {
        "partitions": {"*": {"alias": "latest"}}}})})
    def wrong_reader(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
        return wandb.run(command=command, context=context).get_materialize_result()

    with pytest.raises(WandbArtifactsIOManagerError, match="it's not within a partitioned execution"):
        dg.materialize([raw_numbers, wrong_reader], selection=["wrong_reader"], resources={"wandb": client()})
    assert not marker.exists()


def test_a_name_on_an_asset_output_is_refused(tmp_path):
    command, marker = marker_step(tmp_path)

    @dg.asset(metadata={CONFIG: {"name": "other"}})
    def named(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
        return wandb.run(command=command, context=context).get_materialize_result()

    with pytest.raises(WandbArtifactsIOManagerError, match="Please remove the 'name' property"):
        dg.materialize([named], resources={"wandb": client()})
    assert not marker.exists()


def test_reserved_extras_cannot_be_replaced():
    @dg.asset
    def clash(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
        return wandb.run(command=ECHO_STEP, context=context, extras={"outputs": {}}).get_materialize_result()

    with pytest.raises(WandbArtifactsIOManagerError, match=r"\['outputs'\] are set by PipesWandbClient"):
        dg.materialize([clash], resources={"wandb": client()})


def test_own_extras_and_env_reach_the_step():
    @dg.asset
    def stress(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
        return wandb.run(command=ECHO_STEP, context=context, extras={"messages": 3}).get_materialize_result()

    resource = client(env={"DAGSTER_WANDB_TEST_VARIABLE": "from the resource"})
    got = received(dg.materialize([stress], resources={"wandb": resource}), "stress")
    assert got["extras"]["messages"] == 3
    assert got["test_variable"] == "from the resource"

    @dg.asset
    def overridden(context: dg.AssetExecutionContext, wandb: PipesWandbClient):
        return wandb.run(command=ECHO_STEP, context=context,
                         env={"DAGSTER_WANDB_TEST_VARIABLE": "from the call"}).get_materialize_result()

    got = received(dg.materialize([overridden], resources={"wandb": resource}), "overridden")
    assert got["test_variable"] == "from the call"


def test_empty_entity_is_dagster_wandbs_error():
    with pytest.raises(RuntimeError, match=r"An empty string was provided for the 'entity' property"):
        dg.materialize([raw_numbers], resources={"wandb": PipesWandbClient(entity="", project="p")})


@dg.op(out={"result": dg.Out(metadata={CONFIG: {"name": "op_artifact", "type": "model"}})},
       ins={"source": dg.In(dg.Nothing, metadata={CONFIG: {"name": "raw", "version": "v0"}})})
def op_step(context: dg.OpExecutionContext, wandb: PipesWandbClient):
    messages = wandb.run(command=ECHO_STEP, context=context).get_custom_messages()
    context.log.info(str(messages))
    return messages[0]


@dg.op
def nothing() -> None:
    return None


def test_op_outputs_and_inputs_are_keyed_by_name():
    @dg.job(resource_defs={"wandb": client()})
    def job():
        op_step(nothing())

    result = job.execute_in_process()
    extras = result.output_for_node("op_step", "result")["extras"]
    assert extras["outputs"] == {"result": {CONFIG: {"name": "op_artifact", "type": "model"}}}
    assert extras["inputs"] == {"source": {CONFIG: {"name": "raw", "version": "v0"}}}
