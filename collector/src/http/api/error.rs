//! One error type for every handler, turned into a JSON [`ErrorBody`] response.
//!
//! Client mistakes get a 4xx whose message says what was wrong and how to fix it. Server faults get
//! a generic 500; the cause is logged here, once, and never sent to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cntt_common::wire::ErrorBody;

/// What went wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// No valid credential (401).
    #[error("{message}")]
    Unauthorized {
        /// Machine-readable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// Authenticated but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the resource's state (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than allowed (413).
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not JSON (415).
    #[error("send the body as JSON with the header Content-Type: application/json")]
    UnsupportedMediaType,
    /// The body is compressed in a way the collector cannot read (415).
    #[error("Content-Encoding {0:?} is not supported; send the body uncompressed or with Content-Encoding: gzip")]
    UnsupportedEncoding(String),
    /// Well-formed but unacceptable (422).
    #[error("{message}")]
    Unprocessable {
        /// Machine-readable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// Too many unauthenticated requests from this address (429, with `Retry-After`).
    #[error("too many requests without a valid credential from this address; retry after {retry_after_seconds} s")]
    TooManyRequests {
        /// Whole seconds until the next request is allowed.
        retry_after_seconds: u64,
    },
    /// Too many batches from this agent (429, with `Retry-After`).
    #[error("this agent posts batches faster than the collector's limits.agent_batches_per_second allows; retry after {retry_after_seconds} s")]
    AgentRateLimited {
        /// Whole seconds until the next batch is allowed.
        retry_after_seconds: u64,
    },
    /// The request was not received in time (408); its connection is closed.
    #[error("the request was not received within {seconds} s; send it again, faster")]
    RequestTimeout {
        /// The limit in seconds.
        seconds: u64,
    },
    /// A fault of ours (500).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 401 with a code and message.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Unauthorized {
            code,
            message: message.into(),
        }
    }

    /// A 422 with a code and message.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Unprocessable {
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, code),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::UnsupportedEncoding(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding")
            }
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::TooManyRequests { .. } | ApiError::AgentRateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
            }
            ApiError::RequestTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(err) => {
                tracing::error!(error = %format!("{err:#}"), "request failed");
                "internal error; the collector's log has the details".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: code.to_owned(),
            message,
        };
        let mut response = (status, Json(body)).into_response();
        match self {
            ApiError::TooManyRequests {
                retry_after_seconds,
            }
            | ApiError::AgentRateLimited {
                retry_after_seconds,
            } => {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(retry_after_seconds),
                );
            }
            ApiError::RequestTimeout { .. } => {
                response.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            _ => {}
        }
        response
    }
}
