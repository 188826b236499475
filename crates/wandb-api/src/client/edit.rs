//! Changing versions and collections after logging, with the documents wandb 0.31.0's public API sends
//! (`AddAliases`, `DeleteAliases`, `UpdateArtifact`, `DeleteArtifact`, `UnlinkArtifact`,
//! `ProjectArtifactCollection`, `UpdateArtifactSequence`/`Portfolio`, `UpdateArtifactSequenceType`, the
//! collection-tag mutations, `DeleteArtifactSequence`/`Portfolio`).
//!
//! The checks both backends share (`VersionEdit::validate_for`, `check_deletable`, `check_linked`) run here
//! before anything is sent, so a refused edit is the same error on either backend.

use serde_json::{Value, json};
use wandb_store::{ArtifactVersion, Collection, CollectionEdit, ProjectRef, VersionEdit};

use super::WandbClient;
use crate::error::{Error, Result};

const ADD_ALIASES: &str =
    "mutation AddAliases($input: AddAliasesInput!) { result: addAliases(input: $input) { success } }";
const DELETE_ALIASES: &str =
    "mutation DeleteAliases($input: DeleteAliasesInput!) { result: deleteAliases(input: $input) { success } }";
const UPDATE_ARTIFACT: &str = "mutation UpdateArtifact($input: UpdateArtifactInput!) {
  result: updateArtifact(input: $input) { artifact { id } }
}";
const DELETE_ARTIFACT: &str = "mutation DeleteArtifact($input: DeleteArtifactInput!) { result: deleteArtifact(input: $input) { artifact { id } } }";
const UNLINK_ARTIFACT: &str =
    "mutation UnlinkArtifact($input: UnlinkArtifactInput!) { result: unlinkArtifact(input: $input) { success } }";
const PROJECT_ARTIFACT_COLLECTION: &str =
    "query ProjectArtifactCollection($entity: String!, $project: String!, $type: String!, $name: String!) {
  project(entityName: $entity, name: $project) {
    artifactType(name: $type) {
      artifactCollection(name: $name) { __typename id name description tags { edges { node { name } } } }
    }
  }
}";
const UPDATE_SEQUENCE: &str = "mutation UpdateArtifactSequence($input: UpdateArtifactSequenceInput!) {
  result: updateArtifactSequence(input: $input) { artifactCollection { __typename id name } }
}";
const UPDATE_PORTFOLIO: &str = "mutation UpdateArtifactPortfolio($input: UpdateArtifactPortfolioInput!) {
  result: updateArtifactPortfolio(input: $input) { artifactCollection { __typename id name } }
}";
const MOVE_SEQUENCE: &str = "mutation UpdateArtifactSequenceType($input: MoveArtifactSequenceInput!) {
  result: moveArtifactSequence(input: $input) { artifactCollection { __typename id name } }
}";
const ADD_COLLECTION_TAGS: &str =
    "mutation AddArtifactCollectionTags($input: CreateArtifactCollectionTagAssignmentsInput!) {
  result: createArtifactCollectionTagAssignments(input: $input) { tags { __typename id name } }
}";
const DELETE_COLLECTION_TAGS: &str =
    "mutation DeleteArtifactCollectionTags($input: DeleteArtifactCollectionTagAssignmentsInput!) {
  result: deleteArtifactCollectionTagAssignments(input: $input) { success }
}";
const DELETE_SEQUENCE: &str = "mutation DeleteArtifactSequence($id: ID!) {
  result: deleteArtifactSequence(input: {artifactSequenceID: $id}) { artifactCollection { __typename state } }
}";
const DELETE_PORTFOLIO: &str = "mutation DeleteArtifactPortfolio($id: ID!) {
  result: deleteArtifactPortfolio(input: {artifactPortfolioID: $id}) { artifactCollection { __typename state } }
}";

/// A collection as `ProjectArtifactCollection` describes it.
struct CollectionRef {
    id: String,
    portfolio: bool,
    tags: Vec<String>,
}

/// `[{"tagName": …}]`, the SDK's `TagInput` list.
fn tag_inputs<'a>(tags: impl IntoIterator<Item = &'a String>) -> Vec<Value> {
    tags.into_iter().map(|t| json!({"tagName": t})).collect()
}

