//! Turns request bodies into the engine's validated parameters, or a 400 that says why.

use std::time::Duration;

use serde_json::{Map, Value};
use wharf_engine::params::{
    self, EnvVar, ExecParams, ImageRef, Labels, ParamError, Shape, StartParams,
};

use crate::ApiError;
use crate::dto::{ExecBody, StartBody};

/// Cloudflare's named instance types: (name, vcpu, memory MiB, disk MB).
const INSTANCE_TYPES: [(&str, f64, f64, f64); 8] = [
    ("lite", 0.0625, 256.0, 2000.0),
    ("dev", 0.0625, 256.0, 2000.0),
    ("basic", 0.25, 1024.0, 4000.0),
    ("standard", 0.5, 4096.0, 8000.0),
    ("standard-1", 0.5, 4096.0, 8000.0),
    ("standard-2", 1.0, 6144.0, 12000.0),
    ("standard-3", 2.0, 8192.0, 16000.0),
    ("standard-4", 4.0, 12288.0, 20000.0),
];

/// Validates StartParams.
pub fn start(body: StartBody) -> Result<StartParams, ApiError> {
    let snapshot = body.container_snapshot_id.as_deref().filter(|s| !s.is_empty());
    let image = match (body.image.as_deref(), snapshot) {
        (Some(_), Some(_)) => {
            return Err(conflict("`image` and `containerSnapshotId` are mutually exclusive"));
        }
        (None, Some(_)) => {
            return Err(ApiError::not_implemented("starting from a container snapshot"));
        }
        (None, None) => return Err(ApiError::bad_request("invalid_image", "`image` is required")),
        (Some(image), None) => ImageRef::new(image)?,
    };
    if body.directory_snapshots.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::not_implemented("restoring directory snapshots"));
    }
    let entrypoint = body.entrypoint.map(|argv| params::command("entrypoint", argv)).transpose()?;
    Ok(StartParams {
        image,
        entrypoint,
        env: env(body.env.unwrap_or_default())?,
        enable_internet: body.enable_internet.unwrap_or(false),
        labels: labels(body.labels.unwrap_or_default())?,
        hard_timeout: hard_timeout(body.hard_timeout_ms)?,
        shape: shape(body.instance.as_ref())?,
    })
}

/// Validates a run-to-completion exec.
pub fn exec(body: ExecBody) -> Result<ExecParams, ApiError> {
    if body.stdin == Some(true) {
        return Err(ApiError::bad_request(
            "invalid_exec",
            "stdin needs the streaming exec (a WebSocket upgrade)",
        ));
    }
    if body.tty.as_ref().is_some_and(|t| *t != Value::Bool(false) && !t.is_null()) {
        return Err(ApiError::bad_request(
            "invalid_exec",
            "a tty needs the streaming exec (a WebSocket upgrade)",
        ));
    }
    let cwd = body.cwd.filter(|c| !c.is_empty());
    if cwd.as_ref().is_some_and(|c| !c.starts_with('/')) {
        return Err(ApiError::bad_request("invalid_exec", "cwd must be an absolute path"));
    }
    Ok(ExecParams {
        cmd: params::command("cmd", body.cmd)?,
        env: env(body.env.unwrap_or_default())?,
        cwd,
        user: body.user.filter(|u| !u.is_empty()),
        combined_output: body.combined_output.unwrap_or(false),
    })
}

/// Validates a label object; values must be strings.
pub fn labels(map: Map<String, Value>) -> Result<Labels, ApiError> {
    let mut entries = Vec::with_capacity(map.len());
    for (name, value) in map {
        let Value::String(value) = value else {
            return Err(
                ParamError::Labels(format!("label {name:?} must have a string value")).into()
            );
        };
        entries.push((name, value));
    }
    Ok(Labels::new(entries)?)
}

/// A signal given as a number 1..=64 or a name (`TERM`, `SIGKILL`, `RTMIN+2`).
pub fn signal(value: &Value) -> Result<params::Signal, ApiError> {
    let parsed = match value {
        Value::Number(n) => n.as_i64().map_or_else(|| params::Signal::new(0), params::Signal::new),
        Value::String(name) => params::Signal::parse(name),
        other => params::Signal::parse(&other.to_string()),
    };
    Ok(parsed?)
}

/// An inactivity timeout in milliseconds (an integer > 0).
pub fn inactivity_ms(value: &Value) -> Result<Duration, ApiError> {
    let ms = value.as_i64().ok_or_else(|| {
        ParamError::Timeout(format!(
            "setInactivityTimeout() requires an integer ms > 0, got {value}"
        ))
    })?;
    Ok(params::timeout_ms("setInactivityTimeout()", ms)?)
}

fn env(entries: Vec<String>) -> Result<Vec<EnvVar>, ApiError> {
    Ok(entries.iter().map(|e| EnvVar::parse(e)).collect::<Result<_, _>>()?)
}

fn hard_timeout(ms: Option<i64>) -> Result<Option<Duration>, ApiError> {
    match ms {
        None | Some(0) => Ok(None),
        Some(ms) => Ok(Some(params::timeout_ms("hardTimeoutMs", ms)?)),
    }
}

