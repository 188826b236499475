"""``wandb_artifact_configuration`` checked in Python, before any Rust step starts.

The Rust side (``dagster_bridge::config``) applies the same rules again when it reads the extras; the two lists
of keys and modules below are compared with the Rust constants by ``cargo xtask dagster-e2e``, so they cannot
drift apart. Messages are dagster-wandb's, word for word, where dagster-wandb has one; type errors, which
dagster-wandb does not check, name the key and the value.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

#: The metadata key dagster-wandb reads on outputs and inputs.
ARTIFACT_CONFIGURATION_KEY = "wandb_artifact_configuration"

#: Keys allowed when writing (dagster-wandb's list; ``partitions`` is allowed and ignored there).
WRITE_CONFIGURATION_KEYS = (
    "add_dirs", "add_files", "add_references", "aliases", "description", "name", "partitions",
    "serialization_module", "type",
)
#: Keys allowed when reading.
READ_CONFIGURATION_KEYS = ("alias", "get_path", "get", "name", "partitions", "version")
#: Keys allowed in one partition's read settings.
PARTITION_CONFIGURATION_KEYS = ("get", "get_path", "version", "alias")
#: The serialization modules the Rust steps write and read: dagster-wandb's four first, then the toolkit's own.
SERIALIZATION_MODULES = ("dill", "cloudpickle", "joblib", "pickle", "json", "msgpack", "bincode", "postcard", "raw")

_ADD_FILE_KEYS = {"local_path": str, "name": str, "is_tmp": bool, "skip_cache": bool, "policy": str, "overwrite": bool}
_ADD_DIR_KEYS = {"local_path": str, "name": str, "skip_cache": bool, "policy": str, "merge": bool}
_ADD_REFERENCE_KEYS = {"uri": str, "name": str, "checksum": bool, "max_objects": int}


class WandbArtifactsIOManagerError(Exception):
    """dagster-wandb's error type, with its default message."""

    def __init__(self, message: str = "A W&B Artifacts IO Manager error occurred."):
        self.message = message
        super().__init__(self.message)


class InvalidConfigurationError(WandbArtifactsIOManagerError):
    """A configuration value of the wrong type or form: names the key (with its path) and the value."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"invalid configuration {key}: {reason}")
        self.key = key


def check_write_configuration(configuration: Any, where: str, has_asset_key: bool) -> dict:
    """The output configuration ``configuration`` (``None`` is empty) of an asset's output (``has_asset_key``) or
    an op's, checked; ``where`` names the output in errors."""
    settings = _configuration_dict(configuration, where)
    _reject_unknown_configuration_keys(settings, WRITE_CONFIGURATION_KEYS, "writing")
    key = f"{where}.{ARTIFACT_CONFIGURATION_KEY}"
    for name in ("name", "type", "description"):
        _optional(settings, name, str, key)
    if has_asset_key and settings.get("name") is not None:
        raise WandbArtifactsIOManagerError(
            "You've included a 'name' property in the 'wandb_artifact_configuration' settings. But, a 'name' is only "
            "needed when there's no 'AssetKey'. When an Artifact is created from an @asset, it uses the asset name. "
            "When it's created from an @op with an 'asset_key' for the output, that value is used. Please remove the "
            "'name' property."
        )
    aliases = settings.get("aliases")
    if aliases is not None and not (isinstance(aliases, list) and all(isinstance(a, str) for a in aliases)):
        raise InvalidConfigurationError(f"{key}.aliases", f"got {aliases!r}, expected a list of strings")
    for name, fields in (("add_files", _ADD_FILE_KEYS), ("add_dirs", _ADD_DIR_KEYS),
                         ("add_references", _ADD_REFERENCE_KEYS)):
        _check_each(settings.get(name), f"{key}.{name}", fields)
    module = settings.get("serialization_module")
    if module is not None:
        module_key = f"{key}.serialization_module"
        if not isinstance(module, Mapping):
            raise InvalidConfigurationError(module_key, f"got {module!r}, expected a dict")
        _reject_unknown(module, ("name", "parameters"), module_key)
        name = _optional(module, "name", str, module_key)
        if name is not None and name not in SERIALIZATION_MODULES:
            raise WandbArtifactsIOManagerError(
                f"Oops! It looks like the value you provided, '{name}', isn't recognized as a valid serialization "
                f"module. Here are the ones we do support: {list(SERIALIZATION_MODULES)}."
            )
        _optional(module, "parameters", Mapping, module_key)
    return settings


