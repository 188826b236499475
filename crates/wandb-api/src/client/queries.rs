//! GraphQL documents: the operation names and variables the real client sends, asking for the fields we read.

pub(crate) const SERVER_FEATURES: &str = "query ServerFeaturesQuery { serverInfo { features { name isEnabled } } }";

/// `UpsertBucket` with the display name and tags `wandb.init(name=…, tags=…)` sends.
pub(crate) const UPSERT_RUN: &str = "mutation UpsertBucket($name: String, $project: String, $entity: String, $jobType: String, $displayName: String, $tags: [String!]) {
  upsertBucket(input: {name: $name, modelName: $project, entityName: $entity, jobType: $jobType, displayName: $displayName, tags: $tags}) {
    bucket { id name displayName project { id name entity { id name } } }
    inserted
  }
}";

pub(crate) const ARTIFACT_TYPE: &str = "query ArtifactType($entity: String, $project: String, $name: String!) {
  project(name: $project, entityName: $entity) { artifact(name: $name) { artifactType { name } } }
}";

pub(crate) const XXHASH_ENABLED: &str =
    "query XXHashDigestsEnabled($entityName: String!) { entity(name: $entityName) { xxhashDigestsEnabled } }";

pub(crate) const FETCH_DIGEST_ALGORITHM: &str = "query FetchArtifactDigestAlgorithm($entityName: String!, $projectName: String!, $artifactTypeName: String!, $artifactCollectionName: String!) {
  project(name: $projectName, entityName: $entityName) {
    artifactType(name: $artifactTypeName) {
      artifactCollection(name: $artifactCollectionName) { __typename ... on ArtifactSequence { digestAlgorithm } }
    }
  }
}";

pub(crate) const CREATE_ARTIFACT: &str = "mutation CreateArtifact($input: CreateArtifactInput!) {
  createArtifact(input: $input) { artifact { id state artifactSequence { latestArtifact { id } } } }
}";

pub(crate) const CREATE_MANIFEST: &str = "mutation CreateArtifactManifest($artifactID: ID!, $baseArtifactID: ID, $name: String!, $digest: String!, $entityName: String!, $projectName: String!, $runName: String!, $manifestType: ArtifactManifestType!, $includeUpload: Boolean!) {
  createArtifactManifest(input: {artifactID: $artifactID, baseArtifactID: $baseArtifactID, name: $name, digest: $digest, entityName: $entityName, projectName: $projectName, runName: $runName, type: $manifestType}) {
    artifactManifest { id file { id uploadUrl @include(if: $includeUpload) uploadHeaders @include(if: $includeUpload) } }
  }
}";

pub(crate) const CREATE_FILES: &str = "mutation CreateArtifactFiles($input: CreateArtifactFilesInput!) {
  createArtifactFiles(input: $input) {
    files { edges { node {
      storagePath uploadUrl uploadHeaders
      uploadMultipartUrls { uploadID uploadUrlParts { partNumber uploadUrl } }
      artifact { id }
    } } }
  }
}";

pub(crate) const COMPLETE_MULTIPART: &str = "mutation CompleteMultipartUploadArtifact($completeMultipartAction: CompleteMultipartAction!, $completedParts: [UploadPartsInput!]!, $artifactID: ID!, $storagePath: String!, $uploadID: String!) {
  completeMultipartUploadArtifact(input: {completeMultipartAction: $completeMultipartAction, completedParts: $completedParts, artifactID: $artifactID, storagePath: $storagePath, uploadID: $uploadID}) { digest }
}";

pub(crate) const COMMIT_ARTIFACT: &str = "mutation CommitArtifact($artifactID: ID!) {
  commitArtifact(input: {artifactID: $artifactID}) { artifact { id digest } }
}";

const ARTIFACT_FIELDS: &str = "__typename id
  artifactSequence { __typename name project { id name entity { name } } }
  versionIndex artifactType { name } description metadata state size digest digestAlgorithm fileCount createdAt
  ttlDurationSeconds ttlIsInherited
  aliases { __typename id alias }
  tags { __typename id name }";

