//! Lineage over the W&B protocol: which run logged a version (`ArtifactCreatedBy`) and which used it
//! (`ArtifactUsedBy`), with the SDK's own documents.

use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::WandbClient;
use crate::backend::{Lineage, RunInfo};
use crate::error::Result;
use wandb_store::{ArtifactVersion, ProjectRef};

const RUN_INFO_FRAGMENT: &str = "fragment ProjectInfoFragment on Project { id internalId name entity { name } }
fragment RunInfoFragment on Run { __typename id name project { ...ProjectInfoFragment } }";

fn created_by_query() -> String {
    format!(
        "query ArtifactCreatedBy($id: ID!) {{
  artifact(id: $id) {{ createdBy {{ __typename ... on Run {{ ...RunInfoFragment }} }} }}
}}
{RUN_INFO_FRAGMENT}"
    )
}

fn used_by_query() -> String {
    format!(
        "query ArtifactUsedBy($id: ID!) {{
  artifact(id: $id) {{ usedBy {{ edges {{ node {{ ...RunInfoFragment }} }} }} }}
}}
{RUN_INFO_FRAGMENT}"
    )
}

/// The entity, project and id of a `RunInfoFragment`.
fn run_ref(node: &Value) -> Option<(ProjectRef, String)> {
    let entity = node.pointer("/project/entity/name")?.as_str()?;
    let project = node.pointer("/project/name")?.as_str()?;
    let name = node.get("name")?.as_str()?;
    Some((ProjectRef::new(entity, project).ok()?, name.to_owned()))
}

impl WandbClient {
    /// The run that logged `version` and the runs that used it, each read in full (`Run`), four at a time.
    pub(crate) async fn fetch_lineage(&self, version: &ArtifactVersion) -> Result<Lineage> {
        let variables = json!({"id": version.id});
        let created = self.graphql("ArtifactCreatedBy", &created_by_query(), variables.clone()).await?;
        let creator = created
            .pointer("/artifact/createdBy")
            .filter(|c| c.get("__typename").and_then(Value::as_str) == Some("Run"))
            .and_then(run_ref);
        let used = self.graphql("ArtifactUsedBy", &used_by_query(), variables).await?;
        let users: Vec<(ProjectRef, String)> = used
            .pointer("/artifact/usedBy/edges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|edge| run_ref(edge.get("node")?))
            .collect();
        let created_by = match creator {
            Some((project, id)) => Some(self.fetch_run(&project, &id).await?),
            None => None,
        };
        let used_by: Vec<RunInfo> = futures_util::stream::iter(users)
            .map(|(project, id)| async move { self.fetch_run(&project, &id).await })
            .buffered(4)
            .try_collect()
            .await?;
        Ok(Lineage { created_by, used_by })
    }
}
