//! The lineage graph: runs and artifact versions as two kinds of nodes, "used" and "logged" edges, laid out left
//! to right as a layered DAG around one node and drawn as SVG.
//!
//! Layers are longest-path distances from the centre (upstream negative, downstream positive), so every edge
//! points right; within a layer nodes are ordered by the mean position of their neighbours in the layer before
//! (two sweeps), ties by name — the same graph always draws the same way. Each node has a slot of its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use wandb_store::{ArtifactEdge, RunRecord};

use crate::html::escape;

/// A node: a run or an artifact version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Node {
    /// A run, by id.
    Run(String),
    /// An artifact version, by id.
    Artifact(String),
}

/// What a node shows and links to.
#[derive(Clone, Debug)]
pub(crate) struct Label {
    pub(crate) title: String,
    pub(crate) subtitle: String,
    pub(crate) href: String,
}

/// The runs of a project as a bipartite graph.
pub(crate) struct Graph {
    /// Artifact id → the runs that logged it (normally one).
    logged_by: HashMap<String, Vec<usize>>,
    /// Artifact id → the runs that used it.
    used_by: HashMap<String, Vec<usize>>,
    runs: Vec<RunRecord>,
    /// Artifact id → its edge record (name:vN and type), from whichever run mentions it.
    artifacts: HashMap<String, ArtifactEdge>,
}

/// At most this many nodes are drawn; the rest are counted.
const MAX_NODES: usize = 200;

impl Graph {
    pub(crate) fn new(runs: Vec<RunRecord>) -> Self {
        let (mut logged_by, mut used_by, mut artifacts) = (HashMap::new(), HashMap::new(), HashMap::new());
        for (i, run) in runs.iter().enumerate() {
            for edge in &run.outputs {
                logged_by.entry(edge.id.clone()).or_insert_with(Vec::new).push(i);
                artifacts.entry(edge.id.clone()).or_insert_with(|| edge.clone());
            }
            for edge in &run.inputs {
                used_by.entry(edge.id.clone()).or_insert_with(Vec::new).push(i);
                artifacts.entry(edge.id.clone()).or_insert_with(|| edge.clone());
            }
        }
        Graph { logged_by, used_by, runs, artifacts }
    }

    fn run_index(&self, id: &str) -> Option<usize> {
        self.runs.iter().position(|r| r.id == id)
    }

    /// The nodes upstream of `node` (what it came from).
    fn parents(&self, node: &Node) -> Vec<Node> {
        match node {
            Node::Artifact(id) => self.logged_by.get(id).into_iter().flatten().map(|&i| self.run_node(i)).collect(),
            Node::Run(id) => self
                .run_index(id)
                .map_or_else(Vec::new, |i| self.runs[i].inputs.iter().map(|e| Node::Artifact(e.id.clone())).collect()),
        }
    }

    /// The nodes downstream of `node` (what came from it).
    fn children(&self, node: &Node) -> Vec<Node> {
        match node {
            Node::Artifact(id) => self.used_by.get(id).into_iter().flatten().map(|&i| self.run_node(i)).collect(),
            Node::Run(id) => self
                .run_index(id)
                .map_or_else(Vec::new, |i| self.runs[i].outputs.iter().map(|e| Node::Artifact(e.id.clone())).collect()),
        }
    }

    fn run_node(&self, index: usize) -> Node {
        Node::Run(self.runs[index].id.clone())
    }

    /// The run record of a run node.
    pub(crate) fn run(&self, id: &str) -> Option<&RunRecord> {
        self.run_index(id).map(|i| &self.runs[i])
    }

    /// The edge record of an artifact node.
    pub(crate) fn artifact(&self, id: &str) -> Option<&ArtifactEdge> {
        self.artifacts.get(id)
    }

    /// The subgraph within `depth` edges of `centre` either way, laid out, as SVG; `label` names each node.
    pub(crate) fn svg(&self, centre: &Node, depth: usize, label: &dyn Fn(&Node) -> Label) -> String {
        let layout = self.layout(centre, depth);
        draw(&layout, centre, label)
    }

    fn layout(&self, centre: &Node, depth: usize) -> Layout {
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
        let (kind, fill, stroke) = match node {
            Node::Run(_) => ("run", "#e8f0fe", "#3b6fd6"),
            Node::Artifact(_) => ("artifact", "#fff4d6", "#c98a00"),
        };
        let (stroke, width) = if node == centre { ("#d23c3c", 3) } else { (stroke, 1) };
        let radius = if matches!(node, Node::Run(_)) { 18 } else { 4 };
        let _ = write!(
            svg,
            "<a class=\"node\" data-kind=\"{kind}\" data-name=\"{}\" href=\"{}\"><rect x=\"{x}\" y=\"{y}\" \
             width=\"{NODE_WIDTH}\" height=\"{NODE_HEIGHT}\" rx=\"{radius}\" fill=\"{fill}\" stroke=\"{stroke}\" \
             stroke-width=\"{width}\"/><text x=\"{}\" y=\"{}\" font-weight=\"600\">{}</text><text x=\"{}\" y=\"{}\" \
             fill=\"#6a737d\">{}</text></a>",
            escape(&title),
            escape(&href),
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
