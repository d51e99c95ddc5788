//! From an HTTP request to a response: path and verb parsing, discovery documents, fault rules,
//! the request log, and dispatch to the verbs and watches.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use serde_json::{Value, json};

use super::call::{Call, asks_for_metadata};
use super::discovery::{self, ResourceDef};
use super::status::ApiError;
use super::subresource::check_sub;
use super::verbs;
use super::{Request, Shared, faults, lock, watch};

/// The response body: a whole JSON document, or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

fn json_response(code: u16, value: &Value) -> http::Response<Body> {
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(value.to_string())).boxed_unsync())
        .expect("valid response")
}

pub fn error_response(error: &ApiError) -> http::Response<Body> {
    let mut response = json_response(error.code, &error.body());
    if let Some(secs) = error.retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, secs.into());
    }
    response
}

/// What a path names.
enum Route {
    Doc(Option<Value>),
    Resource {
        res: &'static ResourceDef,
        namespace: Option<String>,
        name: Option<String>,
        sub: Option<String>,
    },
}

fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["version"] => Route::Doc(Some(discovery::version())),
        ["api"] => Route::Doc(Some(discovery::core_versions())),
        ["api", version] => Route::Doc(discovery::resource_list("", version)),
        ["apis"] => Route::Doc(Some(discovery::group_list())),
        ["apis", group] => Route::Doc(discovery::group(group)),
        ["apis", group, version] => Route::Doc(discovery::resource_list(group, version)),
        ["api", version, rest @ ..] => resource_route("", version, rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Route::Doc(None),
    }
}

fn resource_route(group: &str, version: &str, segs: &[&str]) -> Route {
    let namespaced = match segs {
        ["namespaces", ns, plural, rest @ ..] => discovery::find(group, version, plural)
            .filter(|r| r.namespaced)
            .map(|r| (r, Some(ns.to_string()), rest)),
        _ => None,
    };
    let (res, namespace, rest) = match namespaced {
        Some(found) => found,
        None => match segs {
            [plural, rest @ ..] => match discovery::find(group, version, plural) {
                Some(r) => (r, None, rest),
                None => return Route::Doc(None),
            },
            [] => return Route::Doc(None),
        },
    };
    let (name, sub) = match rest {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] => (Some(name.to_string()), Some(sub.to_string())),
        _ => return Route::Doc(None),
    };
    if name.is_some() && res.namespaced && namespace.is_none() {
        return Route::Doc(None);
    }
    Route::Resource {
        res,
        namespace,
        name,
        sub,
    }
}

fn verb(method: &Method, has_name: bool, watch: bool, content_type: &str) -> Option<&'static str> {
    Some(match (method.as_str(), has_name) {
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) if content_type.starts_with("application/apply-patch") => "apply",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        _ => return None,
    })
}

fn header(parts: &http::request::Parts, name: http::header::HeaderName) -> String {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Serves one request against the shared state.
pub async fn handle(
    shared: Arc<Shared>,
    parts: http::request::Parts,
    body: Bytes,
) -> http::Response<Body> {
    let (res, namespace, name, sub) = match route(parts.uri.path()) {
        Route::Doc(doc) => return discovery_request(&shared, &parts, doc).await,
        Route::Resource {
            res,
            namespace,
            name,
            sub,
        } => (res, namespace, name, sub),
    };
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let content_type = header(&parts, http::header::CONTENT_TYPE);
    let watching = query
        .iter()
        .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    let Some(verb) = verb(&parts.method, name.is_some(), watching, &content_type) else {
        return error_response(&ApiError::method_not_allowed());
    };
    let call = Call {
        verb,
        res,
        namespace,
        name,
        sub,
        query,
        body,
        content_type,
        user_agent: header(&parts, http::header::USER_AGENT),
        accept: header(&parts, http::header::ACCEPT),
    };
    let outcome = {
        let mut rules = lock(&shared.faults);
        faults::check(&mut rules, verb, res.plural, call.name.as_deref())
    };
    if !outcome.delay.is_zero() {
        tokio::time::sleep(outcome.delay).await;
    }
    let response = match outcome.fail {
        Some(error) => error_response(&error),
        None if outcome.expired => expired_response(),
        None => dispatch(&shared, call.clone(), outcome.drop_watch_after),
    };
    log(&shared, &call, response.status());
    response
}

/// A watch answered by one `ERROR` event, 410 Expired, as when etcd compacted the requested
/// version away.
pub fn expired_response() -> http::Response<Body> {
    let status = ApiError::new(
        410,
        "Expired",
        "too old resource version: 1 (2) (injected fault)",
    );
    let event = json!({"type": "ERROR", "object": status.body()});
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(format!("{event}\n"))).boxed_unsync())
        .expect("valid response")
}

