"""The real wandb client against our W&B-compatible server: one command per invocation, one JSON line out.

  log <dir> <name> <MD5|XXH128> <alias>    wandb.init + Artifact.add_dir + run.log_artifact + wait
  get <entity/project/name:alias> <root>   wandb.Api().artifact(...).download(root) + verify(root)
  link <entity/project/name:alias> <entity/project/collection> <alias>
  ls <entity/project> <type>                wandb.Api().artifact_collections(...), names and version counts
"""
import hashlib
import json
import os
import sys

import wandb

SETTINGS = dict(x_disable_stats=True, x_disable_meta=True, disable_git=True, disable_code=True,
                console="off", silent=True)


def tree(root):
    out = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.md5(f.read()).hexdigest()
    return out


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "log":
        directory, name, algorithm, alias = args
        run = wandb.init(entity="ent", project="proj", settings=wandb.Settings(**SETTINGS))
        artifact = wandb.Artifact(name, type="dataset", description="from python", metadata={"side": "python"},
                                  digest_algorithm=algorithm)
        artifact.add_dir(directory)
        run.log_artifact(artifact, aliases=[alias], tags=["from python"])
        artifact.wait()
        result = {"digest": artifact.digest, "version": artifact.version}
        run.finish()
    elif command == "get":
        address, root = args
        artifact = wandb.Api().artifact(address)
        artifact.download(root=root)
        artifact.verify(root=root)
        result = {"digest": artifact.digest, "version": artifact.version, "files": tree(root),
                  "metadata": artifact.metadata, "aliases": sorted(artifact.aliases), "tags": artifact.tags}
    elif command == "link":
        address, target, alias = args
        run = wandb.init(entity="ent", project="proj", settings=wandb.Settings(**SETTINGS))
        artifact = run.use_artifact(address)
        artifact.link(target, aliases=[alias])
        run.finish()
        result = {"digest": artifact.digest}
    elif command == "ls":
        project, type_name = args
        collections = wandb.Api().artifact_collections(project, type_name)
        result = {"collections": sorted((c.name, len(list(c.artifacts()))) for c in collections)}
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
