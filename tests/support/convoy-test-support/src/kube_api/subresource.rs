//! The `status` subresource: which part of the stored object a write through it may change (a
//! write to the main resource keeps the status).

use serde_json::Value;

use super::call::Call;
use super::status::ApiError;

/// What a subresource shows of an object: all of it.
pub fn view(_call: &Call, obj: &Value) -> Value {
    obj.clone()
}

/// The stored object a write through a subresource (or the main resource) produces.
pub fn unview(call: &Call, old: &Value, new: Value) -> Value {
    match call.sub.as_deref() {
        Some(_) => {
            let mut obj = old.clone();
            obj["status"] = new["status"].clone();
            obj
        }
        None if call.res.status => {
            let mut obj = new;
            match old.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => drop(obj.as_object_mut().map(|m| m.remove("status"))),
            }
            obj
        }
        None => new,
    }
}

/// Subresources this resource has.
pub fn check_sub(call: &Call) -> Result<(), ApiError> {
    match call.sub.as_deref() {
        None => Ok(()),
        Some("status") if call.res.status => Ok(()),
        _ => Err(ApiError::path_not_found()),
    }
}
