//! Registries through wandb 0.31.0's documents: `FetchRegistries`, `FetchRegistry`, `UpsertRegistry`,
//! `RenameRegistry`, `DeleteRegistry`, with the organisation found by `FetchOrgInfoFromEntity`.

use serde_json::{Value, json};
use wandb_store::{Registry, RegistrySpec, RegistryVisibility};

use super::WandbClient;
use super::fetch::next_cursor;
use crate::error::{Error, Result};

const REGISTRY_FRAGMENT: &str = "fragment RegistryFragment on Project {
  __typename id name entity { name organization { name } } description createdAt updatedAt access
  allowAllArtifactTypes: allowAllArtifactTypesInRegistry artifactTypes(includeAll: true) { edges { node { name } } }
}";

fn document(body: &str) -> String {
    format!("{body}\n{REGISTRY_FRAGMENT}")
}

const FETCH_REGISTRIES: &str =
    "query FetchRegistries($organization: String!, $filters: JSONString, $cursor: String, $perPage: Int) {
  organization(name: $organization) { orgEntity { projects(filters: $filters, after: $cursor, first: $perPage) {
    pageInfo { endCursor hasNextPage } edges { node { ...RegistryFragment } }
  } } }
}";
const FETCH_REGISTRY: &str = "query FetchRegistry($name: String, $entity: String) {
  entity(name: $entity) { project(name: $name) { ...RegistryFragment } }
}";
const UPSERT_REGISTRY: &str = "mutation UpsertRegistry($input: UpsertModelInput!) {
  upsertModel(input: $input) { inserted project { ...RegistryFragment } }
}";
const RENAME_REGISTRY: &str = "mutation RenameRegistry($input: RenameProjectInput!) {
  renameProject(input: $input) { inserted project { ...RegistryFragment } }
}";
const DELETE_REGISTRY: &str = "mutation DeleteRegistry($id: String!) { deleteModel(input: {id: $id}) { success } }";

