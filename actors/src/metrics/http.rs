//! ZooKeeper's Prometheus endpoint: `GET /metrics` on metricsProvider.httpHost:httpPort.

use super::{render, ServerMetrics, CONTENT_TYPE};
use crate::client_port::ServerInfo;
use crate::pipeline::{GetReport, ServerAddrs, ServerReport};
use crate::zab::{GetStatus, NodeStatus};
use actix_web::{web, App, HttpResponse, HttpServer};
use ensemble_config::NodeConfig;
use std::sync::Arc;

/// What the HTTP endpoints of one server read: its config, its actors and its figures.
#[derive(Clone)]
pub struct Observed {
    /// The node's config.
    pub config: Arc<NodeConfig>,
    /// Its quorum peer, asked for status, and its request pipeline, asked for reports.
    pub server: ServerAddrs,
    /// Its running figures.
    pub metrics: Arc<ServerMetrics>,
}

impl Observed {
    /// The quorum peer's status; None while it restarts.
    pub async fn status(&self) -> Option<NodeStatus> {
        self.server.quorum.send(GetStatus).await.ok()
    }

    /// Connections, watches, sessions and ephemerals; None while the pipeline restarts.
    pub async fn report(&self) -> Option<ServerReport> {
        self.server.pipeline.send(GetReport).await.ok()
    }

    /// What four-letter words and commands are rendered from.
    pub fn info<'a>(
        &'a self,
        status: &'a NodeStatus,
        report: Option<&'a ServerReport>,
    ) -> ServerInfo<'a> {
        ServerInfo {
            config: &self.config,
            status,
            metrics: &self.metrics,
            report,
        }
    }
}

/// An HTTP server on `listener` (already bound) with one worker and no signal handling, to
/// be run on the node's arbiter.
pub fn server<F>(
    listener: std::net::TcpListener,
    routes: F,
) -> std::io::Result<actix_web::dev::Server>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    Ok(
        HttpServer::new(move || App::new().configure(routes.clone()))
            .workers(1)
            .disable_signals()
            .listen(listener)?
            .run(),
    )
}

/// Serves `/metrics` of `observed` on `listener`.
pub fn serve(
    listener: std::net::TcpListener,
    observed: Observed,
) -> std::io::Result<actix_web::dev::Server> {
    server(listener, move |cfg| {
        cfg.app_data(web::Data::new(observed.clone()))
            .route("/metrics", web::get().to(metrics));
    })
}

async fn metrics(observed: web::Data<Observed>) -> HttpResponse {
    match observed.status().await {
        Some(status) => HttpResponse::Ok()
            .content_type(CONTENT_TYPE)
            .body(render(&observed.info(&status, None))),
        None => HttpResponse::ServiceUnavailable().body("the server is restarting"),
    }
}
