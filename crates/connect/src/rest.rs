//! Connect's REST API (standalone): a small HTTP/1.1 server on tokio.
//!
//! Every request is answered with `Connection: close`; handlers call the blocking
//! [`Worker`] on tokio's blocking pool. Errors have Kafka's shape
//! `{"error_code":<http status>,"message":"…"}`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::config::{json_string_map, ConnectorClass, Props};
use crate::error::ConnectError;
use crate::task::State;
use crate::worker::{Worker, VERSION};

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// An HTTP answer: status, JSON body (`None`: no body), extra headers.
#[derive(Debug, PartialEq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// `Location` header (201 answers).
    pub location: Option<String>,
}

impl Response {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            location: None,
        }
    }

    fn empty(status: u16) -> Self {
        Self {
            status,
            body: None,
            location: None,
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(
            status,
            json!({"error_code": status, "message": message.into()}),
        )
    }
}

fn from_error(e: ConnectError) -> Response {
    let status = match &e {
        ConnectError::NotFound(_) | ConnectError::TaskNotFound(_) => 404,
        ConnectError::AlreadyExists(_) => 409,
        ConnectError::InvalidConfig(_)
        | ConnectError::Missing { .. }
        | ConnectError::Invalid { .. }
        | ConnectError::UnknownConnectorClass(_)
        | ConnectError::UnknownConverter(_)
        | ConnectError::NotStopped(_)
        | ConnectError::BadRequest(_) => 400,
        ConnectError::Forbidden(_) => 403,
        _ => 500,
    };
    if status == 500 {
        tracing::error!(error = %e, "REST request failed.");
    }
    Response::error(status, e.to_string())
}

fn parse_body(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .map_err(|e| Response::error(400, format!("Unrecognized or malformed JSON body: {e}")))
}

fn body_map(v: &Value) -> Result<Props, Response> {
    match v {
        Value::Object(o) => json_string_map(o).map_err(|m| Response::error(400, m)),
        _ => Err(Response::error(
            400,
            "Expected a JSON object of configuration values",
        )),
    }
}

