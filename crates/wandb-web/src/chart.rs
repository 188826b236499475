//! Run charts: one SVG line chart per numeric history key, steps on the x axis, downsampled server-side.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::html::escape;

/// At most this many points per chart: each of `MAX_POINTS / 2` buckets of steps keeps its lowest and highest
/// value (in step order), so spikes survive the downsampling.
pub(crate) const MAX_POINTS: usize = 1000;

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 58.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;
const RIGHT: f64 = 14.0;

/// The numeric series of `rows` (history rows with `_step`), by key, sorted by key; keys starting with `_` are
/// W&B's own and left out.
pub(crate) fn series(rows: &[Map<String, Value>]) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut by_key: std::collections::BTreeMap<String, Vec<(f64, f64)>> = std::collections::BTreeMap::new();
    for (index, row) in rows.iter().enumerate() {
        let step = row.get("_step").and_then(Value::as_f64).unwrap_or(index as f64);
        for (key, value) in row {
            if key.starts_with('_') {
                continue;
            }
            if let Some(y) = value.as_f64().filter(|y| y.is_finite()) {
                by_key.entry(key.clone()).or_default().push((step, y));
            }
        }
    }
    by_key.into_iter().collect()
}

/// `points` reduced to at most [`MAX_POINTS`], keeping each bucket's extremes in order.
pub(crate) fn downsample(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let buckets = MAX_POINTS / 2;
    let mut out = Vec::with_capacity(MAX_POINTS);
    for b in 0..buckets {
        let (start, end) = (b * points.len() / buckets, (b + 1) * points.len() / buckets);
        let bucket = &points[start..end];
        let (Some(low), Some(high)) = (
            bucket.iter().enumerate().min_by(|a, b| a.1.1.total_cmp(&b.1.1)),
            bucket.iter().enumerate().max_by(|a, b| a.1.1.total_cmp(&b.1.1)),
        ) else {
            continue;
        };
        let (first, second) = if low.0 <= high.0 { (low, high) } else { (high, low) };
        out.push(*first.1);
        if second.0 != first.0 {
            out.push(*second.1);
        }
    }
    out
}

/// One chart of `key`: axes with the ranges, the line, and how many points were drawn of how many.
pub(crate) fn svg(key: &str, points: &[(f64, f64)]) -> String {
    let drawn = downsample(points);
    let (min_x, max_x) = bounds(drawn.iter().map(|p| p.0));
    let (min_y, max_y) = bounds(drawn.iter().map(|p| p.1));
    let scale_x = |x: f64| LEFT + (x - min_x) / (max_x - min_x).max(f64::MIN_POSITIVE) * (WIDTH - LEFT - RIGHT);
    let scale_y = |y: f64| TOP + (max_y - y) / (max_y - min_y).max(f64::MIN_POSITIVE) * (HEIGHT - TOP - BOTTOM);
    // A constant series is drawn across the middle, with its one value as the axis's one label.
    let flat = max_y <= min_y;
    let middle = TOP + (HEIGHT - TOP - BOTTOM) / 2.0;
    let mut line = String::new();
    for (x, y) in &drawn {
        let x = if max_x > min_x { scale_x(*x) } else { LEFT };
        let y = if flat { middle } else { scale_y(*y) };
        let _ = write!(line, "{x:.1},{y:.1} ");
    }
    let mut out = format!(
        "<figure class=\"chart\" data-key=\"{key}\" data-points=\"{}\" data-total=\"{}\"><svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\">",
        drawn.len(),
        points.len(),
        key = escape(key)
    );
    let y_labels = if flat {
        format!("<text class=\"y-label\" x=\"4\" y=\"{}\">{}</text>", middle + 4.0, number(max_y))
    } else {
        format!(
            "<text class=\"y-label\" x=\"4\" y=\"{}\">{}</text><text class=\"y-label\" x=\"4\" y=\"{}\">{}</text>",
            TOP + 10.0,
            number(max_y),
            HEIGHT - BOTTOM,
            number(min_y)
        )
    };
    let x_labels = if max_x > min_x {
        format!(
            "<text x=\"{LEFT}\" y=\"{s}\">{}</text><text x=\"{r}\" y=\"{s}\" text-anchor=\"end\">step {}</text>",
            number(min_x),
            number(max_x),
            r = WIDTH - RIGHT,
            s = HEIGHT - 8.0,
        )
    } else {
        format!("<text x=\"{LEFT}\" y=\"{}\">step {}</text>", HEIGHT - 8.0, number(min_x))
    };
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#bbb\"/><line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" \
         y2=\"{b}\" stroke=\"#bbb\"/>{y_labels}{x_labels}",
        b = HEIGHT - BOTTOM,
        r = WIDTH - RIGHT,
    );
    let _ = write!(
        out,
        "<polyline class=\"series\" fill=\"none\" stroke=\"#3b6fd6\" stroke-width=\"1.5\" points=\"{}\"/></svg>\
         <figcaption>{}{}</figcaption></figure>",
        line.trim_end(),
        escape(key),
        if drawn.len() < points.len() {
            format!(" <span class=\"muted\">({} of {} points)</span>", drawn.len(), points.len())
        } else {
            String::new()
        }
    );
    out
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

fn number(value: f64) -> String {
    if !value.is_finite() {
        return String::new();
    }
    if value.fract() == 0.0 && value.abs() < 1e12 { format!("{value:.0}") } else { format!("{value:.4}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y_labels(svg: &str) -> Vec<&str> {
        svg.split("class=\"y-label\"")
            .skip(1)
            .map(|t| t.split('>').nth(1).unwrap().split('<').next().unwrap())
            .collect()
    }

    #[test]
    fn a_constant_series_has_one_y_label() {
        let flat = svg("loss", &[(0.0, 0.5), (1.0, 0.5), (2.0, 0.5)]);
        assert_eq!(y_labels(&flat), ["0.5000"]);
        // Drawn across the middle, not along the top.
        let middle = TOP + (HEIGHT - TOP - BOTTOM) / 2.0;
        assert!(flat.contains(&format!("{LEFT:.1},{middle:.1} ")), "{flat}");
        assert_eq!(y_labels(&svg("loss", &[(0.0, 1.0), (1.0, 0.5)])), ["1", "0.5000"]);
    }

    #[test]
    fn downsampling_keeps_each_buckets_extremes() {
        let points: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, if i == 5_000 { 100.0 } else { 0.0 })).collect();
        let drawn = downsample(&points);
        assert!(drawn.len() <= MAX_POINTS);
        assert!(drawn.contains(&(5_000.0, 100.0)), "the spike survives");
    }
}
