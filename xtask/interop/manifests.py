"""Builds artifacts with the real wandb SDK, offline, and prints what it computed.

Reads a JSON list of scenarios on stdin; prints one JSON object per scenario on stdout, in order. Each scenario
has a `calls` list replayed on a fresh `wandb.Artifact`, or `parse` (a manifest in any dialect) for the SDK to
read back and digest. Used by `cargo xtask interop`; not part of any published crate.
"""

import json
import os
import sys

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import wandb  # noqa: E402
from wandb.sdk.artifacts.artifact_manifests.artifact_manifest_v1 import ArtifactManifestV1  # noqa: E402
from wandb.sdk.artifacts._generated import ArtifactDigestAlgorithm  # noqa: E402


def contents(manifest):
    # The SDK's own view of the entries, as it serialises them.
    return manifest.to_manifest_json()["contents"]


def run(scenario):
    if "parse" in scenario:
        # As Artifact._load_manifest does: the algorithm comes from the server's record of the artifact.
        algorithm = ArtifactDigestAlgorithm["MANIFEST_" + scenario.get("algorithm", "MD5")]
        manifest = ArtifactManifestV1.from_manifest_json(json.loads(scenario["parse"]), algorithm)
        return {"digest": manifest.digest(), "contents": contents(manifest)}
    artifact = wandb.Artifact(scenario["name"], scenario["type"], digest_algorithm=scenario.get("algorithm", "MD5"))
    for call in scenario["calls"]:
        kind = call["call"]
        if kind == "add_dir":
            artifact.add_dir(call["path"], name=call.get("name"))
        elif kind == "add_file":
            artifact.add_file(call["path"], name=call.get("name"))
        elif kind == "new_file":
            with artifact.new_file(call["name"], mode="wb") as f:
                f.write(bytes.fromhex(call["hex"]))
        elif kind == "add_reference":
            artifact.add_reference(call["uri"], name=call.get("name"), checksum=call.get("checksum", True),
                                   max_objects=call.get("max_objects"))
        else:
            raise ValueError(f"unknown call {kind!r}")
    return {"digest": artifact.digest, "contents": contents(artifact.manifest), "version": wandb.__version__}


def main():
    scenarios = json.load(sys.stdin)
    for scenario in scenarios:
        print(json.dumps(run(scenario), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