impl WandbClient {
    pub(crate) async fn edit_version(&self, version: &ArtifactVersion, edit: &VersionEdit) -> Result<ArtifactVersion> {
        edit.validate_for(version)?;
        let project = ProjectRef::new(&version.entity, &version.project)?;
        // The aliases of the collection the version is seen through (a portfolio's for a link).
        let alias_inputs = |aliases: &[String]| -> Vec<Value> {
            aliases
                .iter()
                .map(|alias| {
                    json!({"alias": alias, "artifactCollectionName": version.name,
                           "entityName": version.entity, "projectName": version.project})
                })
                .collect()
        };
        if !edit.add_aliases.is_empty() {
            let input = json!({"artifactID": version.id, "aliases": alias_inputs(&edit.add_aliases)});
            self.graphql("AddAliases", ADD_ALIASES, json!({"input": input})).await?;
        }
        if !edit.remove_aliases.is_empty() {
            let input = json!({"artifactID": version.id, "aliases": alias_inputs(&edit.remove_aliases)});
            self.graphql("DeleteAliases", DELETE_ALIASES, json!({"input": input})).await?;
        }
        if edit.changes_record() {
            // As the SDK's `save()`: description and metadata are always sent (the current ones when unchanged,
            // read afresh: the caller's copy may be stale), tags as the difference, the TTL only when it changes.
            let current = self.artifact_by_id(&version.id).await?;
            let description = edit.description.clone().unwrap_or_else(|| current.description.clone());
            let metadata = edit.metadata.as_ref().unwrap_or(&current.metadata);
            let mut input = json!({
                "artifactID": version.id, "description": description,
                "metadata": serde_json::to_string(metadata).expect("metadata serialises"),
            });
            if let Some(tags) = &edit.tags {
                let wanted = artifact_core::validate_tags(tags)?;
                input["tagsToAdd"] = tag_inputs(wanted.iter().filter(|t| !current.tags.contains(t))).into();
                input["tagsToDelete"] = tag_inputs(current.tags.iter().filter(|t| !wanted.contains(t))).into();
            }
            if let Some(ttl) = edit.ttl {
                input["ttlDurationSeconds"] = ttl.to_graphql().into();
            }
            self.graphql("UpdateArtifact", UPDATE_ARTIFACT, json!({"input": input})).await?;
        }
        self.membership(&project, &version.name, &version.version()).await
    }

    pub(crate) async fn delete_version(&self, version: &ArtifactVersion, delete_aliases: bool) -> Result<()> {
        if version.linked_from.is_some() {
            return self.unlink_version(version).await;
        }
        wandb_store::check_deletable(version, delete_aliases)?;
        let input = json!({"artifactID": version.id, "deleteAliases": delete_aliases});
        self.graphql("DeleteArtifact", DELETE_ARTIFACT, json!({"input": input})).await?;
        Ok(())
    }

    pub(crate) async fn unlink_version(&self, linked: &ArtifactVersion) -> Result<()> {
        wandb_store::check_linked(linked)?;
        let project = ProjectRef::new(&linked.entity, &linked.project)?;
        let portfolio = self.collection_ref(&project, &linked.name, &linked.artifact_type).await?;
        let input = json!({"artifactID": linked.id, "artifactPortfolioID": portfolio.id});
        self.graphql("UnlinkArtifact", UNLINK_ARTIFACT, json!({"input": input})).await?;
        Ok(())
    }

