//! The lineage graph: runs and artifact versions as two kinds of nodes, "used" and "logged" edges, laid out left
//! to right as a layered DAG around one node and drawn as SVG.
//!
//! Layers are longest-path distances from the centre (upstream negative, downstream positive), so every edge
//! points right; within a layer nodes are ordered by the mean position of their neighbours in the layer before
//! (two sweeps), ties by name — the same graph always draws the same way. Each node has a slot of its own.
//!
//! The graph spans projects: a version's producers and consumers in its own project come from that project's runs
//! (read once per project the walk reaches), its consumers elsewhere from the store's index of uses, so a run of
//! `team/train` using `team/data/raw:v0` appears in `raw`'s lineage; nothing is drawn of an entity the viewer may
//! not see.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use wandb_store::{ArtifactEdge, EmbeddedStore, ProjectRef, RunRecord, VersionLocation};

use crate::Access;
use crate::html::escape;

/// A run: its project and id (ids are unique only within a project).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct RunKey {
    pub(crate) project: ProjectRef,
    pub(crate) id: String,
}

/// A node: a run or an artifact version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Node {
    /// A run.
    Run(RunKey),
    /// An artifact version, by id.
    Artifact(String),
}

/// What a node shows and links to (`None`: a version that no longer exists, drawn without a link).
#[derive(Clone, Debug)]
pub(crate) struct Label {
    pub(crate) title: String,
    pub(crate) subtitle: String,
    pub(crate) href: Option<String>,
}

/// The runs of a project that logged and used each artifact id.
#[derive(Default)]
struct ProjectEdges {
    logged_by: HashMap<String, Vec<String>>,
    used_by: HashMap<String, Vec<String>>,
}

/// The lineage graph of a store, read as it is walked: an artifact version's producers and consumers come from
/// the runs of its own project (read once per project) and from the store's index of uses (runs of other
/// projects); a run's edges from its record. Nodes of entities the viewer may not see are left out.
pub(crate) struct Graph<'a> {
    store: &'a EmbeddedStore,
    access: &'a Access,
    runs: HashMap<RunKey, RunRecord>,
    projects: HashMap<ProjectRef, ProjectEdges>,
    locations: HashMap<String, Option<VersionLocation>>,
    /// Artifact id → an edge record naming it, from whichever run mentions it first (for ids the store no
    /// longer locates).
    edges: HashMap<String, ArtifactEdge>,
}

/// At most this many nodes are drawn; the rest are counted.
const MAX_NODES: usize = 200;

impl<'a> Graph<'a> {
    pub(crate) fn new(store: &'a EmbeddedStore, access: &'a Access) -> Self {
        Graph {
            store,
            access,
            runs: HashMap::new(),
            projects: HashMap::new(),
            locations: HashMap::new(),
            edges: HashMap::new(),
        }
    }

    /// Where artifact `id` lives now (cached; `None` when the store no longer has it).
    fn locate(&mut self, id: &str) -> Option<&VersionLocation> {
        if !self.locations.contains_key(id) {
            let location = self.store.locate_artifact(id).ok().flatten();
            self.locations.insert(id.to_owned(), location);
        }
        self.locations[id].as_ref()
    }

    /// Whether the viewer may see artifact `id`: its entity, or for a version the store no longer has, the entity
    /// its edge recorded (older edges recorded none: the run's, which is shown).
    fn artifact_visible(&mut self, id: &str) -> bool {
        let access = self.access;
        match self.locate(id) {
            Some(location) => access.allows(location.project.entity()),
            None => self.edges.get(id).and_then(|e| e.entity.as_deref()).is_none_or(|e| access.allows(e)),
        }
    }

    fn remember(&mut self, key: RunKey, run: RunRecord) {
        for edge in run.inputs.iter().chain(&run.outputs) {
            self.edges.entry(edge.id.clone()).or_insert_with(|| edge.clone());
        }
        self.runs.insert(key, run);
    }