/// A registry from `RegistryFragment`, with the project id `DeleteRegistry` takes.
fn registry_of(node: &Value) -> Result<(Registry, String)> {
    let text = |key: &str| node.get(key).and_then(Value::as_str);
    let protocol =
        |reason: &str| Error::Protocol { operation: "RegistryFragment".to_owned(), reason: reason.to_owned() };
    let full = text("name").ok_or_else(|| protocol("a registry without a name"))?;
    let name = full.strip_prefix(artifact_core::REGISTRY_PREFIX).ok_or_else(|| protocol("not a registry project"))?;
    let entity = node.pointer("/entity/name").and_then(Value::as_str).ok_or_else(|| protocol("no entity"))?;
    let created = text("createdAt").unwrap_or_default();
    let mut registry = Registry::new(entity, name, created);
    registry.description = text("description").filter(|d| !d.is_empty()).map(str::to_owned);
    registry.visibility = RegistryVisibility::from_graphql(text("access").unwrap_or("PRIVATE"));
    registry.allow_all_artifact_types = node.get("allowAllArtifactTypes").and_then(Value::as_bool).unwrap_or(true);
    text("updatedAt").unwrap_or(created).clone_into(&mut registry.updated_at);
    registry.artifact_types = node
        .pointer("/artifactTypes/edges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.pointer("/node/name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let id = text("id").ok_or_else(|| protocol("a registry without an id"))?.to_owned();
    Ok((registry, id))
}

/// `UpsertModelInput` for registry `name` of `org_entity`.
fn upsert_input(org_entity: &str, name: &str, spec: &RegistrySpec) -> Value {
    let mut input = json!({"entityName": org_entity, "name": format!("{}{name}", artifact_core::REGISTRY_PREFIX)});
    if let Some(description) = &spec.description {
        input["description"] = json!(description);
    }
    if let Some(visibility) = spec.visibility {
        input["access"] = json!(visibility.to_graphql());
    }
    if let Some(all) = spec.allow_all_artifact_types {
        input["allowAllArtifactTypesInRegistry"] = json!(all);
    }
    if !spec.add_artifact_types.is_empty() {
        input["artifactTypes"] = spec.add_artifact_types.iter().map(|t| json!({"name": t})).collect();
    }
    input
}

impl WandbClient {
    pub(crate) async fn list_registries(&self, entity: &str) -> Result<Vec<Registry>> {
        let (organization, _) = self.organization_of(entity).await?;
        let query = document(FETCH_REGISTRIES);
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let variables = json!({"organization": organization, "cursor": cursor, "perPage": 100});
            let data = self.graphql("FetchRegistries", &query, variables).await?;
            let Some(page) = data.pointer("/organization/orgEntity/projects").filter(|p| !p.is_null()) else { break };
            for edge in page.get("edges").and_then(Value::as_array).into_iter().flatten() {
                if let Some(node) = edge.get("node").filter(|n| n.get("name").is_some()) {
                    out.push(registry_of(node)?.0);
                }
            }
            match next_cursor(page, cursor.as_deref()) {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Registry `name` of `entity`'s organisation, with its project id.
    async fn fetch_registry(&self, entity: &str, name: &str) -> Result<(Registry, String)> {
        let (_, org_entity) = self.organization_of(entity).await?;
        let full = format!("{}{name}", artifact_core::REGISTRY_PREFIX);
        let data = self
            .graphql("FetchRegistry", &document(FETCH_REGISTRY), json!({"name": full, "entity": org_entity}))
            .await?;
        match data.pointer("/entity/project").filter(|p| !p.is_null()) {
            Some(node) => registry_of(node),
            None => Err(wandb_store::Error::RegistryNotFound { entity: org_entity, name: name.to_owned() }.into()),
        }
    }

    pub(crate) async fn get_registry(&self, entity: &str, name: &str) -> Result<Registry> {
        Ok(self.fetch_registry(entity, name).await?.0)
    }

    pub(crate) async fn new_registry(&self, entity: &str, name: &str, spec: &RegistrySpec) -> Result<Registry> {
        artifact_core::validate_project_name(&format!("{}{name}", artifact_core::REGISTRY_PREFIX))?;
        let (_, org_entity) = self.organization_of(entity).await?;
        // `UpsertRegistry` changes a registry that exists: ask first, as the SDK's `create_registry` does.
        match self.fetch_registry(entity, name).await {
            Ok(_) => {
                return Err(wandb_store::Error::RegistryExists { entity: org_entity, name: name.to_owned() }.into());
            }
            Err(Error::Store(wandb_store::Error::RegistryNotFound { .. })) => {}
            Err(e) => return Err(e),
        }
        let mut spec = spec.clone();
        spec.allow_all_artifact_types.get_or_insert(spec.add_artifact_types.is_empty());
        let input = upsert_input(&org_entity, name, &spec);
        let data = self.graphql("UpsertRegistry", &document(UPSERT_REGISTRY), json!({"input": input})).await?;
        if data.pointer("/upsertModel/inserted").and_then(Value::as_bool) != Some(true) {
            return Err(wandb_store::Error::RegistryExists { entity: org_entity, name: name.to_owned() }.into());
        }
        let node = data.pointer("/upsertModel/project").ok_or_else(|| Error::Protocol {
            operation: "UpsertRegistry".to_owned(),
            reason: "no project in the answer".to_owned(),
        })?;
        Ok(registry_of(node)?.0)
    }

    pub(crate) async fn change_registry(&self, registry: &Registry, spec: &RegistrySpec) -> Result<Registry> {
        let (current, _) = self.fetch_registry(&registry.entity, &registry.name).await?;
        let input = upsert_input(&current.entity, &current.name, spec);
        let data = self.graphql("UpsertRegistry", &document(UPSERT_REGISTRY), json!({"input": input})).await?;
        let mut node = data.pointer("/upsertModel/project").cloned().unwrap_or(Value::Null);
        if let Some(new) = spec.rename.as_deref().filter(|new| *new != current.name) {
            let prefix = artifact_core::REGISTRY_PREFIX;
            let input = json!({
                "entityName": current.entity,
                "oldProjectName": format!("{prefix}{}", current.name),
                "newProjectName": format!("{prefix}{new}"),
            });
            let data = self.graphql("RenameRegistry", &document(RENAME_REGISTRY), json!({"input": input})).await?;
            node = data.pointer("/renameProject/project").cloned().unwrap_or(Value::Null);
        }
        Ok(registry_of(&node)?.0)
    }

    pub(crate) async fn remove_registry(&self, registry: &Registry) -> Result<()> {
        let (_, id) = self.fetch_registry(&registry.entity, &registry.name).await?;
        let data = self.graphql("DeleteRegistry", DELETE_REGISTRY, json!({"id": id})).await?;
        match data.pointer("/deleteModel/success").and_then(Value::as_bool) {
            Some(true) => Ok(()),
            _ => Err(Error::Protocol { operation: "DeleteRegistry".to_owned(), reason: "not deleted".to_owned() }),
        }
    }
}
