//! Patch bodies: JSON merge patch (RFC 7386), the only kind besides server-side apply that
//! Convoy (and the stand-in kubelet) send. JSON patch and strategic merge patch are refused with
//! 415, as a real server refuses an unknown patch type.

use serde_json::Value;

use super::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let mime = content_type.split(';').next().unwrap_or("").trim();
        match mime {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Applies a merge patch to `target`.
pub fn patch(kind: PatchKind, target: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let mut doc = target.clone();
    match kind {
        PatchKind::Merge => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::bad_request("patch body must be a JSON object"));
            }
            json_patch::merge(&mut doc, &p);
        }
        PatchKind::Apply => unreachable!("apply patches go through apply::apply"),
    }
    Ok(doc)
}
