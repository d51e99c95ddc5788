//! Masking secrets in every form they can take in output: raw, JSON-escaped (also with non-ASCII
//! as `\uXXXX`, and escaped twice), shell-quoted (`'…'`, `"…"`, `$'…'`), base64 (standard,
//! URL-safe, unpadded, and wrapped at 76 and 64 columns as `base64` and PEM write it),
//! URL-encoded (`%20` and `+`, upper and lower case), and line by line for multi-line secrets
//! (a PEM key printed by a hook line by line, or one line of it quoted in an error).

use crate::config::marker::MASK;

/// Pieces shorter than this (lines of a multi-line secret, base64 wrap lines) are not masked on
/// their own: `-----` or `}` would hide half the output. The whole secret always is.
const MIN_PIECE: usize = 8;

/// The texts to hide and everything derived from them, longest first.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    needles: Vec<String>,
}

impl Masker {
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut needles = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.is_empty() {
                continue;
            }
            forms(secret, &mut needles);
            let lines: Vec<&str> = secret.lines().collect();
            if lines.len() > 1 {
                for line in lines {
                    let line = line.trim_matches(|c: char| c.is_whitespace());
                    if line.len() >= MIN_PIECE {
                        forms(line, &mut needles);
                    }
                }
            }
        }
        needles.retain(|n| !n.is_empty() && n != MASK);
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Masker { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every form of every secret replaced by the mask.
    pub fn mask(&self, text: &str) -> String {
        let mut text = text.to_string();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), MASK);
            }
        }
        text
    }

    /// Bytes that may not be UTF-8 (a build log): masked as text, invalid bytes replaced.
    pub fn mask_bytes(&self, bytes: &[u8]) -> String {
        self.mask(&String::from_utf8_lossy(bytes))
    }
}

/// Every encoded form of `text`.
fn forms(text: &str, out: &mut Vec<String>) {
    let json = json_inner(text);
    let ascii_json = ascii_json(&json);
    out.extend([
        text.to_string(),
        json_inner(&json),
        ascii_json,
        json,
        text.replace('\'', r"'\''"),
        shell_double(text),
        shell_ansi_c(text),
        url(text, false, true),
        url(text, true, true),
        url(text, false, false),
        url(text, true, false),
    ]);
    let b64 = base64(text.as_bytes(), STANDARD);
    let b64_url = base64(text.as_bytes(), URL_SAFE);
    out.push(b64_url.trim_end_matches('=').to_string());
    out.push(b64_url);
    out.push(b64.trim_end_matches('=').to_string());
    for width in [76, 64] {
        let chunks: Vec<&str> = chunks(&b64, width);
        if chunks.len() > 1 {
            out.push(chunks.join("\n"));
            out.extend(
                chunks
                    .iter()
                    .filter(|c| c.len() >= MIN_PIECE)
                    .map(|c| c.to_string()),
            );
        }
    }
    out.push(b64);
}

/// The JSON string for `text`, without its quotes, as serde_json writes it.
fn json_inner(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_string()
}

/// JSON with non-ASCII as `\uXXXX` (Python's `json.dumps` default).
fn ascii_json(json: &str) -> String {
    let mut out = String::new();
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn shell_double(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The inside of bash's `$'…'` (what `printf %q` writes for text with newlines).
fn shell_ansi_c(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            other => out.push(other),
        }
    }
    out
}

/// Percent-encoding of everything but RFC 3986's unreserved characters; `plus` writes a space
/// as `+` (HTML forms), `upper` picks the hex digits' case.
fn url(text: &str, plus: bool, upper: bool) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            b' ' if plus => out.push('+'),
            other if upper => out.push_str(&format!("%{other:02X}")),
            other => out.push_str(&format!("%{other:02x}")),
        }
    }
    out
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn chunks(text: &str, width: usize) -> Vec<&str> {
    // base64 is ASCII: byte offsets are character offsets.
    (0..text.len())
        .step_by(width)
        .map(|start| &text[start..(start + width).min(text.len())])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PEM-like key with quotes and backslashes: every hard case at once.
    pub(crate) const KEY: &str = "-----BEGIN TEST KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQ\"quoted\"\\back\\slash'single'\nSECOND+LINE/of=the$key`tick`\n-----END TEST KEY-----";

    fn assert_masked(masker: &Masker, shown: &str) {
        let masked = masker.mask(&format!("before {shown} after"));
        assert!(
            masked.starts_with("before ") && masked.ends_with(" after"),
            "{masked}"
        );
        for line in KEY
            .lines()
            .filter(|l| l.len() >= MIN_PIECE && !l.starts_with("-----"))
        {
            assert!(!masked.contains(line), "`{line}` shows in {masked}");
        }
        assert!(masked.contains(MASK), "{masked}");
    }

    #[test]
    fn masks_raw_json_shell_base64_and_url_forms() {
        let masker = Masker::new([KEY]);
        let json = serde_json::to_string(&serde_json::json!({ "key": KEY })).unwrap();
        assert_masked(&masker, KEY);
        assert_masked(&masker, &json);
        assert_masked(&masker, &serde_json::to_string(&json).unwrap());
        assert_masked(&masker, &format!("'{}'", KEY.replace('\'', r"'\''")));
        assert_masked(&masker, &format!("\"{}\"", shell_double(KEY)));
        assert_masked(&masker, &format!("$'{}'", shell_ansi_c(KEY)));
        assert_masked(&masker, &base64(KEY.as_bytes(), STANDARD));
        assert_masked(
            &masker,
            &chunks(&base64(KEY.as_bytes(), STANDARD), 76).join("\n"),
        );
        assert_masked(&masker, &base64(KEY.as_bytes(), URL_SAFE));
        assert_masked(&masker, &url(KEY, false, true));
        assert_masked(&masker, &url(KEY, true, false));
    }

    #[test]
    fn masks_a_multi_line_secret_line_by_line() {
        let masker = Masker::new([KEY]);
        let second = KEY.lines().nth(1).unwrap();
        assert_eq!(
            masker.mask(&format!("line: {second}")),
            format!("line: {MASK}")
        );
        let as_json = json_inner(second);
        assert_eq!(
            masker.mask(&format!("\"{as_json}\"")),
            format!("\"{MASK}\"")
        );
    }

    #[test]
    fn base64_matches_the_standard_encoding() {
        assert_eq!(base64(b"", STANDARD), "");
        assert_eq!(base64(b"f", STANDARD), "Zg==");
        assert_eq!(base64(b"fo", STANDARD), "Zm8=");
        assert_eq!(base64(b"foo", STANDARD), "Zm9v");
        assert_eq!(base64(b"\xfb\xff", URL_SAFE), "-_8=");
    }

    #[test]
    fn non_ascii_and_short_secrets() {
        let masker = Masker::new(["pässwörd", "", "ab"]);
        assert_eq!(masker.mask("p\\u00e4ssw\\u00f6rd"), MASK);
        assert_eq!(
            masker.mask("cab"),
            format!("c{MASK}"),
            "whole secrets are masked however short"
        );
        assert_eq!(Masker::new([""]).mask("text"), "text");
    }
}
