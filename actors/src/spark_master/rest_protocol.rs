//! Spark's REST submission protocol (`/v1/submissions/...`, as `spark-submit` speaks it to a
//! standalone master in cluster deploy mode), as pure functions: which request a method and
//! path are, a strict decoder of `CreateSubmissionRequest` bodies, the driver a request maps
//! to, and Spark's JSON responses. No sockets here; `rest.rs` serves it.
//!
//! A create request maps to a process-based driver: `appResource` (a local path, optionally
//! `file:` or `local:`) with `appArgs` is the command; a `.jar` resource runs as
//! `java -Xmx<driver memory>m -cp <jar> <mainClass> <appArgs>`; `environmentVariables` are set
//! (through `env`); `spark.driver.cores`, `spark.driver.memory` and `spark.driver.supervise`
//! size and supervise it. Every other Spark property is validated as Spark validates it, then
//! ignored (executors are the driver's own business here).

use ensemble_config::spark::parse_memory_mb;
use ensemble_messages::spark::DriverDesc;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The protocol version in every path.
pub const PROTOCOL_VERSION: &str = "v1";

/// Spark's HTTP status for a path with an unknown protocol version.
pub const UNKNOWN_PROTOCOL_VERSION: u16 = 468;

/// The largest request body read, in bytes; a larger one is refused before it is read.
pub const MAX_BODY: usize = 1 << 20;

/// What `serverSparkVersion` says: this server's version (it speaks Spark's protocol v1).
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Spark's prefix of a non-ALIVE master's answer (`Utils.BACKUP_STANDALONE_MASTER_PREFIX`):
/// clients asking several masters go on to the next one when they see it.
pub const NOT_ALIVE_PREFIX: &str = "Current state is not alive";

/// The hint every path error ends with.
const PATH_HINT: &str = "Please submit requests through http://[host]:[port]/v1/submissions/...";

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// POST `/v1/submissions/create`: submit a driver (the body says which).
    Create,
    /// GET `/v1/submissions/status/<id>`.
    Status(String),
    /// POST `/v1/submissions/kill/<id>`.
    Kill(String),
    /// Anything else: answered with this reply at once.
    Refused(Reply),
}

/// An HTTP status and a JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The JSON document.
    pub body: Value,
}

impl Reply {
    /// The body as Spark's server prints it (Jackson's indented style, fields in order).
    pub fn text(&self) -> String {
        to_spark_json(&self.body)
    }
}

/// Which request `method` on `path` is, as Spark's servlets map them.
pub fn route(method: &str, path: &str) -> Request {
    let base = format!("/{PROTOCOL_VERSION}/submissions/");
    let Some(rest) = path.strip_prefix(&base) else {
        return Request::Refused(path_error(path));
    };
    let (action, tail) = rest.split_once('/').unwrap_or((rest, ""));
    // The first non-empty segment after the action is the submission id.
    let id = tail.split('/').find(|s| !s.is_empty()).map(str::to_string);
    let wants = |m: &str| method.eq_ignore_ascii_case(m);
    match action {
        "create" if wants("POST") => Request::Create,
        "status" if wants("GET") => match id {
            Some(id) => Request::Status(id),
            None => Request::Refused(error(400, "Submission ID is missing in status request.")),
        },
        "kill" if wants("POST") => match id {
            Some(id) => Request::Kill(id),
            None => Request::Refused(error(400, "Submission ID is missing in kill request.")),
        },
        "create" | "kill" => Request::Refused(error(
            405,
            &format!("HTTP method {method} is not supported by {path}: use POST."),
        )),
        "status" => Request::Refused(error(
            405,
            &format!("HTTP method {method} is not supported by {path}: use GET."),
        )),
        _ => Request::Refused(path_error(path)),
    }
}