    /// The id, kind and tags of collection `name` (of type `artifact_type`).
    async fn collection_ref(&self, project: &ProjectRef, name: &str, artifact_type: &str) -> Result<CollectionRef> {
        let variables =
            json!({"entity": project.entity(), "project": project.project(), "type": artifact_type, "name": name});
        let data = self.graphql("ProjectArtifactCollection", PROJECT_ARTIFACT_COLLECTION, variables).await?;
        let node =
            data.pointer("/project/artifactType/artifactCollection").filter(|n| !n.is_null()).ok_or_else(|| {
                Error::ArtifactNotFound {
                    entity: project.entity().to_owned(),
                    project: project.project().to_owned(),
                    name: name.to_owned(),
                }
            })?;
        let id = node.get("id").and_then(Value::as_str).ok_or_else(|| Error::Protocol {
            operation: "ProjectArtifactCollection".to_owned(),
            reason: format!("no id for collection {name}"),
        })?;
        let tags = node
            .pointer("/tags/edges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.pointer("/node/name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        Ok(CollectionRef {
            id: id.to_owned(),
            portfolio: node.get("__typename").and_then(Value::as_str) == Some("ArtifactPortfolio"),
            tags,
        })
    }

    /// The type of collection `name`: what `ProjectArtifactCollection` needs to find it.
    async fn collection_type(&self, project: &ProjectRef, name: &str) -> Result<String> {
        Ok(self.membership(project, name, "latest").await?.artifact_type)
    }

    pub(crate) async fn edit_collection(
        &self,
        project: &ProjectRef,
        name: &str,
        edit: &CollectionEdit,
    ) -> Result<Collection> {
        artifact_core::validate_artifact_name(name)?;
        if let Some(tags) = &edit.tags {
            artifact_core::validate_tags(tags)?;
        }
        if let Some(new_name) = &edit.rename {
            artifact_core::validate_artifact_name(new_name)?;
        }
        let collection = self.collection_ref(project, name, &self.collection_type(project, name).await?).await?;
        if edit.description.is_some() || edit.rename.is_some() {
            let (operation, document, id_key) = if collection.portfolio {
                ("UpdateArtifactPortfolio", UPDATE_PORTFOLIO, "artifactPortfolioID")
            } else {
                ("UpdateArtifactSequence", UPDATE_SEQUENCE, "artifactSequenceID")
            };
            let mut input = json!({id_key: collection.id});
            if let Some(description) = &edit.description {
                input["description"] = json!(description);
            }
            if let Some(new_name) = &edit.rename {
                input["name"] = json!(new_name);
            }
            self.graphql(operation, document, json!({"input": input})).await?;
        }
        if let Some(kind) = &edit.artifact_type {
            let input = json!({"artifactSequenceID": collection.id, "destinationArtifactTypeName": kind});
            self.graphql("UpdateArtifactSequenceType", MOVE_SEQUENCE, json!({"input": input})).await?;
        }
        let current_name = edit.rename.as_deref().unwrap_or(name);
        if let Some(tags) = &edit.tags {
            let wanted = artifact_core::validate_tags(tags)?;
            let target = json!({"entityName": project.entity(), "projectName": project.project(),
                                "artifactCollectionName": current_name});
            let added: Vec<&String> = wanted.iter().filter(|t| !collection.tags.contains(t)).collect();
            let removed: Vec<&String> = collection.tags.iter().filter(|t| !wanted.contains(t)).collect();
            if !added.is_empty() {
                let mut input = target.clone();
                input["tags"] = tag_inputs(added).into();
                self.graphql("AddArtifactCollectionTags", ADD_COLLECTION_TAGS, json!({"input": input})).await?;
            }
            if !removed.is_empty() {
                let mut input = target;
                input["tags"] = tag_inputs(removed).into();
                self.graphql("DeleteArtifactCollectionTags", DELETE_COLLECTION_TAGS, json!({"input": input})).await?;
            }
        }
        let listed = self.list_collections(project, None).await?;
        listed.into_iter().find(|c| c.name == current_name).ok_or_else(|| Error::ArtifactNotFound {
            entity: project.entity().to_owned(),
            project: project.project().to_owned(),
            name: current_name.to_owned(),
        })
    }

    pub(crate) async fn delete_whole_collection(&self, project: &ProjectRef, name: &str) -> Result<()> {
        artifact_core::validate_artifact_name(name)?;
        let collection = self.collection_ref(project, name, &self.collection_type(project, name).await?).await?;
        let (operation, document) = if collection.portfolio {
            ("DeleteArtifactPortfolio", DELETE_PORTFOLIO)
        } else {
            ("DeleteArtifactSequence", DELETE_SEQUENCE)
        };
        self.graphql(operation, document, json!({"id": collection.id})).await?;
        Ok(())
    }
}