def check_read_configuration(configuration: Any, where: str, has_asset_key: bool, upstream_partitioned: bool) -> dict:
    """The input configuration ``configuration`` of an asset input (``has_asset_key``) or an op's, whose upstream
    is (``upstream_partitioned``) or is not partitioned, checked as dagster-wandb checks it."""
    settings = _configuration_dict(configuration, where)
    _reject_unknown_configuration_keys(settings, READ_CONFIGURATION_KEYS, "reading")
    key = f"{where}.{ARTIFACT_CONFIGURATION_KEY}"
    for name in ("name", "get", "get_path", "version", "alias"):
        _optional(settings, name, str, key)
    if not has_asset_key and settings.get("name") is None:
        raise WandbArtifactsIOManagerError(
            "The 'name' property is missing in the 'wandb_artifact_configuration' settings. For Artifacts used in an "
            "@op, a 'name' property is required. You could use an @asset as an alternative."
        )
    partitions = _optional(settings, "partitions", Mapping, key) or {}
    if not upstream_partitioned and len(partitions) > 0:
        raise WandbArtifactsIOManagerError(
            "You've included a 'partitions' value in the 'wandb_artifact_configuration' settings but it's not "
            "within a partitioned execution. Please only use 'partitions' within a partitioned context."
        )
    if upstream_partitioned:
        if settings.get("get") is not None or settings.get("get_path") is not None:
            raise WandbArtifactsIOManagerError(
                "You've given a value for 'get' and/or 'get_path' in the 'wandb_artifact_configuration' settings "
                "during a partitioned execution. Please use the 'partitions' property to set 'get' or 'get_path' "
                "for each individual partition. To set a default value for all partitions, use '*'."
            )
        if settings.get("version") is not None or settings.get("alias") is not None:
            # dagster-wandb silently ignores these here (and loads `latest`); the Rust side refuses them, so do we.
            raise WandbArtifactsIOManagerError(
                "You've given a value for 'version' and/or 'alias' in the 'wandb_artifact_configuration' settings "
                "during a partitioned execution. Please use the 'partitions' property to set 'version' or 'alias' "
                "for each individual partition. To set a default value for all partitions, use '*'."
            )
        for partition_key, partition in partitions.items():
            _check_partition(partition_key, partition, f"{key}.partitions.{partition_key}")
    else:
        if has_asset_key and settings.get("name") is not None:
            raise WandbArtifactsIOManagerError(
                "A conflict has been detected in the provided configuration settings. The 'name' parameter appears to "
                "be specified twice - once in the 'wandb_artifact_configuration' metadata dictionary, and again as an "
                "AssetKey. Kindly avoid setting the name directly, since the AssetKey will be used for this purpose."
            )
        if settings.get("version") is not None and settings.get("alias") is not None:
            raise WandbArtifactsIOManagerError(
                "You've provided both 'version' and 'alias' in the 'wandb_artifact_configuration' settings. Only "
                "one should be used at a time. If you decide not to use any, the latest version will be applied "
                "automatically."
            )
        if settings.get("get") is not None and settings.get("get_path") is not None:
            raise WandbArtifactsIOManagerError(
                "You've provided both 'get' and 'get_path' in the 'wandb_artifact_configuration' settings. Only "
                "one should be used at a time. If you decide not to use any, the entire Artifact will be returned."
            )
    return settings