/// A request as the log records it (with no status yet), for requests the fault proxy passes on;
/// `None` for discovery and paths of kinds this server does not know.
pub fn logged(parts: &http::request::Parts) -> Option<Request> {
    let Route::Resource {
        res,
        namespace,
        name,
        sub,
    } = route(parts.uri.path())
    else {
        return None;
    };
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let watching = query
        .iter()
        .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    let content_type = header(parts, http::header::CONTENT_TYPE);
    let verb = verb(&parts.method, name.is_some(), watching, &content_type)?;
    Some(Request {
        verb: verb.to_string(),
        group: res.group.to_string(),
        version: res.version.to_string(),
        resource: res.plural.to_string(),
        namespace,
        name,
        subresource: sub,
        dry_run: query.iter().any(|(k, v)| k == "dryRun" && v == "All"),
        status: 0,
        user_agent: Some(header(parts, http::header::USER_AGENT)),
        metadata_only: asks_for_metadata(&header(parts, http::header::ACCEPT)),
        answered: std::time::Instant::now(),
    })
}

/// `/version`, `/api`, `/apis` and the group documents (or a path nothing serves): logged as a
/// `get` with no resource, and subject to fault rules that name no resource.
async fn discovery_request(
    shared: &Shared,
    parts: &http::request::Parts,
    doc: Option<Value>,
) -> http::Response<Body> {
    let path = parts.uri.path();
    let outcome = {
        let mut rules = lock(&shared.faults);
        faults::check(&mut rules, "get", "", None)
    };
    if !outcome.delay.is_zero() {
        tokio::time::sleep(outcome.delay).await;
    }
    let response = match (outcome.fail, doc) {
        (Some(error), _) => error_response(&error),
        (None, Some(_)) if parts.method != Method::GET => {
            error_response(&ApiError::method_not_allowed())
        }
        (None, Some(doc)) => json_response(200, &doc),
        (None, None) => error_response(&ApiError::path_not_found()),
    };
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version) = match segs.as_slice() {
        ["api", version, ..] => ("", *version),
        ["apis", group, rest @ ..] => (*group, rest.first().copied().unwrap_or("")),
        _ => ("", ""),
    };
    lock(&shared.log).push(Request {
        verb: "get".into(),
        group: group.into(),
        version: version.into(),
        resource: String::new(),
        namespace: None,
        name: None,
        subresource: None,
        dry_run: false,
        status: response.status().as_u16(),
        user_agent: None,
        metadata_only: false,
        answered: std::time::Instant::now(),
    });
    response
}

fn log(shared: &Shared, call: &Call, status: StatusCode) {
    lock(&shared.log).push(Request {
        verb: call.verb.to_string(),
        group: call.res.group.to_string(),
        version: call.res.version.to_string(),
        resource: call.res.plural.to_string(),
        namespace: call.namespace.clone(),
        name: call.name.clone(),
        subresource: call.sub.clone(),
        dry_run: call.dry_run(),
        status: status.as_u16(),
        user_agent: Some(call.user_agent.clone()),
        metadata_only: call.metadata_only(),
        answered: std::time::Instant::now(),
    });
}

fn dispatch(
    shared: &Arc<Shared>,
    call: Call,
    drop_watch_after: Option<usize>,
) -> http::Response<Body> {
    if let Err(e) = check_sub(&call) {
        return error_response(&e);
    }
    let writes = !matches!(call.verb, "get" | "list" | "watch");
    if call.res.read_only && writes {
        return error_response(&ApiError::method_not_allowed());
    }
    if call.verb == "watch" {
        return match watch::start(shared, call, drop_watch_after) {
            Ok(lines) => stream_response(lines),
            Err(e) => error_response(&e),
        };
    }
    let mut store = lock(&shared.store);
    let result = match call.verb {
        "get" => verbs::get(&store, &call).map(|v| (200, v)),
        "list" => verbs::list(&store, &call).map(|v| (200, v)),
        "create" if call.sub.is_none() => verbs::create(&mut store, &call),
        "update" => verbs::replace(&mut store, &call).map(|v| (200, v)),
        "patch" | "apply" => verbs::patch(&mut store, &call),
        "delete" if call.sub.is_none() => verbs::delete(&mut store, &call).map(|v| (200, v)),
        _ => Err(ApiError::method_not_allowed()),
    };
    match result {
        Ok((code, value)) => json_response(code, &value),
        Err(e) => error_response(&e),
    }
}

fn stream_response(lines: tokio::sync::mpsc::Receiver<Bytes>) -> http::Response<Body> {
    let stream = futures::stream::unfold(lines, |mut rx| async move {
        rx.recv().await.map(|line| (line, rx))
    })
    .map(|line| Ok::<_, Infallible>(Frame::data(line)));
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(StreamBody::new(stream).boxed_unsync())
        .expect("valid response")
}
