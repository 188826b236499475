"""wandb_artifact_configuration checked with dagster-wandb's rules and messages."""

import pytest

from dagster_wandb_rust import InvalidConfigurationError, WandbArtifactsIOManagerError
from dagster_wandb_rust.configuration import check_read_configuration, check_write_configuration


def write(configuration, has_asset_key=True):
    return check_write_configuration(configuration, "asset 'a'", has_asset_key)


def read(configuration, has_asset_key=True, upstream_partitioned=False):
    return check_read_configuration(configuration, "input 'x'", has_asset_key, upstream_partitioned)


def test_a_valid_write_configuration_passes_unchanged():
    configuration = {"type": "dataset", "description": "d", "aliases": ["a", "b"],
                     "add_files": [{"local_path": "f.txt", "name": "g.txt", "is_tmp": True}],
                     "add_dirs": [{"local_path": "d", "policy": "immutable"}],
                     "add_references": [{"uri": "s3://b/k", "checksum": False, "max_objects": 10}],
                     "serialization_module": {"name": "joblib", "parameters": {"compress": 3}},
                     "partitions": {"ignored": {}}}
    assert write(configuration) == configuration
    assert write(None) == {}


def test_unknown_keys_are_dagster_wandbs_messages():
    with pytest.raises(WandbArtifactsIOManagerError) as error:
        write({"nam": "x", "typ": "y"})
    assert str(error.value) == (
        "The configuration keys '['nam', 'typ']' you are trying to use are not supported within the "
        "'wandb_artifact_configuration' metadata dictionary when writing an Artifact.")
    with pytest.raises(WandbArtifactsIOManagerError, match=r"'\['foo'\]' .* when reading an Artifact\.$"):
        read({"foo": 1})


@pytest.mark.parametrize("configuration, key", [
    ({"aliases": "best"}, "aliases"),
    ({"type": 3}, "type"),
    ({"add_files": {"local_path": "f"}}, "add_files"),
    ({"add_files": [{"name": "no path"}]}, "add_files[0].local_path"),
    ({"add_dirs": [{"local_path": "d", "merge": "yes"}]}, "add_dirs[0].merge"),
    ({"add_references": [{"uri": "s3://b", "max_objects": True}]}, "add_references[0].max_objects"),
    ({"add_references": [{"uri": "s3://b", "bogus": 1}]}, "add_references[0].bogus"),
    ({"add_dirs": [{"local_path": "d", "policy": "sometimes"}]}, "add_dirs[0].policy"),
    ({"serialization_module": "pickle"}, "serialization_module"),
])
def test_wrong_types_name_the_key_and_the_value(configuration, key):
    with pytest.raises(InvalidConfigurationError) as error:
        write(configuration)
    assert error.value.key == f"asset 'a'.wandb_artifact_configuration.{key}"


def test_an_unknown_serialization_module_lists_the_supported_ones():
    with pytest.raises(WandbArtifactsIOManagerError) as error:
        write({"serialization_module": {"name": "marshal"}})
    assert str(error.value).startswith("Oops! It looks like the value you provided, 'marshal', isn't recognized")
    assert "['dill', 'cloudpickle', 'joblib', 'pickle', 'json'," in str(error.value)


def test_names_where_dagster_wandb_refuses_them():
    with pytest.raises(WandbArtifactsIOManagerError, match="Please remove the 'name' property"):
        write({"name": "x"})
    assert write({"name": "x"}, has_asset_key=False) == {"name": "x"}
    with pytest.raises(WandbArtifactsIOManagerError, match="appears to be specified twice"):
        read({"name": "x"})
    with pytest.raises(WandbArtifactsIOManagerError, match="For Artifacts used in an @op, a 'name' property"):
        read({}, has_asset_key=False)
    # On the partitioned path a name beside the asset key is allowed (dagster-wandb uses it).
    assert read({"name": "x"}, upstream_partitioned=True) == {"name": "x"}


def test_unpartitioned_reads():
    assert read({"get": "Table", "alias": "best"}) == {"get": "Table", "alias": "best"}
    with pytest.raises(WandbArtifactsIOManagerError, match="not within a partitioned execution"):
        read({"partitions": {"*": {"alias": "latest"}}})
    with pytest.raises(WandbArtifactsIOManagerError, match="both 'version' and 'alias'"):
        read({"version": "v0", "alias": "best"})
    with pytest.raises(WandbArtifactsIOManagerError, match="both 'get' and 'get_path'"):
        read({"get": "Table", "get_path": "f"})


def test_partitioned_reads():
    good = {"partitions": {"*": {"version": "v0"}, "p2": {"get": "Table"}, "p3": {"get_path": "f", "alias": "prod"}}}
    assert read(good, upstream_partitioned=True) == good
    with pytest.raises(WandbArtifactsIOManagerError, match="during a partitioned execution.*'get' or 'get_path'"):
        read({"get": "Table"}, upstream_partitioned=True)
    with pytest.raises(WandbArtifactsIOManagerError, match="during a partitioned execution.*'version' or 'alias'"):
        read({"alias": "prod"}, upstream_partitioned=True)
    with pytest.raises(WandbArtifactsIOManagerError) as error:
        read({"partitions": {"p1": {}}}, upstream_partitioned=True)
    assert str(error.value) == ("The configuration is empty for the partition identified by the key 'p1'. This "
                                "happened within the 'wandb_artifact_configuration' metadata dictionary.")
    with pytest.raises(WandbArtifactsIOManagerError, match=r"'\['name'\]' .* partition identified by the key '\*'"):
        read({"partitions": {"*": {"name": "x"}}}, upstream_partitioned=True)
    with pytest.raises(WandbArtifactsIOManagerError, match="both 'version' and 'alias' for the partition with key 'p1'"):
        read({"partitions": {"p1": {"version": "v0", "alias": "a"}}}, upstream_partitioned=True)
    with pytest.raises(WandbArtifactsIOManagerError, match="'get_path' .* for the partition with key 'p1'"):
        read({"partitions": {"p1": {"get": "T", "get_path": "f"}}}, upstream_partitioned=True)
    with pytest.raises(InvalidConfigurationError, match=r"partitions\.p1"):
        read({"partitions": {"p1": "latest"}}, upstream_partitioned=True)