/// Spark's answer to a path no servlet takes.
fn path_error(path: &str) -> Reply {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (status, what) = match parts.as_slice() {
        [] => (400, "Missing protocol version.".to_string()),
        [v] if *v == PROTOCOL_VERSION => (400, "Missing the /submissions prefix.".into()),
        [v, "submissions", ..] if *v == PROTOCOL_VERSION => (
            400,
            "Missing an action: please specify one of /create, /kill, or /status.".into(),
        ),
        [other, ..] => (
            UNKNOWN_PROTOCOL_VERSION,
            format!("Unknown protocol version '{other}'."),
        ),
    };
    let mut reply = error(status, &format!("{what} {PATH_HINT}"));
    if status == UNKNOWN_PROTOCOL_VERSION {
        reply.body["highestProtocolVersion"] = json!(PROTOCOL_VERSION);
    }
    reply
}

/// An `ErrorResponse` with `status`.
pub fn error(status: u16, message: &str) -> Reply {
    Reply {
        status,
        body: json!({
            "action": "ErrorResponse",
            "message": message,
            "serverSparkVersion": SERVER_VERSION,
        }),
    }
}

/// A decoded `CreateSubmissionRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateSubmission {
    /// The application's resource: a jar or an executable.
    pub app_resource: String,
    /// The main class, for a jar.
    pub main_class: Option<String>,
    /// Arguments.
    pub app_args: Vec<String>,
    /// Spark properties.
    pub spark_properties: BTreeMap<String, String>,
    /// The driver's extra environment.
    pub environment_variables: BTreeMap<String, String>,
    /// Fields this server does not know (Spark reports them back in `unknownFields`).
    pub unknown_fields: Vec<String>,
}

/// The body's fields, typed: anything of another type is refused.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCreate {
    action: Option<String>,
    client_spark_version: Option<String>,
    app_resource: Option<String>,
    main_class: Option<String>,
    app_args: Option<Vec<String>>,
    spark_properties: Option<BTreeMap<String, String>>,
    environment_variables: Option<BTreeMap<String, String>>,
    #[serde(rename = "message")]
    _message: Option<String>,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

/// The response and request types of the protocol, which a create request must not be.
const OTHER_ACTIONS: [&str; 5] = [
    "CreateSubmissionResponse",
    "KillSubmissionResponse",
    "SubmissionStatusResponse",
    "ErrorResponse",
    "KillAllSubmissionResponse",
];

/// Decodes and validates a create request body (at most [`MAX_BODY`] bytes, which the caller
/// enforces), as Spark validates it; the error is an `ErrorResponse` to send.
pub fn decode_create(body: &[u8]) -> Result<CreateSubmission, Reply> {
    let malformed = |why: String| error(400, &format!("Malformed request: {why}"));
    if body.len() > MAX_BODY {
        return Err(too_large());
    }
    let raw: RawCreate =
        serde_json::from_slice(body).map_err(|e| malformed(format!("invalid JSON: {e}")))?;
    match raw.action.as_deref() {
        Some("CreateSubmissionRequest") => {}
        Some(a) if OTHER_ACTIONS.contains(&a) => {
            return Err(error(
                400,
                &format!("Received message of unexpected type {a}."),
            ))
        }
        Some(a) => return Err(malformed(format!("unknown action '{a}'"))),
        None => return Err(malformed("the action field is missing".into())),
    }
    let missing = |name: &str| {
        malformed(format!(
            "Field '{name}' is missing in message CreateSubmissionRequest."
        ))
    };
    if raw.client_spark_version.is_none() {
        return Err(missing("clientSparkVersion"));
    }
    let props = raw
        .spark_properties
        .ok_or_else(|| malformed("No Spark properties set!".into()))?;
    let app_resource = raw.app_resource.ok_or_else(|| missing("appResource"))?;
    if !props.contains_key("spark.app.name") {
        return Err(missing("spark.app.name"));
    }
    check_properties(&props).map_err(malformed)?;
    Ok(CreateSubmission {
        app_resource,
        main_class: raw.main_class,
        app_args: raw.app_args.unwrap_or_default(),
        spark_properties: props,
        environment_variables: raw.environment_variables.unwrap_or_default(),
        unknown_fields: raw.unknown.into_keys().collect(),
    })
}

