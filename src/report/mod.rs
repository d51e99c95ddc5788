//! What the user sees: errors with a location and a `help:` line, tables, and JSON lines.

pub mod prewarm;
pub mod prewarm_status;
mod progress;
pub mod release;
mod table;
pub mod timeline;

use std::fmt::Write as _;
use std::io::Write as _;

pub use progress::{HumanReporter, JsonReporter};
pub use serde_json::json;
pub use table::Table;

use crate::Error;

/// Where results go: human text, or one JSON object per line (`--output json`).
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `text` in human mode; nothing in JSON mode.
    pub fn human(&self, text: &str) {
        if !self.json {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            if !text.ends_with('\n') && !text.is_empty() {
                let _ = stdout.write_all(b"\n");
            }
        }
    }

    /// Prints one JSON line in JSON mode, stamped with `ts` (RFC 3339, UTC) like the progress
    /// events; nothing in human mode.
    pub fn event(&self, mut event: serde_json::Value) {
        if self.json {
            if let Some(object) = event.as_object_mut() {
                let now = jiff::Timestamp::now();
                let ts = now.round(jiff::Unit::Millisecond).unwrap_or(now);
                object.insert("ts".to_string(), ts.to_string().into());
            }
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{event}");
        }
    }
}

/// How long something took, the same way everywhere: `850ms`, `12.3s`, `4m 05s`.
pub fn elapsed(duration: std::time::Duration) -> String {
    let millis = duration.as_millis();
    match duration.as_secs() {
        0 => format!("{millis}ms"),
        1..60 => format!("{:.1}s", millis as f64 / 1000.0),
        secs => format!("{}m {:02}s", secs / 60, secs % 60),
    }
}

/// A YAML rendering of a value for people.
pub fn yaml<T: serde::Serialize>(value: &T) -> String {
    yaml_serde::to_string(value).unwrap_or_else(|error| format!("<cannot show: {error}>\n"))
}

/// `error: …`, ` --> file:line:col (key)`, `help: …` for each problem; with `verbose`, the chain.
pub fn render_error(error: &Error, verbose: bool) -> String {
    let mut out = String::new();
    let diagnostics = error.diagnostics();
    if diagnostics.is_empty() {
        let _ = writeln!(out, "error: {error}");
        chain(&mut out, error, verbose);
        return out;
    }
    if diagnostics.len() > 1 {
        let _ = writeln!(out, "error: {error}\n");
    }
    for diagnostic in diagnostics {
        let _ = writeln!(out, "error: {diagnostic}");
        if let Some(location) = diagnostic.location() {
            let _ = writeln!(out, "  --> {location}");
        }
        if let Some(help) = diagnostic.help() {
            let _ = writeln!(out, "help: {help}");
        }
        chain(&mut out, diagnostic, verbose);
        out.push('\n');
    }
    out.pop();
    out
}

/// One problem with its `help:` line and innermost cause, as [`render_error`] shows it.
pub fn render_diagnostic(diagnostic: &dyn crate::diagnostic::Diagnose) -> String {
    let mut out = format!("error: {diagnostic}\n");
    if let Some(help) = diagnostic.help() {
        let _ = writeln!(out, "help: {help}");
    }
    chain(&mut out, diagnostic, false);
    out
}

fn chain(out: &mut String, error: &dyn std::error::Error, verbose: bool) {
    let mut source = error.source();
    if !verbose {
        // Without -v, show only the innermost cause: usually the operating system's own words.
        let mut innermost = None;
        while let Some(cause) = source {
            innermost = Some(cause);
            source = cause.source();
        }
        if let Some(cause) = innermost {
            let _ = writeln!(out, "  cause: {cause}");
        }
        return;
    }
    while let Some(cause) = source {
        let _ = writeln!(out, "  caused by: {cause}");
        source = cause.source();
    }
}