    /// Run `key`, read once.
    fn load_run(&mut self, key: &RunKey) -> bool {
        if self.runs.contains_key(key) {
            return true;
        }
        match self.store.run(&key.project, &key.id) {
            Ok(run) => {
                self.remember(key.clone(), run);
                true
            }
            Err(_) => false,
        }
    }

    /// The runs of `project` by the artifacts they logged and used, read once.
    fn project_edges(&mut self, project: &ProjectRef) -> &ProjectEdges {
        if !self.projects.contains_key(project) {
            let mut edges = ProjectEdges::default();
            for run in self.store.runs(project).unwrap_or_default() {
                for edge in &run.outputs {
                    edges.logged_by.entry(edge.id.clone()).or_default().push(run.id.clone());
                }
                for edge in &run.inputs {
                    edges.used_by.entry(edge.id.clone()).or_default().push(run.id.clone());
                }
                let key = RunKey { project: project.clone(), id: run.id.clone() };
                self.remember(key, run);
            }
            self.projects.insert(project.clone(), edges);
        }
        &self.projects[project]
    }

    /// The nodes upstream of `node` (what it came from).
    fn parents(&mut self, node: &Node) -> Vec<Node> {
        match node {
            Node::Artifact(id) => {
                let Some(project) = self.locate(id).map(|l| l.project.clone()) else { return Vec::new() };
                let runs = self.project_edges(&project).logged_by.get(id).cloned().unwrap_or_default();
                runs.into_iter().map(|run| Node::Run(RunKey { project: project.clone(), id: run })).collect()
            }
            Node::Run(key) => self.run_edges(key, true),
        }
    }

    /// The nodes downstream of `node` (what came from it).
    fn children(&mut self, node: &Node) -> Vec<Node> {
        match node {
            Node::Artifact(id) => {
                let Some(project) = self.locate(id).map(|l| l.project.clone()) else { return Vec::new() };
                let runs = self.project_edges(&project).used_by.get(id).cloned().unwrap_or_default();
                let mut nodes: Vec<Node> =
                    runs.into_iter().map(|run| Node::Run(RunKey { project: project.clone(), id: run })).collect();
                // Runs of other projects, from the index of uses.
                for (elsewhere, run) in self.store.uses_elsewhere(id, MAX_NODES).unwrap_or_default() {
                    if !self.access.allows(elsewhere.entity()) {
                        continue;
                    }
                    let key = RunKey { project: elsewhere, id: run.id.clone() };
                    self.remember(key.clone(), run);
                    nodes.push(Node::Run(key));
                }
                nodes
            }
            Node::Run(key) => self.run_edges(key, false),
        }
    }

    /// The artifacts run `key` used (`inputs`) or logged, those the viewer may see.
    fn run_edges(&mut self, key: &RunKey, inputs: bool) -> Vec<Node> {
        if !self.load_run(key) {
            return Vec::new();
        }
        let run = &self.runs[key];
        let edges = if inputs { &run.inputs } else { &run.outputs };
        let ids: Vec<String> = edges.iter().map(|e| e.id.clone()).collect();
        ids.into_iter().filter(|id| self.artifact_visible(id)).map(Node::Artifact).collect()
    }

    /// The record of a run the graph has read.
    pub(crate) fn run(&self, key: &RunKey) -> Option<&RunRecord> {
        self.runs.get(key)
    }

    /// Where an artifact node lives, if the store still has it.
    pub(crate) fn location(&self, id: &str) -> Option<&VersionLocation> {
        self.locations.get(id).and_then(Option::as_ref)
    }

    /// An edge record naming an artifact node.
    pub(crate) fn edge(&self, id: &str) -> Option<&ArtifactEdge> {
        self.edges.get(id)
    }