/// The refusal of a body over [`MAX_BODY`].
pub fn too_large() -> Reply {
    error(
        413,
        &format!("Malformed request: the body is larger than {MAX_BODY} bytes."),
    )
}

/// Spark's checks of property types: booleans, numbers and memory sizes.
fn check_properties(props: &BTreeMap<String, String>) -> Result<(), String> {
    let expected = |key: &str, kind: &str, value: &str| {
        format!("Property '{key}' expected {kind} value: actual was '{value}'.")
    };
    if let Some(v) = props.get("spark.driver.supervise") {
        parse_bool(v).ok_or_else(|| expected("spark.driver.supervise", "boolean", v))?;
    }
    for key in ["spark.driver.cores", "spark.cores.max"] {
        if let Some(v) = props.get(key) {
            v.trim()
                .parse::<f64>()
                .map_err(|_| expected(key, "numeric", v))?;
        }
    }
    for key in ["spark.driver.memory", "spark.executor.memory"] {
        if let Some(v) = props.get(key) {
            parse_memory_mb(v).map_err(|_| expected(key, "memory", v))?;
        }
    }
    Ok(())
}

/// Scala's `toBoolean`: `true` or `false` in any case.
fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The driver a create request runs, or why it cannot run here (a 400 `ErrorResponse`).
pub fn driver_desc(req: &CreateSubmission) -> Result<DriverDesc, Reply> {
    let refuse = |why: String| error(400, &format!("Malformed request: {why}"));
    let props = &req.spark_properties;
    let cores = match props.get("spark.driver.cores") {
        None => 1,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| refuse(format!("spark.driver.cores={v} is not a whole number >= 1")))?,
    };
    let memory_mb = match props.get("spark.driver.memory") {
        None => 1024,
        Some(v) => parse_memory_mb(v)
            .ok()
            .filter(|m| *m > 0)
            .ok_or_else(|| refuse(format!("spark.driver.memory={v} is under 1 MiB")))?,
    };
    let supervise = props
        .get("spark.driver.supervise")
        .and_then(|v| parse_bool(v))
        .unwrap_or(false);
    let command = command(req, memory_mb).map_err(refuse)?;
    Ok(DriverDesc {
        command,
        cores,
        memory_mb,
        supervise,
    })
}

/// The driver's command line: `env K=V ...` first when it has extra environment.
fn command(req: &CreateSubmission, memory_mb: u64) -> Result<Vec<String>, String> {
    let resource = local_path(&req.app_resource)?;
    let mut command = Vec::new();
    for (k, v) in &req.environment_variables {
        let bad_name = k.is_empty() || k.contains(['=', '\0']);
        if bad_name || v.contains('\0') {
            return Err(format!("environment variable {k:?} cannot be set"));
        }
        if command.is_empty() {
            command.push("env".to_string());
        }
        command.push(format!("{k}={v}"));
    }
    if !command.is_empty() && resource.contains('=') {
        return Err(format!("appResource {resource:?} contains '='"));
    }
    if resource.ends_with(".jar") {
        let main = req
            .main_class
            .as_deref()
            .filter(|m| !m.is_empty())
            .ok_or("Main class is missing.")?;
        command.extend([
            "java".to_string(),
            format!("-Xmx{memory_mb}m"),
            "-cp".into(),
            resource,
            main.to_string(),
        ]);
    } else {
        command.push(resource);
    }
    if req.app_args.iter().any(|a| a.contains('\0')) {
        return Err("an application argument contains a NUL byte".into());
    }
    command.extend(req.app_args.iter().cloned());
    Ok(command)
}

