"""The real wandb client against our W&B-compatible server: one command per invocation, one JSON line out.

  log <dir> <name> <MD5|XXH128> <alias>    wandb.init + Artifact.add_dir + run.log_artifact + wait
  log-ref <uri> <name>                     wandb.init + Artifact.add_reference(uri) + run.log_artifact + wait;
                                            prints the manifest's contents
  get <entity/project/name:alias> <root>   wandb.Api().artifact(...).download(root) + verify(root)
  link <entity/project/name:alias> <entity/project/collection> <alias>
  ls <entity/project> <type>                wandb.Api().artifact_collections(...), names and version counts
  runlog <run id>                           the SDK capture's first process: config, tags, rows (commit=False,
                                            step=5), summary and config updates, finish(exit_code=3)
  resume <run id> <allow|must>              wandb.init(id, resume=...), one row, finish(); prints resumed and step
  dist-write <name> <distributed id> <i>    one writer of the distributed capture: parts/table_<i> upserted
  dist-finish <name> <distributed id>       the finisher: merged = PartitionedTable("parts"), finish_artifact
  launch-add <job> <queue>                  launch_add(job, queue_name, resource="local-process", run_config lr=0.1)
  lineage <entity/project/name:alias>       wandb.Api(): logged_by().used_artifacts() back to the first run, with each
                                            run's job type and the artifacts each used
  history <entity/project/run id>           wandb.Api().run(...): history(pandas=False), scan_history() and the state
  show <entity/project/name:alias>          aliases, tags, description, metadata and TTL of a version, or
                                            {"missing": true}
  edit <entity/project/name:alias> <json>   api.artifact(...): aliases appended/removed, tags, description, metadata,
                                            ttl (seconds, "inherit" or null) set, then save(); prints show's answer
  delete <entity/project/name:alias> <0|1>  artifact.delete(delete_aliases=...); prints the error's type if refused
  unlink <entity/project/name:alias>        artifact.unlink()
  versions <entity/project/name> <type>     api.artifact_versions(type, name): versions and aliases
  exists <entity/project/name:alias> <entity/project/name> <type>
                                            api.artifact_exists, api.artifact_collection_exists
  collection <entity/project/name> <type> <json>
                                            api.artifact_collection(...): description and tags set, save(); its
                                            aliases, description and tags as read back
  run-artifacts <entity/project/run id>     run.logged_artifacts(), run.used_artifacts()
  files <entity/project/name:alias>         artifact.files(): names and sizes; and files(names=[first])
  artifact-type <entity/project> <type>     api.artifact_type(type, project): its name and collections
  registry-create <name> <type>             api.create_registry(name, "organization", artifact_types=[type])
  registries                                api.registries(): name, description, visibility and types of each; the
                                            collections and versions (with aliases) of each
  registry-edit <name> <new name> <description>
                                            api.registry(name): description and name changed, save()
  registry-delete <name>                    api.registry(name).delete()
  registry-members <name>                   registry.members(): the error's message
"""
import hashlib
import json
import os
import sys

import wandb

ENTITY = os.environ.get("WANDB_ENTITY", "ent")
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


def show(artifact):
    ttl = artifact.ttl
    return {"version": artifact.version, "aliases": sorted(artifact.aliases), "tags": sorted(artifact.tags),
            "description": artifact.description, "metadata": artifact.metadata,
            "ttl": None if ttl is None else int(ttl.total_seconds())}