    /// The subgraph within `depth` edges of `centre` either way, laid out, as SVG; `label` names each node.
    pub(crate) fn svg(&mut self, centre: &Node, depth: usize, label: &dyn Fn(&Graph<'_>, &Node) -> Label) -> String {
        let layout = self.layout(centre, depth);
        let graph: &Graph<'_> = self;
        draw(&layout, centre, &|node| label(graph, node))
    }

    fn layout(&mut self, centre: &Node, depth: usize) -> Layout {
        match centre {
            Node::Artifact(id) => {
                self.locate(id);
            }
            Node::Run(key) => {
                self.load_run(key);
            }
        }
        // Collect the nodes within `depth` either way, and the edges among them (parent → child).
        let mut layer: BTreeMap<Node, i64> = BTreeMap::new();
        layer.insert(centre.clone(), 0);
        let mut edges: BTreeSet<(Node, Node)> = BTreeSet::new();
        let mut truncated = 0;
        for upstream in [true, false] {
            let mut frontier = vec![centre.clone()];
            for _ in 0..depth {
                let mut next = Vec::new();
                for node in &frontier {
                    let neighbours = if upstream { self.parents(node) } else { self.children(node) };
                    for other in neighbours {
                        if !layer.contains_key(&other) && layer.len() >= MAX_NODES {
                            truncated += 1;
                            continue;
                        }
                        let edge = if upstream { (other.clone(), node.clone()) } else { (node.clone(), other.clone()) };
                        edges.insert(edge);
                        if !layer.contains_key(&other) {
                            layer.insert(other.clone(), 0);
                            next.push(other);
                        }
                    }
                }
                frontier = next;
            }
        }
        // Longest-path layering from the centre, so every edge points right: upstream nodes move left of what
        // they feed, downstream ones right of what feeds them, until nothing moves (a DAG of at most MAX_NODES
        // settles in as many rounds).
        let upstream = reachable(&edges, centre, true);
        for _ in 0..=layer.len() {
            let mut changed = false;
            for (from, to) in &edges {
                let (f, t) = (layer[from], layer[to]);
                if upstream.contains(from) && f > t - 1 {
                    layer.insert(from.clone(), t - 1);
                    changed = true;
                } else if !upstream.contains(from) && t < f + 1 {
                    layer.insert(to.clone(), f + 1);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Order within layers: by name first, then two barycentre sweeps (left to right, right to left).
        let mut layers: BTreeMap<i64, Vec<Node>> = BTreeMap::new();
        for (node, l) in &layer {
            layers.entry(*l).or_default().push(node.clone());
        }
        let mut position: HashMap<Node, f64> = HashMap::new();
        for nodes in layers.values() {
            for (i, node) in nodes.iter().enumerate() {
                position.insert(node.clone(), i as f64);
            }
        }
        let keys: Vec<i64> = layers.keys().copied().collect();
        for forward in [true, false, true] {
            let order: Vec<i64> = if forward { keys.clone() } else { keys.iter().rev().copied().collect() };
            for l in order {
                let nodes = layers.get_mut(&l).expect("a layer of the keys");
                let mut scored: Vec<(f64, Node)> = nodes
                    .iter()
                    .map(|n| {
                        let neighbours: Vec<f64> = edges
                            .iter()
                            .filter_map(|(a, b)| match (forward, a == n, b == n) {
                                (true, _, true) => position.get(a).copied(),
                                (false, true, _) => position.get(b).copied(),
                                _ => None,
                            })
                            .collect();
                        let score = if neighbours.is_empty() {
                            position[n]
                        } else {
                            neighbours.iter().sum::<f64>() / neighbours.len() as f64
                        };
                        (score, n.clone())
                    })
                    .collect();
                scored.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
                *nodes = scored.into_iter().map(|(_, n)| n).collect();
                for (i, node) in nodes.iter().enumerate() {
                    position.insert(node.clone(), i as f64);
                }
            }
        }
        Layout { layers, edges, truncated }
    }
}

/// The nodes reachable from `start` over `edges`, backwards (`upstream`) or forwards; `start` excluded.
fn reachable(edges: &BTreeSet<(Node, Node)>, start: &Node, upstream: bool) -> BTreeSet<Node> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![start.clone()];
    while let Some(node) = stack.pop() {
        for (from, to) in edges {
            let next = match (upstream, to == &node, from == &node) {
                (true, true, _) => from,
                (false, _, true) => to,
                _ => continue,
            };
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    seen
}

struct Layout {
    layers: BTreeMap<i64, Vec<Node>>,
    edges: BTreeSet<(Node, Node)>,
    truncated: usize,
}

const NODE_WIDTH: i64 = 190;
const NODE_HEIGHT: i64 = 44;
const COLUMN: i64 = 250;
const ROW: i64 = 64;
const MARGIN: i64 = 16;

fn draw(layout: &Layout, centre: &Node, label: &dyn Fn(&Node) -> Label) -> String {
    let first = layout.layers.keys().next().copied().unwrap_or(0);
    let rows = layout.layers.values().map(Vec::len).max().unwrap_or(1) as i64;
    let columns = layout.layers.len() as i64;
    let (width, height) =
        (MARGIN * 2 + (columns - 1) * COLUMN + NODE_WIDTH, MARGIN * 2 + (rows - 1) * ROW + NODE_HEIGHT);
    let mut at: HashMap<&Node, (i64, i64)> = HashMap::new();
    for (l, nodes) in &layout.layers {
        // Each column centred vertically.
        let offset = (rows - nodes.len() as i64) * ROW / 2;
        for (i, node) in nodes.iter().enumerate() {
            at.insert(node, (MARGIN + (l - first) * COLUMN, MARGIN + offset + i as i64 * ROW));
        }
    }
    let mut svg = format!(
        "<svg id=\"lineage-graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" \
         refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#8a939c\"/>\
         </marker></defs>"
    );
    for (from, to) in &layout.edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(from), at.get(to)) else { continue };
        let (sx, sy, ex, ey) = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2, x2, y2 + NODE_HEIGHT / 2);
        let kind = if matches!(from, Node::Run(_)) { "logged" } else { "used" };
        let _ = write!(
            svg,
            "<path class=\"edge\" data-kind=\"{kind}\" data-from=\"{}\" data-to=\"{}\" d=\"M{sx},{sy} C{},{sy} {},{ey} \
             {ex},{ey}\" fill=\"none\" stroke=\"#8a939c\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>",
            escape(&label(from).title),
            escape(&label(to).title),
            (sx + ex) / 2,
            (sx + ex) / 2,
        );
    }
    for node in layout.layers.values().flatten() {
        let (x, y) = at[node];
        let Label { title, subtitle, href } = label(node);
        let (open, close) = match &href {
            Some(href) => (format!("<a class=\"node\" href=\"{}\"", escape(href)), "</a>"),
            None => ("<g class=\"node gone\"".to_owned(), "</g>"),
        };
        let (kind, fill, stroke) = match node {
            Node::Run(_) => ("run", "#e8f0fe", "#3b6fd6"),
            Node::Artifact(_) => ("artifact", "#fff4d6", "#c98a00"),
        };
        let (stroke, width) = if node == centre { ("#d23c3c", 3) } else { (stroke, 1) };
        let radius = if matches!(node, Node::Run(_)) { 18 } else { 4 };
        let _ = write!(
            svg,
            "{open} data-kind=\"{kind}\" data-name=\"{}\"><rect x=\"{x}\" y=\"{y}\" \
             width=\"{NODE_WIDTH}\" height=\"{NODE_HEIGHT}\" rx=\"{radius}\" fill=\"{fill}\" stroke=\"{stroke}\" \
             stroke-width=\"{width}\"/><text x=\"{}\" y=\"{}\" font-weight=\"600\">{}</text><text x=\"{}\" y=\"{}\" \
             fill=\"#6a737d\">{}</text>{close}",
            escape(&title),
            x + 10,
            y + 18,
            escape(&shorten(&title, 26)),
            x + 10,
            y + 35,
            escape(&shorten(&subtitle, 28)),
        );
    }
    svg.push_str("</svg>");
    if layout.truncated > 0 {
        let _ = write!(svg, "<p class=\"muted\">{} more nodes not drawn (lower the depth).</p>", layout.truncated);
    }
    svg
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max - 1).collect();
    short.push('…');
    short
}
