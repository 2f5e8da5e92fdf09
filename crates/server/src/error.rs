//! The one error type of the HTTP API: a stable code and a message for people, answered as
//! `{"error": {"code", "message"}}` with the matching status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cove_protocol::{ErrorCode, ErrorReply, RestError};

#[derive(Debug)]
pub struct ApiError {
    pub reply: ErrorReply,
    status: Option<StatusCode>,
    /// Seconds to wait before trying again (`Retry-After`), for 429 and 503.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            reply: ErrorReply::new(code, message),
            status: None,
            retry_after: None,
        }
    }

    /// An error someone else (a runner) already put in the API's shape.
    pub fn from_reply(reply: ErrorReply) -> ApiError {
        ApiError {
            reply,
            status: None,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, message)
    }

    /// A plain request to a WebSocket route.
    pub fn upgrade_required() -> ApiError {
        ApiError {
            reply: ErrorReply::new(
                ErrorCode::BadRequest,
                "this route takes a WebSocket upgrade",
            ),
            status: Some(StatusCode::UPGRADE_REQUIRED),
            retry_after: None,
        }
    }

    /// Says when to try again (`Retry-After`, seconds).
    pub fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Conflict, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// The same error answered with another HTTP status than its code's.
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = Some(status);
        self
    }

    /// An internal failure: logged in full, answered without details.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "{context}");
        ApiError::new(
            ErrorCode::Internal,
            format!("{context}; see the server log"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.reply.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        let mut response = (status, axum::Json(RestError { error: self.reply })).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> ApiError {
        match e {
            crate::db::DbError::NameTaken(name) => ApiError::new(
                ErrorCode::Conflict,
                format!("a workspace named {name:?} already exists"),
            ),
            crate::db::DbError::UsernameTaken(name) => ApiError::new(
                ErrorCode::Conflict,
                format!("a user named {name:?} already exists"),
            ),
            other => ApiError::internal("database error", other),
        }
    }
}
