//! GitHub webhooks (placeholder while the Slack transport lands).

pub mod api;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub(crate) async fn webhook() -> Response {
    StatusCode::NOT_FOUND.into_response()
}