fn shape(instance: Option<&Value>) -> Result<Shape, ApiError> {
    let invalid = || ParamError::Instance("Invalid container instance type".to_owned());
    match instance {
        None | Some(Value::Null) => Ok(Shape::default()),
        Some(Value::String(name)) => {
            let (_, vcpu, mem, disk) =
                INSTANCE_TYPES.iter().find(|t| t.0 == name).ok_or_else(invalid)?;
            Ok(Shape::new(Some(*vcpu), Some(*mem), Some(*disk))?)
        }
        Some(Value::Object(o)) => {
            let field = |k: &str| -> Result<Option<f64>, ParamError> {
                match o.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                        ParamError::Instance(format!(
                            "Container resource {k} must be a finite number greater than 0"
                        ))
                    }),
                }
            };
            if let Some(k) =
                o.keys().find(|k| !["vcpu", "memoryMib", "diskMb"].contains(&k.as_str()))
            {
                return Err(ParamError::Instance(format!(
                    "unknown instance field {k:?}: use vcpu, memoryMib, diskMb"
                ))
                .into());
            }
            Ok(Shape::new(field("vcpu")?, field("memoryMib")?, field("diskMb")?)?)
        }
        Some(_) => Err(invalid().into()),
    }
}

fn conflict(message: &str) -> ApiError {
    ApiError::from(ParamError::Conflict(message.to_owned()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn body(v: Value) -> StartBody {
        serde_json::from_value(v).unwrap()
    }

    fn code(r: Result<StartParams, ApiError>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn minimal_and_full_bodies() {
        let p = start(body(json!({"image": "wharf/testapp:latest"}))).unwrap();
        assert!(!p.enable_internet && p.labels.is_empty() && p.hard_timeout.is_none());
        let p = start(body(json!({
            "image": "i", "entrypoint": ["/bin/sh", "-c", "exit 0"], "env": ["A=1"],
            "enableInternet": true, "labels": {"tier": "gold", "a": "b"}, "hardTimeoutMs": 0,
            "instance": {"vcpu": 0.5, "memoryMib": 256, "diskMb": 2000}
        })))
        .unwrap();
        assert_eq!(p.labels.iter().collect::<Vec<_>>(), [("tier", "gold"), ("a", "b")]);
        assert_eq!(p.shape.memory_mib, Some(256));
    }

    #[test]
    fn refusals_have_codes() {
        assert_eq!(code(start(body(json!({})))), "invalid_image");
        assert_eq!(code(start(body(json!({"image": "bad image"})))), "invalid_image");
        assert_eq!(
            code(start(body(json!({"image": "i", "containerSnapshotId": "x"})))),
            "invalid_params"
        );
        assert_eq!(code(start(body(json!({"image": "i", "env": ["NOPE"]})))), "invalid_env");
        assert_eq!(code(start(body(json!({"image": "i", "labels": {"a": 1}})))), "invalid_labels");
        assert_eq!(code(start(body(json!({"image": "i", "entrypoint": []})))), "invalid_command");
        assert_eq!(
            code(start(body(json!({"image": "i", "hardTimeoutMs": -1})))),
            "invalid_timeout"
        );
        assert_eq!(
            code(start(body(json!({"image": "i", "instance": "invalid"})))),
            "invalid_instance"
        );
        assert_eq!(
            code(start(body(json!({"image": "i", "instance": {"vcpu": 0}})))),
            "invalid_instance"
        );
        assert_eq!(
            code(start(body(json!({"image": "i", "instance": {"memoryMib": 0.5}})))),
            "invalid_instance"
        );
        assert_eq!(
            code(start(body(json!({"image": "i", "directorySnapshots": [{}]})))),
            "not_implemented"
        );
    }

    #[test]
    fn named_instance_types() {
        let p = start(body(json!({"image": "i", "instance": "basic"}))).unwrap();
        assert_eq!(p.shape.memory_mib, Some(1024));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            serde_json::from_value::<StartBody>(json!({"image": "i", "enableInternt": true}))
                .is_err()
        );
    }

    #[test]
    fn exec_bodies() {
        let e = exec(
            serde_json::from_value(json!({"cmd": ["pwd"], "cwd": "/tmp", "combinedOutput": true}))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(e.cwd.as_deref(), Some("/tmp"));
        let bad = |v: Value| exec(serde_json::from_value(v).unwrap()).unwrap_err().code();
        assert_eq!(bad(json!({"cmd": []})), "invalid_command");
        assert_eq!(bad(json!({"cmd": ["x"], "stdin": true})), "invalid_exec");
        assert_eq!(bad(json!({"cmd": ["x"], "tty": {"cols": 1, "rows": 1}})), "invalid_exec");
        assert_eq!(bad(json!({"cmd": ["x"], "cwd": "tmp"})), "invalid_exec");
    }

    proptest! {
        #[test]
        fn start_validation_never_panics(
            image in proptest::option::of(".{0,40}"),
            env in proptest::collection::vec(".{0,20}", 0..4),
            ms in proptest::option::of(proptest::num::i64::ANY),
            vcpu in proptest::option::of(proptest::num::f64::ANY),
        ) {
            let b = StartBody {
                image, env: Some(env), hard_timeout_ms: ms,
                instance: vcpu.and_then(serde_json::Number::from_f64).map(|n| json!({"vcpu": n})),
                ..StartBody::default()
            };
            let _ = start(b);
        }
    }
}
