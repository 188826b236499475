"""Dagster definitions written the dagster-wandb way, whose steps are Rust binaries (``dagster_bridge``) that
version their outputs and inputs as W&B artifacts.

- :class:`PipesWandbClient`: dagster-wandb's ``wandb_resource``, ``wandb_config`` and IO-manager settings as one
  resource, whose ``run`` launches a Rust step through Pipes with everything the step needs as extras;
- :func:`run_launch_job`, :func:`run_launch_agent`: dagster-wandb's launch ops, on our binary;
- :class:`LineSafeFileMessageReader`: a Pipes message reader that loses no message under volume;
- :class:`WandbArtifactsIOManagerError`: raised, with dagster-wandb's messages, for a configuration that
  dagster-wandb would refuse, before any step starts.
"""

from .configuration import InvalidConfigurationError, WandbArtifactsIOManagerError
from .launch import run_launch_agent, run_launch_job
from .reader import LineSafeFileMessageReader
from .resource import PipesWandbClient

__version__ = "0.1.0"

__all__ = [
    "InvalidConfigurationError",
    "LineSafeFileMessageReader",
    "PipesWandbClient",
    "WandbArtifactsIOManagerError",
    "run_launch_agent",
    "run_launch_job",
]
