//! Escaping, links and the page frame. Every name and value a page shows goes through [`escape`] (text and
//! attribute values alike) and every path segment of a link through [`segment`].

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by entities: safe in element text and quoted attributes.
///
/// ```
/// assert_eq!(wandb_web::escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Everything but RFC 3986's unreserved characters is encoded in a link segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// One URL path segment (or query value), percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// A path decoded from percent-encoding, split into segments (empty ones dropped); `None` for invalid UTF-8.
pub(crate) fn split_path(path: &str) -> Option<Vec<String>> {
    path.split('/').filter(|s| !s.is_empty()).map(decode).collect()
}

/// Percent-decoding (`+` stays `+`; [`query_value`] turns it into a space first); a `%` without two hex digits
/// stays as it is; `None` for bytes that are not UTF-8.
pub(crate) fn decode(text: &str) -> Option<String> {
    percent_decode_str(text).decode_utf8().ok().map(std::borrow::Cow::into_owned)
}

/// The value of `key` in a query string (`a=1&b=2`), decoded (`+` is a space).
pub(crate) fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| decode(&v.replace('+', " "))).flatten()
    })
}

/// A link: `<a href="…">text</a>`, both escaped.
pub(crate) fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", escape(href), escape(text))
}

/// The page around `body`: title, breadcrumbs (label, href), a sign-out control for a signed-in viewer, the
/// style sheet. Nothing is loaded from elsewhere.
pub(crate) fn frame(title: &str, crumbs: &[(String, String)], body: &str, signed_in: bool) -> String {
    let mut nav = String::from("<nav class=\"crumbs\"><a href=\"/\">store</a>");
    for (label, href) in crumbs {
        let _ = write!(nav, " / {}", link(href, label));
    }
    if signed_in {
        nav.push_str(
            "<form class=\"logout\" method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form>",
        );
    }
    nav.push_str("</nav>");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{nav}<main>{body}</main></body></html>\n",
        escape(title)
    )
}

/// Tabs of a version page: (label, href, current).
pub(crate) fn tabs(items: &[(&str, String, bool)]) -> String {
    let mut out = String::from("<ul class=\"tabs\">");
    for (label, href, current) in items {
        let class = if *current { " class=\"current\"" } else { "" };
        let _ = write!(out, "<li{class}>{}</li>", link(href, label));
    }
    out.push_str("</ul>");
    out
}

/// A `<table>` with a header row; cells are HTML already.
pub(crate) fn table(id: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("<table id=\"{}\"><thead><tr>", escape(id));
    for header in headers {
        let _ = write!(out, "<th>{}</th>", escape(header));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// Sizes as people read them: `1.5 KiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;\
background:#fafbfc}nav.crumbs{padding:10px 24px;background:#1b1f24;color:#aab}nav.crumbs a{color:#fff;\
text-decoration:none}main{padding:16px 24px;max-width:1400px}h1{font-size:22px;margin:8px 0 12px}h2{font-size:17px;\
margin:20px 0 8px}table{border-collapse:collapse;background:#fff;margin:6px 0 14px}th,td{border:1px solid #dde1e6;\
padding:4px 10px;text-align:left;vertical-align:top}th{background:#f0f2f5}code,pre{font:12px/1.4 ui-monospace,\
SFMono-Regular,Menlo,monospace}pre{background:#fff;border:1px solid #dde1e6;padding:10px;overflow:auto;max-height:480px}\
ul.tabs{list-style:none;padding:0;margin:0 0 14px;display:flex;gap:4px;border-bottom:1px solid #dde1e6}ul.tabs li a{\
display:block;padding:6px 14px;text-decoration:none;color:#444}ul.tabs li.current a{border-bottom:3px solid #f5a623;\
color:#000;font-weight:600}.alias{display:inline-block;background:#e8f0fe;color:#1a4fa0;border-radius:10px;\
padding:0 8px;margin:0 3px 2px 0;font-size:12px}.tag{display:inline-block;background:#eef7ee;color:#276227;\
border-radius:10px;padding:0 8px;margin-right:3px;font-size:12px}.muted{color:#6a737d}.kind{font-size:11px;\
color:#8a5a00;background:#fff4d6;border-radius:8px;padding:0 6px}details{margin:4px 0}svg text{font:12px system-ui,\
sans-serif}.chart{background:#fff;border:1px solid #dde1e6;margin:6px 12px 12px 0;display:inline-block}\
nav.crumbs form.logout{float:right;margin:0}nav.crumbs form.logout button{background:none;border:1px solid #aab;\
color:#fff;border-radius:4px;padding:1px 10px;cursor:pointer}form.login{background:#fff;border:1px solid #dde1e6;padding:16px;max-width:420px}form.login input{width:100%;\
margin:6px 0 10px;padding:6px;box-sizing:border-box}";