/// `appResource` as a path on the worker: plain, `file:` or `local:`; other schemes (hdfs:,
/// http:) are not fetched here.
fn local_path(resource: &str) -> Result<String, String> {
    let path = resource
        .strip_prefix("file://")
        .or_else(|| resource.strip_prefix("file:"))
        .or_else(|| resource.strip_prefix("local://"))
        .or_else(|| resource.strip_prefix("local:"))
        .unwrap_or(resource);
    let scheme = path
        .split_once("://")
        .map(|(s, _)| s)
        .filter(|s| !s.contains('/'));
    if let Some(scheme) = scheme {
        return Err(format!(
            "appResource {resource}: {scheme}: resources are not fetched; give a path on the workers"
        ));
    }
    if path.is_empty() || path.contains('\0') {
        return Err("appResource is empty".into());
    }
    Ok(path.to_string())
}

/// A master's answer to a create request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateAnswer {
    /// Whether the driver was accepted.
    pub success: bool,
    /// Its id.
    pub driver_id: Option<String>,
    /// What happened.
    pub message: String,
}

/// A master's answer to a status request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusAnswer {
    /// Whether the driver is known.
    pub found: bool,
    /// Its state, Spark's name.
    pub state: Option<String>,
    /// The worker it runs on.
    pub worker_id: Option<String>,
    /// That worker's `host:port`.
    pub worker_host_port: Option<String>,
    /// Why it is not known (a master that is not ALIVE).
    pub message: Option<String>,
}

/// A master's answer to a kill request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillAnswer {
    /// Whether the kill was submitted.
    pub success: bool,
    /// What happened.
    pub message: String,
}

/// The `CreateSubmissionResponse` for `answer`.
pub fn create_response(answer: &CreateAnswer, unknown_fields: &[String]) -> Reply {
    let mut body = response("CreateSubmissionResponse", answer.success);
    body.insert("message".into(), json!(answer.message));
    if let Some(id) = &answer.driver_id {
        body.insert("submissionId".into(), json!(id));
    }
    if !unknown_fields.is_empty() {
        body.insert("unknownFields".into(), json!(unknown_fields));
    }
    ok(body)
}

/// The `SubmissionStatusResponse` for driver `id`.
pub fn status_response(id: &str, answer: &StatusAnswer) -> Reply {
    let mut body = response("SubmissionStatusResponse", answer.found);
    body.insert("submissionId".into(), json!(id));
    let fields = [
        ("driverState", &answer.state),
        ("workerId", &answer.worker_id),
        ("workerHostPort", &answer.worker_host_port),
        ("message", &answer.message),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            body.insert(name.into(), json!(v));
        }
    }
    ok(body)
}

/// The `KillSubmissionResponse` for driver `id`.
pub fn kill_response(id: &str, answer: &KillAnswer) -> Reply {
    let mut body = response("KillSubmissionResponse", answer.success);
    body.insert("submissionId".into(), json!(id));
    body.insert("message".into(), json!(answer.message));
    ok(body)
}

fn response(action: &str, success: bool) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("action".into(), json!(action));
    body.insert("serverSparkVersion".into(), json!(SERVER_VERSION));
    body.insert("success".into(), json!(success));
    body
}

fn ok(body: Map<String, Value>) -> Reply {
    Reply {
        status: 200,
        body: Value::Object(body),
    }
}

/// A flat JSON object as Jackson indents it (`"key" : value`, fields in name order, as
/// Spark's messages order them); nested values on one line.
pub fn to_spark_json(value: &Value) -> String {
    let Value::Object(map) = value else {
        return value.to_string();
    };
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let fields: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Array(items) if !items.is_empty() => {
                    let items: Vec<String> = items.iter().map(Value::to_string).collect();
                    format!("[ {} ]", items.join(", "))
                }
                other => other.to_string(),
            };
            format!("  {} : {v}", Value::String(k.clone()))
        })
        .collect();
    format!("{{\n{}\n}}", fields.join(",\n"))
}

#[cfg(test)]
#[path = "rest_protocol_tests.rs"]
mod tests;
