"""``PipesWandbClient``: dagster-wandb's configuration as one resource, launching Rust steps through Pipes."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence, Union

import dagster as dg
from pydantic import Field

from .configuration import InvalidConfigurationError
from .extras import outputs_and_inputs
from .reader import LineSafeFileMessageReader

#: W&B's cloud, as dagster-wandb names it.
WANDB_CLOUD_HOST = "https://api.wandb.ai"
#: The environment variable the step reads the API key from: the key itself never goes into the Pipes context.
API_KEY_VARIABLE = "WANDB_API_KEY"
#: The IO-manager settings this resource passes under ``wandb_artifacts_io_manager`` (dagster-wandb's config keys;
#: ``dagster_bridge::config::IO_MANAGER_CONFIGURATION_KEYS``, compared by ``cargo xtask dagster-e2e``).
IO_MANAGER_CONFIGURATION_KEYS = ("base_dir", "cache_duration_in_minutes", "run_id", "run_name", "run_tags")
#: Extras this resource writes; a step's own ``extras`` may not replace them.
RESERVED_EXTRAS = ("wandb_resource", "wandb_config", "wandb_artifacts_io_manager", "outputs", "inputs")


class PipesWandbClient(dg.ConfigurableResource):
    """dagster-wandb's ``wandb_resource``, ``wandb_config`` and ``wandb_artifacts_io_manager`` in one resource,
    and a Pipes client for Rust steps that version their outputs and inputs as W&B artifacts.

    ``resources={"wandb": PipesWandbClient(api_key=dg.EnvVar("WANDB_API_KEY"), entity="my-team",
    project="my-project")}``, then in an asset ``return wandb.run(command=[...], context=context)
    .get_materialize_result()``. Each output's and input's ``wandb_artifact_configuration`` is read from the
    asset's metadata, as dagster-wandb reads it.
    """

    api_key: Optional[str] = Field(
        default=None,
        description="W&B API key (a literal or EnvVar('WANDB_API_KEY')). Passed to the step in its environment as "
        "WANDB_API_KEY. Not needed for an embedded store.",
    )
    host: Optional[str] = Field(
        default=None,
        description="The W&B server: 'https://api.wandb.ai' for W&B's cloud, a URL of W&B Server or of "
        "`dagster-wandb server`, or file:///dir for an embedded store. Default: what the Rust step picks, "
        "WANDB_BASE_URL when set, else the embedded store in its default directory.",
    )
    entity: str = Field(description="The W&B entity (user or team) of every artifact and run.")
    project: str = Field(description="The W&B project of every artifact and run.")
    base_dir: Optional[str] = Field(
        default=None,
        description="Where downloaded inputs and run files are kept (under <base_dir>/storage). Default: the "
        "Dagster instance's storage directory, as dagster-wandb's.",
    )
    cache_duration_in_minutes: Optional[int] = Field(
        default=None,
        description="Files under base_dir not opened for this long are removed after each step; 0 keeps nothing. "
        "Default 30 days.",
    )
    run_name: Optional[str] = Field(default=None, description="W&B run name. Default: dagster-run-<first 8 of the "
                                    "Dagster run id>.")
    run_id: Optional[str] = Field(default=None, description="W&B run id. Default: the Dagster run id, so every "
                                  "step of a Dagster run resumes one W&B run. No /\\#?%: characters.")
    run_tags: Optional[list[str]] = Field(default=None, description="W&B run tags; 'dagster_wandb' is added.")
    env: Optional[dict[str, str]] = Field(default=None, description="Environment variables for every step.")
    cwd: Optional[str] = Field(default=None, description="Working directory of every step.")

    def extras(self, context: Any) -> dict:
        """The Pipes extras for the step ``context`` runs: the resource's settings, and every output's and input's
        checked ``wandb_artifact_configuration`` with the upstream partition keys."""
        self._check()
        resource: dict[str, Any] = {}
        if self.api_key is not None:
            resource["api_key"] = {"env": API_KEY_VARIABLE}
        if self.host is not None:
            resource["host"] = self.host
        io_manager: dict[str, Any] = {"base_dir": self.base_dir or _storage_directory(context)}
        for name in IO_MANAGER_CONFIGURATION_KEYS[1:]:
            value = getattr(self, name)
            if value is not None:
                io_manager[name] = value
        outputs, inputs = outputs_and_inputs(context)
        extras = {
            "wandb_config": {"entity": self.entity, "project": self.project},
            "wandb_artifacts_io_manager": io_manager,
            "outputs": outputs,
            "inputs": inputs,
        }
        if resource:
            extras["wandb_resource"] = resource
        return extras

    def run(
        self,
        *,
        command: Union[str, Sequence[str]],
        context: Union[dg.OpExecutionContext, dg.AssetExecutionContext],
        extras: Optional[Mapping[str, Any]] = None,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
    ) -> dg.PipesClientCompletedInvocation:
        """Runs ``command`` as the Rust step of ``context`` through Pipes, with the line-safe message reader.
        ``extras`` are added to the W&B ones (they may not replace them); ``env`` to the resource's ``env``.
        Returns what ``PipesSubprocessClient.run`` returns."""
        built = self.extras(context)
        clashes = sorted(set(extras or {}) & set(RESERVED_EXTRAS))
        if clashes:
            raise InvalidConfigurationError(
                "extras", f"{clashes} are set by PipesWandbClient from its fields and the assets' metadata")
        step_env = {**(self.env or {}), **(env or {})}
        if self.api_key is not None:
            step_env[API_KEY_VARIABLE] = self.api_key
        client = dg.PipesSubprocessClient(
            env=step_env, cwd=cwd or self.cwd, message_reader=LineSafeFileMessageReader())
        return client.run(command=command, context=context, extras={**built, **(extras or {})})

    def _check(self) -> None:
        for name in ("entity", "project"):
            if getattr(self, name) == "":
                raise RuntimeError(
                    f"(dagster_wandb) An empty string was provided for the '{name}' property of the 'wandb_config'.")
        if self.run_id is not None and (self.run_id == "" or any(c in self.run_id for c in "/\\#?%:")):
            raise InvalidConfigurationError("run_id", f"got {self.run_id!r}, expected a run id without /\\#?%: "
                                            "characters")
        if self.host is not None and self.host == "":
            raise InvalidConfigurationError("host", "got '', expected a URL (or leave it unset)")


def _storage_directory(context: Any) -> str:
    """dagster-wandb's default base_dir: the instance's storage directory, else DAGSTER_HOME."""
    instance = getattr(context, "instance", None)
    if instance is not None:
        return instance.storage_directory()
    return os.environ["DAGSTER_HOME"]
