//! The worker's web UI: a page and `/json` with Spark's field names.

use super::actor::{GetWorkerStatus, WorkerActor, WorkerStatus};
use actix::Addr;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// Serves the UI of `worker` on `listener` (bound by the caller before it starts any actor, so
/// that a taken port ends the process cleanly); the server runs on the current actix system.
pub fn serve(
    worker: Addr<WorkerActor>,
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(worker.clone()))
            .route("/", web::get().to(page))
            .route("/json", web::get().to(json_page))
            .route("/json/", web::get().to(json_page))
            .route("/metrics/prometheus", web::get().to(prometheus))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// Spark's worker `/json` document.
pub fn to_json(s: &WorkerStatus) -> Value {
    let executors: Vec<Value> = s
        .executors
        .iter()
        .map(|e| {
            json!({
                "id": e.exec_id,
                "appid": e.app_id,
                "cores": e.cores,
                "memory": e.memory_mb,
            })
        })
        .collect();
    json!({
        "id": s.spec.id,
        "masterurl": s.master.clone().unwrap_or_default(),
        "cores": s.spec.cores,
        "coresused": s.executors.iter().map(|e| e.cores).sum::<u32>(),
        "memory": s.spec.memory_mb,
        "memoryused": s.executors.iter().map(|e| e.memory_mb).sum::<u64>(),
        "executors": executors,
        "conflicts": s.conflicts,
        "finishedexecutors": [],
        "drivers": s.drivers,
        "finisheddrivers": [],
    })
}

/// Spark's WorkerSource gauges: executors, coresUsed, coresFree, memUsed_MB, memFree_MB.
pub fn prometheus_text(s: &WorkerStatus) -> String {
    let cores_used: u64 = s.executors.iter().map(|e| u64::from(e.cores)).sum();
    let mem_used: u64 = s.executors.iter().map(|e| e.memory_mb).sum();
    crate::metrics::spark::gauges(
        "worker",
        &[
            ("executors", s.executors.len() as u64),
            ("coresUsed", cores_used),
            ("memUsed_MB", mem_used),
            (
                "coresFree",
                u64::from(s.spec.cores).saturating_sub(cores_used),
            ),
            ("memFree_MB", s.spec.memory_mb.saturating_sub(mem_used)),
        ],
    )
}

async fn prometheus(worker: web::Data<Addr<WorkerActor>>) -> HttpResponse {
    match worker.send(GetWorkerStatus).await {
        Ok(s) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(prometheus_text(&s)),
        Err(_) => HttpResponse::ServiceUnavailable().body("the worker is restarting"),
    }
}

async fn json_page(worker: web::Data<Addr<WorkerActor>>) -> HttpResponse {
    match worker.send(GetWorkerStatus).await {
        Ok(s) => HttpResponse::Ok().json(to_json(&s)),
        Err(_) => HttpResponse::ServiceUnavailable().body("the worker is restarting"),
    }
}

async fn page(worker: web::Data<Addr<WorkerActor>>) -> HttpResponse {
    let Ok(s) = worker.send(GetWorkerStatus).await else {
        return HttpResponse::ServiceUnavailable().body("the worker is restarting");
    };
    let master = s.master.unwrap_or_else(|| "(not registered)".into());
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Spark Worker at {host}:{port}</title>\
         </head><body><h3>Spark Worker at {host}:{port}</h3><ul>\
         <li><strong>ID:</strong> {id}</li><li><strong>Master URL:</strong> {master}</li>\
         <li><strong>Cores:</strong> {cores} (0 Used)</li>\
         <li><strong>Memory:</strong> {mem} MiB (0.0 B Used)</li></ul>\
         <h4>Running Executors ({running})</h4></body></html>",
        running = s.executors.len(),
        host = s.spec.host,
        port = s.spec.port,
        id = s.spec.id,
        cores = s.spec.cores,
        mem = s.spec.memory_mb,
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body)
}