pub(crate) fn artifact_by_id() -> String {
    format!("query ArtifactByID($id: ID!) {{ artifact(id: $id) {{ {ARTIFACT_FIELDS} }} }}")
}

pub(crate) fn membership_by_name() -> String {
    format!(
        "query ArtifactMembershipByName($entity: String!, $project: String!, $name: String!) {{
  project(name: $project, entityName: $entity) {{
    artifactCollectionMembership(name: $name) {{
      __typename id versionIndex aliases {{ __typename id alias }}
      artifactCollection {{ __typename name project {{ id name entity {{ name }} }} }}
      artifact {{ {ARTIFACT_FIELDS} }}
    }}
  }}
}}"
    )
}

pub(crate) const FETCH_MANIFEST: &str =
    "query FetchArtifactManifest($id: ID!) { artifact(id: $id) { currentManifest { file { directUrl } } } }";

pub(crate) const FILE_URLS: &str = "query GetArtifactMembershipFileUrls($entity: String!, $project: String!, $collection: String!, $alias: String!, $cursor: String, $perPage: Int) {
  project(name: $project, entityName: $entity) {
    artifactCollection(name: $collection) {
      __typename
      artifactMembership(aliasName: $alias) {
        files(after: $cursor, first: $perPage) {
          pageInfo { __typename endCursor hasNextPage }
          edges { node { __typename name directUrl } }
        }
      }
    }
  }
}";

pub(crate) const USE_ARTIFACT: &str = "mutation UseArtifact($input: UseArtifactInput!) {
  useArtifact(input: $input) { artifact { id digest } }
}";

pub(crate) const LINK_ARTIFACT: &str = "mutation LinkArtifact($input: LinkArtifactInput!) {
  linkArtifact(input: $input) { versionIndex }
}";

pub(crate) const FETCH_ORG: &str = "query FetchOrgInfoFromEntity($entity: String!) {
  entity(name: $entity) { organization { name orgEntity { name } } user { organizations { name orgEntity { name } } } }
}";

pub(crate) const PROJECT_COLLECTIONS: &str =
    "query ProjectArtifactCollections($entity: String!, $project: String!, $cursor: String, $perPage: Int) {
  project(entityName: $entity, name: $project) {
    artifactCollections(after: $cursor, first: $perPage) {
      pageInfo { __typename endCursor hasNextPage }
      edges { node { __typename id name description type: defaultArtifactType { name } tags { edges { node { name } } } } }
    }
  }
}";

pub(crate) const PROJECT_ARTIFACT_TYPES: &str =
    "query ProjectArtifactTypes($entity: String!, $project: String!, $cursor: String, $perPage: Int) {
  project(name: $project, entityName: $entity) {
    artifactTypes(after: $cursor, first: $perPage) {
      edges { node { __typename id name description createdAt } }
      pageInfo { __typename endCursor hasNextPage }
    }
  }
}";

pub(crate) fn project_artifacts() -> String {
    format!(
        "query ProjectArtifacts($entity: String!, $project: String!, $type: String!, $collection: String!, $cursor: String, $perPage: Int = 50, $order: String) {{
  project(entityName: $entity, name: $project) {{
    artifactType(name: $type) {{
      artifactCollection(name: $collection) {{
        __typename
        artifacts(after: $cursor, first: $perPage, order: $order) {{
          totalCount
          pageInfo {{ __typename endCursor hasNextPage }}
          edges {{ version node {{ {ARTIFACT_FIELDS} }} }}
        }}
      }}
    }}
  }}
}}"
    )
}

/// The second half of a distributed writer's manifest (§9.2): its upload URL, once the patch is known.
pub(crate) const UPDATE_MANIFEST: &str = "mutation UpdateArtifactManifest($artifactManifestID: ID!, $digest: String, $baseArtifactID: ID, $includeUpload: Boolean!) {
  updateArtifactManifest(input: {artifactManifestID: $artifactManifestID, digest: $digest, baseArtifactID: $baseArtifactID}) {
    artifactManifest { id file { id uploadUrl @include(if: $includeUpload) uploadHeaders @include(if: $includeUpload) } }
  }
}";
