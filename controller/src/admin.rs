//! The admin API (HTTP/JSON, see [`crate::api`]) and the Prometheus
//! metrics endpoint.
//!
//! HTTP/JSON rather than gRPC: an operator can drive it with `curl` in an
//! emergency, it needs no second set of `.proto` files, and it listens on
//! loopback by default so its lack of authentication is not exposed.

use crate::alloc::{AllocError, Change, ServerSpec};
use crate::api;
use crate::core::{Command, Outcome};
use crate::service::{CommandError, Handle};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use std::net::Ipv4Addr;

/// The admin API's routes.
pub fn router(handle: Handle) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/vips/{vip}/servers", post(add_server))
        .route(
            "/v1/vips/{vip}/servers/{dip}",
            axum::routing::delete(remove_server),
        )
        .route("/v1/vips/{vip}/servers/{dip}/drain", post(drain))
        .route("/v1/vips/{vip}/servers/{dip}/activate", post(activate))
        .route("/v1/vips/{vip}/servers/{dip}/weight", put(weight))
        .with_state(handle)
}

/// `GET /metrics`.
pub fn metrics_router(handle: Handle) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(handle)
}

struct ApiFailure(StatusCode, String);

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (self.0, Json(api::ApiError { error: self.1 })).into_response()
    }
}

impl From<CommandError> for ApiFailure {
    fn from(e: CommandError) -> Self {
        let code = match &e {
            CommandError::NoSuchVip(_) => StatusCode::NOT_FOUND,
            CommandError::Invalid(_) => StatusCode::BAD_REQUEST,
            CommandError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            CommandError::Refused(a) => match a {
                AllocError::UnknownVip(_) | AllocError::UnknownServer { .. } => {
                    StatusCode::NOT_FOUND
                }
                AllocError::InvalidDip { .. }
                | AllocError::ZeroWeight { .. }
                | AllocError::PortZero { .. } => StatusCode::BAD_REQUEST,
                _ => StatusCode::CONFLICT,
            },
        };
        ApiFailure(code, e.to_string())
    }
}

fn result(o: Outcome) -> Json<api::CommandResult> {
    let (moved, minimum) = o
        .report
        .as_ref()
        .map_or((0, 0), |r| (r.moved(), r.minimum()));
    let mut message = o.report.as_ref().map(|r| r.to_string()).unwrap_or_default();
    if let Some(n) = &o.note {
        message.push_str(n);
    }
    Json(api::CommandResult {
        generation: o.generation,
        committed: o.report.is_some(),
        moved,
        minimum,
        message,
    })
}

fn dip_of(s: &str) -> Result<Ipv4Addr, ApiFailure> {
    s.parse().map_err(|_| {
        ApiFailure(
            StatusCode::BAD_REQUEST,
            format!("{s:?} is not an IPv4 address"),
        )
    })
}

async fn status(State(h): State<Handle>) -> Result<Json<api::Status>, ApiFailure> {
    Ok(Json(h.status().await?.0))
}

async fn add_server(
    State(h): State<Handle>,
    Path(vip): Path<String>,
    Json(req): Json<api::AddServer>,
) -> Result<Json<api::CommandResult>, ApiFailure> {
    let vip_id = h.resolve_vip(&vip)?;
    let health = req
        .health
        .as_ref()
        .map(|s| h.health_config(vip_id, s))
        .transpose()?;
    let server = ServerSpec {
        dip: req.dip,
        port: req.port,
        weight: req.weight.unwrap_or(1),
    };
    let cmd = Command::add_server(vip_id, server, health);
    Ok(result(h.command(cmd).await?))
}

/// Runs the change `change(vip_id, dip)` on the server named by the path.
async fn server_change(
    h: &Handle,
    (vip, dip): (String, String),
    change: impl FnOnce(u16, Ipv4Addr) -> Change,
) -> Result<Json<api::CommandResult>, ApiFailure> {
    let vip_id = h.resolve_vip(&vip)?;
    let dip = dip_of(&dip)?;
    Ok(result(h.command(Command::from(change(vip_id, dip))).await?))
}

async fn remove_server(
    State(h): State<Handle>,
    Path(path): Path<(String, String)>,
) -> Result<Json<api::CommandResult>, ApiFailure> {
    server_change(&h, path, |vip_id, dip| Change::RemoveServer { vip_id, dip }).await
}

async fn drain(
    State(h): State<Handle>,
    Path(path): Path<(String, String)>,
) -> Result<Json<api::CommandResult>, ApiFailure> {
    server_change(&h, path, |vip_id, dip| Change::DrainServer { vip_id, dip }).await
}

async fn activate(
    State(h): State<Handle>,
    Path(path): Path<(String, String)>,
) -> Result<Json<api::CommandResult>, ApiFailure> {
    server_change(&h, path, |vip_id, dip| Change::ActivateServer {
        vip_id,
        dip,
    })
    .await
}

async fn weight(
    State(h): State<Handle>,
    Path(path): Path<(String, String)>,
    Json(req): Json<api::SetWeight>,
) -> Result<Json<api::CommandResult>, ApiFailure> {
    server_change(&h, path, |vip_id, dip| Change::SetWeight {
        vip_id,
        dip,
        weight: req.weight,
    })
    .await
}

async fn metrics(State(h): State<Handle>) -> Response {
    match h.status().await {
        Ok((status, stats)) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            crate::metrics::render(&status, &stats, &h.switch_counters()),
        )
            .into_response(),
        Err(e) => ApiFailure::from(e).into_response(),
    }
}