def _check_partition(partition_key: str, partition: Any, key: str) -> None:
    if not isinstance(partition, Mapping):
        raise InvalidConfigurationError(key, f"got {partition!r}, expected a dict")
    if len(partition) == 0:
        raise WandbArtifactsIOManagerError(
            f"The configuration is empty for the partition identified by the key '{partition_key}'. This happened "
            "within the 'wandb_artifact_configuration' metadata dictionary."
        )
    unknown = [k for k in partition if k not in PARTITION_CONFIGURATION_KEYS]
    if unknown:
        raise WandbArtifactsIOManagerError(
            f"The configuration keys '{unknown}' you are trying to use are not supported for the partition "
            f"identified by the key '{partition_key}'. This happened within the 'wandb_artifact_configuration' "
            "metadata dictionary."
        )
    for name in PARTITION_CONFIGURATION_KEYS:
        _optional(partition, name, str, key)
    # dagster-wandb prints the literal text '{key}' in these two; ours name the partition, as the Rust side does.
    if partition.get("version") is not None and partition.get("alias") is not None:
        raise WandbArtifactsIOManagerError(
            f"You've provided both 'version' and 'alias' for the partition with key '{partition_key}'. You should "
            "only use one of these properties at a time. If you choose not to use any, the latest version will be "
            "used by default. If this partition is configured with the '*' key, please correct the wildcard "
            "configuration."
        )
    if partition.get("get") is not None and partition.get("get_path") is not None:
        raise WandbArtifactsIOManagerError(
            "You've provided both 'get' and 'get_path' in the 'wandb_artifact_configuration' settings for the "
            f"partition with key '{partition_key}'. Only one of these properties should be used. If you choose not "
            "to use any, the whole Artifact will be returned. If this partition is configured with the '*' key, "
            "please correct the wildcard configuration."
        )


def _configuration_dict(configuration: Any, where: str) -> dict:
    if configuration is None:
        return {}
    if not isinstance(configuration, Mapping):
        raise InvalidConfigurationError(f"{where}.{ARTIFACT_CONFIGURATION_KEY}",
                                        f"got {configuration!r}, expected a dict")
    return dict(configuration)


def _reject_unknown_configuration_keys(settings: Mapping, supported: tuple, action: str) -> None:
    unknown = [k for k in settings if k not in supported]
    if unknown:
        raise WandbArtifactsIOManagerError(
            f"The configuration keys '{unknown}' you are trying to use are not supported within the "
            f"'wandb_artifact_configuration' metadata dictionary when {action} an Artifact."
        )


def _reject_unknown(settings: Mapping, supported, key: str) -> None:
    for name in settings:
        if name not in supported:
            raise InvalidConfigurationError(f"{key}.{name}",
                                            f"is not a known key; expected one of {', '.join(supported)}")


def _optional(settings: Mapping, name: str, expected: type, key: str) -> Optional[Any]:
    value = settings.get(name)
    # bool is an int in Python; an integer field does not take True.
    if value is None or (isinstance(value, expected) and not (expected is int and isinstance(value, bool))):
        return value
    kinds = {str: "a string", bool: "true or false", int: "an integer", Mapping: "a dict"}
    raise InvalidConfigurationError(f"{key}.{name}", f"got {value!r}, expected {kinds[expected]}")


def _check_each(items: Any, key: str, fields: dict) -> None:
    if items is None:
        return
    if not isinstance(items, list):
        raise InvalidConfigurationError(key, f"got {items!r}, expected a list of dicts")
    for index, item in enumerate(items):
        item_key = f"{key}[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidConfigurationError(item_key, f"got {item!r}, expected a dict")
        _reject_unknown(item, tuple(fields), item_key)
        required = "uri" if "uri" in fields else "local_path"
        if item.get(required) is None:
            raise InvalidConfigurationError(f"{item_key}.{required}", "is required")
        for name, expected in fields.items():
            _optional(item, name, expected, item_key)
        policy = item.get("policy")
        if policy is not None and policy not in ("mutable", "immutable"):
            raise InvalidConfigurationError(f"{item_key}.policy", f"got {policy!r}, expected mutable or immutable")