fn query_flag(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

fn plugins(connectors_only: bool) -> Value {
    let mut list = vec![
        json!({"class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "type": "sink", "version": VERSION}),
        json!({"class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "type": "source", "version": VERSION}),
    ];
    if !connectors_only {
        for class in [
            "org.apache.kafka.connect.converters.ByteArrayConverter",
            "org.apache.kafka.connect.json.JsonConverter",
            "org.apache.kafka.connect.storage.StringConverter",
        ] {
            list.push(json!({"class": class, "type": "converter", "version": VERSION}));
        }
    }
    Value::Array(list)
}

/// Answers one request (blocking: it may start or join task threads).
pub fn handle(worker: &Worker, method: &str, target: &str, body: &[u8]) -> Response {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let r = |res: Result<Value, ConnectError>| match res {
        Ok(v) => Response::json(200, v),
        Err(e) => from_error(e),
    };
    let accepted = |res: Result<(), ConnectError>, status: u16| match res {
        Ok(()) => Response::empty(status),
        Err(e) => from_error(e),
    };
    match (method, segs.as_slice()) {
        ("GET", []) => Response::json(
            200,
            json!({"version": VERSION, "commit": "flumen", "kafka_cluster_id": worker.cluster_id()}),
        ),
        ("GET", ["health"]) => Response::json(
            200,
            json!({"status": "healthy", "message": "Worker has completed startup and is ready to handle requests."}),
        ),
        ("GET", ["connectors"]) => {
            let expand: Vec<String> = query
                .split('&')
                .filter_map(|kv| kv.strip_prefix("expand="))
                .map(str::to_string)
                .collect();
            if expand.is_empty() {
                return Response::json(200, json!(worker.names()));
            }
            let mut out = serde_json::Map::new();
            for name in worker.names() {
                let mut entry = serde_json::Map::new();
                if expand.iter().any(|e| e == "status") {
                    if let Ok(s) = worker.status(&name) {
                        entry.insert("status".into(), s);
                    }
                }
                if expand.iter().any(|e| e == "info") {
                    if let Ok(i) = worker.info(&name) {
                        entry.insert("info".into(), i);
                    }
                }
                out.insert(name, Value::Object(entry));
            }
            Response::json(200, Value::Object(out))
        }
        ("POST", ["connectors"]) => {
            let v = match parse_body(body) {
                Ok(v) => v,
                Err(r) => return r,
            };
            let Some(name) = v.get("name").and_then(Value::as_str).map(str::to_string) else {
                return Response::error(
                    400,
                    "Connector name must be specified in the request body",
                );
            };
            let mut props = match v.get("config").map(body_map).unwrap_or(Ok(Props::new())) {
                Ok(p) => p,
                Err(r) => return r,
            };
            if let Some(n) = props.get("name") {
                if *n != name {
                    return Response::error(400, format!("Connector name configuration ({n}) doesn't match connector name in the URL ({name})"));
                }
            }
            props.insert("name".into(), name.clone());
            let initial = match v.get("initial_state").and_then(Value::as_str) {
                None | Some("RUNNING") => State::Running,
                Some("PAUSED") => State::Paused,
                Some("STOPPED") => State::Stopped,
                Some(other) => {
                    return Response::error(400, format!("Invalid initial state {other}"))
                }
            };
            match worker.create(props, initial) {
                Ok(info) => Response {
                    status: 201,
                    body: Some(info),
                    location: Some(format!("/connectors/{name}")),
                },
                Err(e) => from_error(e),
            }
        }
        ("GET", ["connectors", name]) => r(worker.info(name)),
        ("DELETE", ["connectors", name]) => accepted(worker.delete(name), 204),
        ("GET", ["connectors", name, "config"]) => r(worker.config_of(name).map(|p| json!(p))),
        ("PUT", ["connectors", name, "config"]) => {
            let props = match parse_body(body).and_then(|v| body_map(&v)) {
                Ok(p) => p,
                Err(r) => return r,
            };
            match worker.put_config(name, props) {
                Ok((true, info)) => Response {
                    status: 201,
                    body: Some(info),
                    location: Some(format!("/connectors/{name}")),
                },
                Ok((false, info)) => Response::json(200, info),
                Err(e) => from_error(e),
            }
        }
        ("PATCH", ["connectors", name, "config"]) => match parse_body(body) {
            Ok(Value::Object(patch)) => r(worker.patch_config(name, &patch)),
            Ok(_) => Response::error(400, "Expected a JSON object of configuration values"),
            Err(r) => r,
        },
        ("PATCH", ["connectors", name, "offsets"]) => match parse_body(body) {
            Ok(v) => r(worker.alter_offsets(name, &v)),
            Err(r) => r,
        },
        ("PUT", ["connectors", name, "topics", "reset"]) => {
            accepted(worker.reset_topics(name), 202)
        }
        ("GET", ["connector-plugins", plugin, "config"]) => match ConnectorClass::resolve(plugin) {
            Ok(class) => Response::json(200, class.config_keys()),
            Err(_) => Response::error(404, format!("Unknown plugin {plugin}.")),
        },
        ("PUT", ["connector-plugins", plugin, "config", "validate"]) => {
            let mut props = match parse_body(body).and_then(|v| body_map(&v)) {
                Ok(p) => p,
                Err(r) => return r,
            };
            let class = match props.get("connector.class") {
                Some(c) => {
                    let (Ok(included), Ok(requested)) =
                        (ConnectorClass::resolve(c), ConnectorClass::resolve(plugin))
                    else {
                        return from_error(ConnectError::UnknownConnectorClass(c.clone()));
                    };
                    if included != requested {
                        return Response::error(
                            400,
                            format!(
                                "Included connector type {c} does not match request type {plugin}"
                            ),
                        );
                    }
                    included
                }
                None => match ConnectorClass::resolve(plugin) {
                    Ok(class) => {
                        props.insert("connector.class".into(), plugin.to_string());
                        class
                    }
                    Err(e) => return from_error(e),
                },
            };
            Response::json(200, class.validate(&props, worker.config()))
        }
        ("GET", ["connectors", name, "status"]) => r(worker.status(name)),
        ("GET", ["connectors", name, "tasks"]) => r(worker.tasks(name)),
        ("GET", ["connectors", name, "topics"]) => r(worker.topics(name)),
        ("GET", ["connectors", name, "offsets"]) => r(worker.offsets(name)),
        ("DELETE", ["connectors", name, "offsets"]) => r(worker.reset_offsets(name)),
        ("GET", ["connectors", name, "tasks", id, "status"]) => match id.parse() {
            Ok(id) => r(worker.task_status(name, id)),
            Err(_) => Response::error(404, format!("Task {name}-{id} not found")),
        },
        ("POST", ["connectors", name, "tasks", id, "restart"]) => match id.parse() {
            Ok(id) => accepted(worker.restart_task(name, id), 204),
            Err(_) => Response::error(404, format!("Task {name}-{id} not found")),
        },
        ("POST", ["connectors", name, "restart"]) => {
            let include_tasks = query_flag(query, "includeTasks").is_some_and(|v| v == "true");
            let only_failed = query_flag(query, "onlyFailed").is_some_and(|v| v == "true");
            if let Err(e) = worker.restart(name) {
                return from_error(e);
            }
            if include_tasks || only_failed {
                r(worker.status(name)).with_status(202)
            } else {
                Response::empty(204)
            }
        }
        ("PUT", ["connectors", name, "pause"]) => accepted(worker.set_paused(name, true), 202),
        ("PUT", ["connectors", name, "resume"]) => accepted(worker.set_paused(name, false), 202),
        ("PUT", ["connectors", name, "stop"]) => accepted(worker.stop_connector(name), 204),
        ("GET", ["connector-plugins"]) => {
            let only = query_flag(query, "connectorsOnly").is_none_or(|v| v != "false");
            Response::json(200, plugins(only))
        }
        (_, [] | ["health"] | ["connectors", ..] | ["connector-plugins", ..])
            if known_path(&segs) =>
        {
            Response::error(405, "HTTP 405 Method Not Allowed")
        }
        _ => Response::error(404, "HTTP 404 Not Found"),
    }
}

fn known_path(segs: &[&str]) -> bool {
    matches!(
        segs,
        [] | ["health"]
            | ["connectors"]
            | ["connectors", _]
            | [
                "connectors",
                _,
                "config"
                    | "status"
                    | "tasks"
                    | "topics"
                    | "offsets"
                    | "restart"
                    | "pause"
                    | "resume"
                    | "stop"
            ]
            | ["connectors", _, "tasks", _, "status" | "restart"]
            | ["connectors", _, "topics", "reset"]
            | ["connector-plugins"]
            | ["connector-plugins", _, "config"]
            | ["connector-plugins", _, "config", "validate"]
    )
}

impl Response {
    fn with_status(mut self, status: u16) -> Self {
        if self.status == 200 {
            self.status = status;
        }
        self
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        _ => "Internal Server Error",
    }
}

/// Binds the REST listener (at start-up, so a busy port fails the worker clearly).
pub async fn bind(addr: &str) -> crate::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ConnectError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Serves the REST API until `shutdown`.
pub async fn serve(listener: TcpListener, worker: Arc<Worker>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let worker = worker.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(60), connection(stream, worker)).await;
        });
    }
}

async fn connection(mut stream: TcpStream, worker: Arc<Worker>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > 65536 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let response = if length > MAX_BODY {
        Response::error(413, "Request body too large")
    } else {
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(length);
        tokio::task::spawn_blocking(move || handle(&worker, &method, &target, &body))
            .await
            .unwrap_or_else(|_| Response::error(500, "internal error"))
    };
    let body = response.body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(l) = &response.location {
        head.push_str(&format!("Location: {l}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WorkerConfig;

    fn worker(dir: &std::path::Path) -> Worker {
        let mut p = Props::new();
        p.insert(
            "offset.storage.file.filename".into(),
            dir.join("o").display().to_string(),
        );
        p.insert("bootstrap.servers".into(), "127.0.0.1:1".into());
        Worker::new(
            WorkerConfig::from_props(p).unwrap(),
            "127.0.0.1:8083".into(),
            "c1".into(),
        )
    }

    #[test]
    fn errors_have_kafkas_shape() {
        let dir = tempfile::tempdir().unwrap();
        let w = worker(dir.path());
        let r = handle(&w, "GET", "/connectors/nope/status", b"");
        assert_eq!(r.status, 404);
        assert_eq!(
            r.body.unwrap(),
            json!({"error_code":404,"message":"Connector nope not found"})
        );
        assert_eq!(handle(&w, "GET", "/nowhere", b"").status, 404);
        assert_eq!(handle(&w, "DELETE", "/connector-plugins", b"").status, 405);
        let r = handle(
            &w,
            "POST",
            "/connectors",
            br#"{"name":"x","config":{"connector.class":"FileStreamSink"}}"#,
        );
        assert_eq!(r.status, 400);
        assert!(r.body.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("Must configure one of topics"));
    }

    #[test]
    fn stopped_connector_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let w = worker(dir.path());
        let body = format!(
            r#"{{"name":"s","config":{{"connector.class":"FileStreamSink","topics":"t","file":"{}"}},"initial_state":"STOPPED"}}"#,
            dir.path().join("out").display()
        );
        let r = handle(&w, "POST", "/connectors", body.as_bytes());
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.location.as_deref(), Some("/connectors/s"));
        assert_eq!(
            handle(&w, "POST", "/connectors", body.as_bytes()).status,
            409
        );
        assert_eq!(
            handle(&w, "GET", "/connectors", b"").body.unwrap(),
            json!(["s"])
        );
        let st = handle(&w, "GET", "/connectors/s/status", b"").body.unwrap();
        assert_eq!(st["connector"]["state"], "STOPPED");
        assert_eq!(st["type"], "sink");
        assert_eq!(
            handle(&w, "GET", "/connectors/s/config", b"").body.unwrap()["topics"],
            "t"
        );
        assert_eq!(
            handle(&w, "GET", "/connectors/s/offsets", b"")
                .body
                .unwrap(),
            json!({"offsets": []})
        );
        // (A sink's offset reset also resets its consumer group: the interop tests cover it.)
        assert_eq!(handle(&w, "DELETE", "/connectors/s", b"").status, 204);
        assert_eq!(handle(&w, "GET", "/connectors/s", b"").status, 404);
        let plugins = handle(&w, "GET", "/connector-plugins", b"").body.unwrap();
        assert_eq!(plugins.as_array().unwrap().len(), 2);
    }

    #[test]
    fn patch_config_offsets_and_validate() {
        let dir = tempfile::tempdir().unwrap();
        let w = worker(dir.path());
        let file = dir.path().join("in.txt").display().to_string();
        let body = json!({"name": "src", "initial_state": "STOPPED",
            "config": {"connector.class": "FileStreamSource", "topic": "t", "file": file, "batch.size": "10"}});
        assert_eq!(
            handle(&w, "POST", "/connectors", body.to_string().as_bytes()).status,
            201
        );
        // PATCH merges; null removes a key.
        let r = handle(
            &w,
            "PATCH",
            "/connectors/src/config",
            br#"{"topic":"u","batch.size":null}"#,
        );
        assert_eq!(r.status, 200, "{r:?}");
        let cfg = handle(&w, "GET", "/connectors/src/config", b"")
            .body
            .unwrap();
        assert_eq!(cfg["topic"], "u");
        assert!(cfg.get("batch.size").is_none(), "{cfg}");
        assert_eq!(
            handle(&w, "PATCH", "/connectors/nope/config", b"{}").status,
            404
        );
        let r = handle(&w, "PATCH", "/connectors/src/config", br#"{"topic":""}"#);
        assert_eq!(r.status, 400, "{r:?}");
        // Offsets of a STOPPED source: validated as Kafka's FileStreamSourceConnector does.
        let alter = |b: Value| {
            handle(
                &w,
                "PATCH",
                "/connectors/src/offsets",
                b.to_string().as_bytes(),
            )
        };
        let r = alter(
            json!({"offsets": [{"partition": {"filename": file}, "offset": {"position": 7}}]}),
        );
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            r.body.unwrap()["message"],
            "The offsets for this connector have been altered successfully"
        );
        assert_eq!(
            handle(&w, "GET", "/connectors/src/offsets", b"")
                .body
                .unwrap(),
            json!({"offsets": [{"partition": {"filename": file}, "offset": {"position": 7}}]})
        );
        for (bad, msg) in [
            (
                json!({"offsets": []}),
                "Partitions / offsets need to be provided",
            ),
            (
                json!({"offsets": [{"partition": {"f": 1}, "offset": null}]}),
                "'filename'",
            ),
            (
                json!({"offsets": [{"partition": {"filename": file}, "offset": {"position": -1}}]}),
                "non-negative",
            ),
            (
                json!({"offsets": [{"partition": {"filename": file}, "offset": {"position": "x"}}]}),
                "Long value",
            ),
            (
                json!({"offsets": [{"partition": {"filename": file}, "offset": {"p": 1}}]}),
                "'position'",
            ),
        ] {
            let r = alter(bad);
            assert_eq!(r.status, 400, "{r:?}");
            let m = r.body.unwrap()["message"].as_str().unwrap().to_string();
            assert!(m.contains(msg), "{m}");
        }
        let r = alter(json!({"offsets": [{"partition": {"filename": file}, "offset": null}]}));
        assert_eq!(r.status, 200);
        assert_eq!(
            handle(&w, "GET", "/connectors/src/offsets", b"")
                .body
                .unwrap(),
            json!({"offsets": []})
        );
        alter(json!({"offsets": [{"partition": {"filename": file}, "offset": {"position": 3}}]}));
        let r = handle(&w, "DELETE", "/connectors/src/offsets", b"");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body.unwrap()["message"],
            "The offsets for this connector have been reset successfully"
        );
        assert_eq!(
            handle(&w, "GET", "/connectors/src/offsets", b"")
                .body
                .unwrap(),
            json!({"offsets": []})
        );
        // Validation: every key with its errors.
        let r = handle(
            &w,
            "PUT",
            "/connector-plugins/FileStreamSinkConnector/config/validate",
            br#"{"connector.class":"FileStreamSink","name":"k","tasks.max":"0"}"#,
        );
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.body.unwrap();
        assert_eq!(
            v["name"],
            "org.apache.kafka.connect.file.FileStreamSinkConnector"
        );
        assert_eq!(v["error_count"], 3, "{v}");
        let errs = |k: &str| {
            v["configs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["value"]["name"] == k)
                .unwrap()["value"]["errors"]
                .clone()
        };
        assert_eq!(errs("tasks.max").as_array().unwrap().len(), 1);
        assert_eq!(errs("topics").as_array().unwrap().len(), 1);
        assert_eq!(errs("name"), json!([]));
        let r = handle(
            &w,
            "PUT",
            "/connector-plugins/FileStreamSource/config/validate",
            br#"{"connector.class":"FileStreamSink"}"#,
        );
        assert_eq!(r.status, 400);
        let keys = handle(&w, "GET", "/connector-plugins/FileStreamSource/config", b"")
            .body
            .unwrap();
        assert_eq!(keys.as_array().unwrap().len(), 3);
        assert_eq!(
            handle(&w, "GET", "/connector-plugins/Nope/config", b"").status,
            404
        );
    }

    #[test]
    fn offsets_change_only_when_stopped_and_topics_reset() {
        let dir = tempfile::tempdir().unwrap();
        let w = worker(dir.path());
        let body = json!({"name": "s", "initial_state": "PAUSED",
            "config": {"connector.class": "FileStreamSource", "topic": "t",
                       "file": dir.path().join("nothing").display().to_string()}});
        assert_eq!(
            handle(&w, "POST", "/connectors", body.to_string().as_bytes()).status,
            201
        );
        for method in ["PATCH", "DELETE"] {
            let r = handle(&w, method, "/connectors/s/offsets", br#"{"offsets":[]}"#);
            assert_eq!(r.status, 400);
            assert!(r.body.unwrap()["message"]
                .as_str()
                .unwrap()
                .starts_with("Connectors must be in the STOPPED state"));
        }
        assert_eq!(
            handle(&w, "GET", "/connectors/s/topics", b"").body.unwrap(),
            json!({"s": {"topics": []}})
        );
        assert_eq!(
            handle(&w, "PUT", "/connectors/s/topics/reset", b"").status,
            202
        );
        assert_eq!(
            handle(&w, "GET", "/connectors/s/tasks/0/status", b"").status,
            200
        );
        assert_eq!(
            handle(&w, "GET", "/connectors/s/tasks/1/status", b"").status,
            404
        );
        assert_eq!(
            handle(&w, "POST", "/connectors/s/tasks/1/restart", b"").status,
            404
        );
        assert_eq!(
            handle(&w, "POST", "/connectors/s/tasks/0/restart", b"").status,
            204
        );
        assert_eq!(handle(&w, "DELETE", "/connectors/s", b"").status, 204);
    }
}
