"""The Pipes extras a Rust step reads (``dagster_bridge::step``), built from a Dagster execution context.

dagster-wandb reads each output's ``wandb_artifact_configuration`` from the output definition's metadata
(``@asset(metadata=…)``, ``AssetOut(metadata=…)``, ``Out(metadata=…)``) and each input's from the input
definition's (``AssetIn(metadata=…)``, ``In(metadata=…)``); this module reads them from the same places and
adds what only Dagster knows: the upstream partition keys each input's partition mapping selects.
"""

from __future__ import annotations

from typing import Any, Optional

import dagster as dg

from .configuration import ARTIFACT_CONFIGURATION_KEY, check_read_configuration, check_write_configuration


def outputs_and_inputs(context: Any) -> tuple[dict, dict]:
    """``(outputs, inputs)`` extras of the step ``context`` runs: for an asset step (single or multi-asset), the
    outputs keyed by the selected assets' keys (``a/b``) and the inputs by input name, each input with its
    upstream ``asset_key`` and, when the upstream asset is partitioned, the ``partition_keys`` to load; for an
    op, both keyed by the definitions' names. Every configuration is checked before it is returned."""
    assets_def = _assets_def(context)
    if assets_def is None:
        return _op_outputs_and_inputs(context)
    outputs = {}
    for key in sorted(context.selected_asset_keys, key=lambda k: k.path):
        metadata = assets_def.specs_by_key[key].metadata or {}
        where = f"asset {key.to_user_string()!r}"
        outputs[key.to_user_string()] = {
            ARTIFACT_CONFIGURATION_KEY: check_write_configuration(
                metadata.get(ARTIFACT_CONFIGURATION_KEY), where, has_asset_key=True)
        }
    inputs = {}
    node = assets_def.node_def
    for input_name, upstream_key in assets_def.keys_by_input_name.items():
        if upstream_key not in assets_def.dependency_keys:
            continue
        metadata = (node.input_def_named(input_name).metadata or {}) if node.has_input(input_name) else {}
        partition_keys = _upstream_partition_keys(context, input_name, upstream_key)
        where = f"input {input_name!r} (asset {upstream_key.to_user_string()!r})"
        configuration = check_read_configuration(
            metadata.get(ARTIFACT_CONFIGURATION_KEY), where, has_asset_key=True,
            upstream_partitioned=partition_keys is not None)
        spec = {"asset_key": upstream_key.to_user_string(), ARTIFACT_CONFIGURATION_KEY: configuration}
        if partition_keys is not None:
            spec["partition_keys"] = partition_keys
        inputs[input_name] = spec
    return outputs, inputs


def _op_outputs_and_inputs(context: Any) -> tuple[dict, dict]:
    op_def = context.op_def
    outputs = {
        output.name: {ARTIFACT_CONFIGURATION_KEY: check_write_configuration(
            (output.metadata or {}).get(ARTIFACT_CONFIGURATION_KEY), f"output {output.name!r}", has_asset_key=False)}
        for output in op_def.output_defs
    }
    inputs = {
        input_def.name: {ARTIFACT_CONFIGURATION_KEY: check_read_configuration(
            (input_def.metadata or {}).get(ARTIFACT_CONFIGURATION_KEY), f"input {input_def.name!r}",
            has_asset_key=False, upstream_partitioned=False)}
        for input_def in op_def.input_defs
        if (input_def.metadata or {}).get(ARTIFACT_CONFIGURATION_KEY) is not None
    }
    return outputs, inputs


def _assets_def(context: Any) -> Optional[dg.AssetsDefinition]:
    """The assets definition of an asset step, or None for an op."""
    if isinstance(context, dg.AssetExecutionContext):
        return context.assets_def
    # An op context inside an asset's step (e.g. a graph-backed asset) has one too.
    return getattr(context, "assets_def", None) if getattr(context, "has_assets_def", False) else None


def _upstream_partition_keys(context: Any, input_name: str, upstream_key: dg.AssetKey) -> Optional[list]:
    """The upstream partitions this run reads (through the asset's partition mapping), or None when the upstream
    asset is not partitioned."""
    upstream = context.job_def.asset_layer.asset_graph.get(upstream_key)
    if upstream.partitions_def is None:
        return None
    return list(context.asset_partition_keys_for_input(input_name))