def fetch(address):
    try:
        return wandb.Api().artifact(address)
    except (wandb.errors.CommError, ValueError):
        return None


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "log":
        directory, name, algorithm, alias = args
        run = wandb.init(entity=ENTITY, project="proj", settings=wandb.Settings(**SETTINGS))
        artifact = wandb.Artifact(name, type="dataset", description="from python", metadata={"side": "python"},
                                  digest_algorithm=algorithm)
        artifact.add_dir(directory)
        run.log_artifact(artifact, aliases=[alias], tags=["from python"])
        artifact.wait()
        result = {"digest": artifact.digest, "version": artifact.version}
        run.finish()
    elif command == "log-ref":
        uri, name = args
        run = wandb.init(entity=ENTITY, project="proj", settings=wandb.Settings(**SETTINGS))
        artifact = wandb.Artifact(name, type="dataset")
        artifact.add_reference(uri)
        run.log_artifact(artifact)
        artifact.wait()
        result = {"digest": artifact.digest, "version": artifact.version,
                  "contents": artifact.manifest.to_manifest_json()["contents"]}
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
        run = wandb.init(entity=ENTITY, project="proj", settings=wandb.Settings(**SETTINGS))
        artifact = run.use_artifact(address)
        artifact.link(target, aliases=[alias])
        run.finish()
        result = {"digest": artifact.digest}
    elif command == "ls":
        project, type_name = args
        collections = wandb.Api().artifact_collections(project, type_name)
        result = {"collections": sorted((c.name, len(list(c.artifacts()))) for c in collections)}
    elif command == "runlog":
        (run_id,) = args
        run = wandb.init(entity=ENTITY, project="proj", id=run_id, resume="allow", tags=["t1"],
                         config={"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam"}},
                         settings=wandb.Settings(**SETTINGS))
        run.log({"loss": 0.5, "acc": 0.1})
        run.log({"loss": 0.4, "acc": 0.2, "nested": {"a": 1}})
        run.log({"extra": 1.5}, commit=False)
        run.log({"loss": 0.3})
        run.log({"loss": 0.2}, step=5)
        run.summary["best_loss"] = 0.2
        run.summary.update({"final": "yes"})
        run.config.update({"bs": 32})
        result = {"resumed": run.resumed}
        run.finish(exit_code=3)
    elif command == "resume":
        run_id, mode = args
        run = wandb.init(entity=ENTITY, project="proj", id=run_id, resume=mode, settings=wandb.Settings(**SETTINGS))
        result = {"resumed": run.resumed, "config": dict(run.config)}
        run.log({"loss": 0.1})
        run.finish()
    elif command == "dist-write":
        name, distributed_id, i = args[0], args[1], int(args[2])
        run = wandb.init(entity=ENTITY, project="proj", group=distributed_id, settings=wandb.Settings(**SETTINGS))
        artifact = wandb.Artifact(name, type="dataset")
        artifact.add(wandb.Table(columns=["a", "b"], data=[[i, f"row{i}"], [i + 10, f"row{i + 10}"]]), f"parts/table_{i}")
        run.upsert_artifact(artifact, distributed_id=distributed_id)
        run.finish()
        result = {"upserted": i}
    elif command == "dist-finish":
        name, distributed_id = args
        run = wandb.init(entity=ENTITY, project="proj", group=distributed_id, settings=wandb.Settings(**SETTINGS))
        artifact = wandb.Artifact(name, type="dataset")
        artifact.add(wandb.data_types.PartitionedTable("parts"), "merged")
        run.finish_artifact(artifact, distributed_id=distributed_id)
        artifact.wait()
        result = {"digest": artifact.digest, "version": artifact.version}
        run.finish()
    elif command == "launch-add":
        from wandb.sdk.launch import launch_add
        job, queue = args
        queued = launch_add(job=job, queue_name=queue, entity=ENTITY, project="proj", resource="local-process",
                            config={"overrides": {"run_config": {"lr": 0.1}}})
        result = {"item_id": queued.id, "queue": queued.queue_name}
    elif command == "lineage":
        (path,) = args
        api = wandb.Api()
        entity, project, _ = path.split("/")
        chain = []
        artifact = api.artifact(path)
        while artifact is not None:
            run = artifact.logged_by()
            if run is None:
                chain.append({"artifact": f"{artifact.name.split(':')[0]}:{artifact.version}", "run": None})
                break
            used = [a.name for a in run.used_artifacts()]
            name = f"{artifact.name.split(':')[0]}:{artifact.version}"
            chain.append({"artifact": name, "run": run.id, "job_type": run.job_type, "used": used,
                          "used_by": [r.id for r in artifact.used_by()]})
            artifact = api.artifact(f"{entity}/{project}/{used[0]}") if used else None
        result = {"chain": chain}
    elif command == "history":
        (path,) = args
        run = wandb.Api().run(path)
        result = {"state": run.state, "history": run.history(pandas=False), "scan": list(run.scan_history()),
                  "summary": {k: v for k, v in run.summary.items() if not k.startswith("_")}}
    elif command == "show":
        (address,) = args
        artifact = fetch(address)
        result = {"missing": True} if artifact is None else show(artifact)
    elif command == "edit":
        address, spec = args[0], json.loads(args[1])
        artifact = wandb.Api().artifact(address)
        for alias in spec.get("add_aliases", []):
            artifact.aliases.append(alias)
        for alias in spec.get("remove_aliases", []):
            artifact.aliases.remove(alias)
        if "tags" in spec:
            artifact.tags = spec["tags"]
        if "description" in spec:
            artifact.description = spec["description"]
        if "metadata" in spec:
            artifact.metadata = spec["metadata"]
        if "ttl" in spec:
            import datetime
            from wandb.sdk.artifacts.artifact_ttl import ArtifactTTL
            ttl = spec["ttl"]
            artifact.ttl = ArtifactTTL.INHERIT if ttl == "inherit" else (
                None if ttl is None else datetime.timedelta(seconds=ttl))
        artifact.save()
        # A TTL shorter than the version's age expires it at once: then it is gone.
        again = fetch(address.split(":")[0] + ":" + artifact.version)
        result = {"missing": True} if again is None else show(again)
    elif command == "delete":
        address, delete_aliases = args[0], args[1] == "1"
        try:
            wandb.Api().artifact(address).delete(delete_aliases=delete_aliases)
            result = {"deleted": True}
        except Exception as e:  # the SDK raises CommError for the server's refusal
            result = {"deleted": False, "error": type(e).__name__, "message": str(e)}
    elif command == "unlink":
        (address,) = args
        wandb.Api().artifact(address).unlink()
        result = {"unlinked": True}
    elif command == "versions":
        name, type_name = args
        versions = wandb.Api().artifact_versions(type_name, name)
        result = {"versions": [[v.version, sorted(v.aliases)] for v in versions]}
    elif command == "exists":
        address, collection, type_name = args
        api = wandb.Api()
        result = {"artifact": api.artifact_exists(address),
                  "collection": api.artifact_collection_exists(collection, type_name)}
    elif command == "collection":
        name, type_name, spec = args[0], args[1], json.loads(args[2])
        api = wandb.Api()
        collection = api.artifact_collection(type_name, name)
        if "description" in spec:
            collection.description = spec["description"]
        if "tags" in spec:
            collection.tags = spec["tags"]
        collection.save()
        again = api.artifact_collection(type_name, name)
        result = {"description": again.description, "tags": sorted(again.tags), "aliases": sorted(again.aliases),
                  "name": again.name, "type": again.type}
    elif command == "run-artifacts":
        (path,) = args
        run = wandb.Api().run(path)
        result = {"logged": sorted(a.name for a in run.logged_artifacts()),
                  "used": sorted(a.name for a in run.used_artifacts())}
    elif command == "files":
        (address,) = args
        artifact = wandb.Api().artifact(address)
        files = artifact.files()
        listed = sorted((f.name, f.size) for f in files)
        first = [f.name for f in artifact.files(names=[listed[0][0]])] if listed else []
        result = {"files": listed, "total": len(files), "first": first}
    elif command == "artifact-type":
        project, type_name = args
        artifact_type = wandb.Api().artifact_type(type_name, project)
        result = {"name": artifact_type.name, "collections": sorted(c.name for c in artifact_type.collections())}
    elif command == "registry-create":
        name, type_name = args
        registry = wandb.Api().create_registry(name, "organization", description="made in python",
                                               artifact_types=[type_name])
        result = {"name": registry.name, "full_name": registry.full_name}
    elif command == "registries":
        api = wandb.Api()
        out = []
        for registry in api.registries():
            out.append({"name": registry.name, "description": registry.description,
                        "visibility": registry.visibility,
                        "types": sorted(registry.artifact_types), "all_types": registry.allow_all_artifact_types,
                        "collections": sorted(c.name for c in registry.collections()),
                        "versions": sorted([v.name, sorted(v.aliases)] for v in registry.versions())})
        result = {"registries": out}
    elif command == "registry-edit":
        name, new_name, description = args
        registry = wandb.Api().registry(name)
        registry.description = description
        registry.name = new_name
        registry.save()
        again = wandb.Api().registry(new_name)
        result = {"name": again.name, "description": again.description}
    elif command == "registry-delete":
        (name,) = args
        wandb.Api().registry(name).delete()
        result = {"deleted": name}
    elif command == "registry-members":
        (name,) = args
        try:
            wandb.Api().registry(name).members()
            result = {"refused": False}
        except Exception as e:
            result = {"refused": True, "message": str(e)}
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
