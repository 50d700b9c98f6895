//! [`ApiError`]: the one place an error becomes an HTTP response.
//!
//! Every error body is `{"error": {"code", "message"}}` with a fitting status. Internal causes
//! are logged, never put in the body beyond the public message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use wharf_engine::Error as EngineError;
use wharf_engine::docker;
use wharf_engine::params::ParamError;

/// An API error: status, stable snake_case code, and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// An answer about the app's state (e.g. nothing listens yet), not a failure of ours: it
    /// is logged at debug even when its status is 5xx.
    expected: bool,
}

/// The JSON body of every error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// `error` in [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable snake_case code.
    pub code: String,
    /// What happened and what to do.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), expected: !status.is_server_error() }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 501 for a capability a later version brings.
    pub fn not_implemented(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            format!("{what} is not implemented in this version of wharf"),
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if !self.expected {
            tracing::warn!(target: "wharf::api", code = self.code, message = %self.message, "request failed");
        } else {
            tracing::debug!(target: "wharf::api", code = self.code, message = %self.message, "request refused");
        }
        let body =
            ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        (self.status, Json(body)).into_response()
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> ApiError {
        let code = match &e {
            ParamError::Id(_) => "invalid_id",
            ParamError::Image(_) => "invalid_image",
            ParamError::Labels(_) => "invalid_labels",
            ParamError::Env(_) => "invalid_env",
            ParamError::Command(_) => "invalid_command",
            ParamError::Instance(_) => "invalid_instance",
            ParamError::Timeout(_) => "invalid_timeout",
            ParamError::Signal(_) => "invalid_signal",
            ParamError::Port(_) => "invalid_port",
            _ => "invalid_params",
        };
        ApiError::bad_request(code, e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        use StatusCode as S;
        let message = e.to_string();
        let (status, code) = match &e {
            EngineError::Param(p) => return ApiError::from(p.clone()),
            EngineError::AlreadyRunning(_) => (S::CONFLICT, "already_running"),
            EngineError::NotRunning(_) => (S::CONFLICT, "not_running"),
            EngineError::NotStarted(_) => (S::CONFLICT, "not_started"),
            EngineError::NoAppContainer(_) => (S::NOT_FOUND, "no_app_container"),
            EngineError::ImageNotFound { .. } => (S::NOT_FOUND, "image_not_found"),
            EngineError::PortNotListening { .. } => {
                let mut e = ApiError::new(S::BAD_GATEWAY, "port_not_listening", message);
                e.expected = true;
                return e;
            }
            EngineError::Sidecar { .. } => (S::BAD_GATEWAY, "sidecar_error"),
            EngineError::Docker { source: docker::Error::Unavailable(_), .. } => {
                (S::SERVICE_UNAVAILABLE, "docker_unavailable")
            }
            EngineError::Docker { .. } => (S::BAD_GATEWAY, "docker_error"),
            EngineError::Image(_) => (S::INTERNAL_SERVER_ERROR, "image_build_failed"),
            EngineError::OutputTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "output_too_large"),
            EngineError::ShuttingDown => (S::SERVICE_UNAVAILABLE, "shutting_down"),
            EngineError::EngineBusy { .. } | EngineError::State { .. } => {
                (S::INTERNAL_SERVER_ERROR, "engine_state")
            }
            _ => (S::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, message)
    }
}

#[cfg(test)]
mod tests {
    use wharf_engine::params::ContainerId;

    use super::*;

    #[test]
    fn engine_errors_map_to_the_contract() {
        let id = ContainerId::new("a").unwrap();
        let check = |e: EngineError| {
            let api = ApiError::from(e);
            (api.status().as_u16(), api.code())
        };
        assert_eq!(check(EngineError::AlreadyRunning(id.clone())), (409, "already_running"));
        assert_eq!(check(EngineError::NotRunning(id.clone())), (409, "not_running"));
        assert_eq!(check(EngineError::NotStarted(id)), (409, "not_started"));
        assert_eq!(
            check(EngineError::PortNotListening { port: 8081 }),
            (502, "port_not_listening")
        );
        assert_eq!(
            check(EngineError::ImageNotFound { image: "x".to_owned() }),
            (404, "image_not_found")
        );
        let p = ParamError::Signal("bad".to_owned());
        assert_eq!(check(EngineError::Param(p)), (400, "invalid_signal"));
    }

    #[test]
    fn not_listening_message_is_the_container_apis() {
        let api = ApiError::from(EngineError::PortNotListening { port: 8081 });
        assert_eq!(api.message, "Container is not listening to port 8081");
    }
}
