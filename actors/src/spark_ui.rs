//! What the master's and the worker's pages share: one style sheet, HTML escaping and the page
//! frame, so that both look alike.

/// The style sheet of every Spark page.
pub const STYLE: &str = "body{font-family:sans-serif;margin:2em}\
    table{border-collapse:collapse;margin-bottom:1em}\
    td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
    ul.summary,ul.unstyled{list-style:none;padding-left:0}\
    a{color:#0366d6}";

/// `s` with the characters HTML gives a meaning to escaped.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A whole page: `title` (already escaped) as its title and heading, then `body`.
pub fn frame(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>{STYLE}</style></head><body><h3>{title}</h3>{body}</body></html>"
    )
}

/// A table with `headers` and the rows already rendered.
pub fn table(id: &str, headers: &[&str], rows: &str) -> String {
    let heads: String = headers.iter().map(|h| format!("<th>{h}</th>")).collect();
    format!("<table id=\"{id}\"><tr>{heads}</tr>{rows}</table>")
}

/// Links to an executor's stdout and stderr on the worker whose web UI is `webui` (empty:
/// this one), at Spark's `logPage` address.
pub fn log_links(webui: &str, app_id: &str, exec_id: u32) -> String {
    ["stdout", "stderr"]
        .iter()
        .map(|t| {
            format!(
                "<a href=\"{webui}/logPage/?appId={app}&amp;executorId={exec_id}&amp;logType={t}\">{t}</a>",
                webui = escape(webui.trim_end_matches('/')),
                app = escape(app_id),
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
        let page = frame("T", "<p>b</p>");
        assert!(page.contains("<title>T</title>") && page.contains(STYLE));
        assert_eq!(
            table("t", &["A"], "<tr><td>1</td></tr>"),
            "<table id=\"t\"><tr><th>A</th></tr><tr><td>1</td></tr></table>"
        );
    }
}
