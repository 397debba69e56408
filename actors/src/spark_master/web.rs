//! The master's web UI: a page like Spark's master page, and `/json` with Spark's field names.

use super::actor::{GetView, MasterActor, MasterView, WorkerView};
use super::core::WorkerState;
use actix::Addr;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// Serves the UI of `master` on `host:port`; the server runs on the current actix system.
pub fn serve(
    master: Addr<MasterActor>,
    host: &str,
    port: u16,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(master.clone()))
            .route("/", web::get().to(page))
            .route("/json", web::get().to(json_page))
            .route("/json/", web::get().to(json_page))
    })
    .workers(1)
    .disable_signals()
    .bind((host, port))?
    .run();
    Ok(server)
}

async fn view(master: &Addr<MasterActor>) -> Option<MasterView> {
    master.send(GetView).await.ok()
}

async fn json_page(master: web::Data<Addr<MasterActor>>) -> HttpResponse {
    match view(&master).await {
        Some(v) => HttpResponse::Ok().json(to_json(&v)),
        None => HttpResponse::ServiceUnavailable().body("the master is restarting"),
    }
}

fn alive(v: &MasterView) -> impl Iterator<Item = &WorkerView> {
    v.workers.iter().filter(|w| w.state == WorkerState::Alive)
}

/// Spark's `/json` document for a master view.
pub fn to_json(v: &MasterView) -> Value {
    let workers: Vec<Value> = v
        .workers
        .iter()
        .map(|w| {
            json!({
                "id": w.id,
                "host": w.host,
                "port": w.port,
                "webuiaddress": w.webui,
                "cores": w.cores,
                "coresused": 0,
                "coresfree": w.cores,
                "memory": w.memory_mb,
                "memoryused": 0,
                "memoryfree": w.memory_mb,
                "state": w.state.name(),
                "lastheartbeat": w.last_heartbeat_ms,
            })
        })
        .collect();
    json!({
        "url": v.url,
        "workers": workers,
        "aliveworkers": alive(v).count(),
        "cores": alive(v).map(|w| u64::from(w.cores)).sum::<u64>(),
        "coresused": 0,
        "memory": alive(v).map(|w| w.memory_mb).sum::<u64>(),
        "memoryused": 0,
        "activeapps": [],
        "completedapps": [],
        "activedrivers": [],
        "completeddrivers": [],
        "status": v.status.name(),
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn page(master: web::Data<Addr<MasterActor>>) -> HttpResponse {
    match view(&master).await {
        Some(v) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(render_page(&v)),
        None => HttpResponse::ServiceUnavailable().body("the master is restarting"),
    }
}

/// The master page, laid out like Spark's.
pub fn render_page(v: &MasterView) -> String {
    let cores: u64 = alive(v).map(|w| u64::from(w.cores)).sum();
    let memory: u64 = alive(v).map(|w| w.memory_mb).sum();
    let rows: String = v
        .workers
        .iter()
        .map(|w| {
            format!(
                "<tr><td><a href=\"{webui}\">{id}</a></td><td>{host}:{port}</td><td>{state}</td>\
                 <td>{cores} (0 Used)</td><td>{mem} MiB (0.0 B Used)</td></tr>",
                webui = escape(&w.webui),
                id = escape(&w.id),
                host = escape(&w.host),
                port = w.port,
                state = w.state.name(),
                cores = w.cores,
                mem = w.memory_mb,
            )
        })
        .collect();
    let url = escape(&v.url);
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Spark Master at {url}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px}}</style></head><body>\
         <h3>Spark Master at {url}</h3><ul class=\"summary\">\
         <li><strong>URL:</strong> {url}</li>\
         <li><strong>Alive Workers:</strong> {alive}</li>\
         <li><strong>Cores in use:</strong> {cores} Total, 0 Used</li>\
         <li><strong>Memory in use:</strong> {memory} MiB Total, 0.0 B Used</li>\
         <li><strong>Applications:</strong> 0 Running, 0 Completed</li>\
         <li><strong>Drivers:</strong> 0 Running, 0 Completed</li>\
         <li><strong>Status:</strong> {status}</li></ul>\
         <h4>Workers ({count})</h4><table id=\"workers\"><tr><th>Worker Id</th><th>Address</th>\
         <th>State</th><th>Cores</th><th>Memory</th></tr>{rows}</table>\
         <h4>Running Applications (0)</h4><h4>Completed Applications (0)</h4>\
         </body></html>",
        alive = alive(v).count(),
        status = v.status.name(),
        count = v.workers.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spark_master::RecoveryState;

    fn view() -> MasterView {
        let worker = |id: &str, state| WorkerView {
            id: id.into(),
            host: "10.0.0.1".into(),
            port: 4000,
            webui: "http://10.0.0.1:8081".into(),
            cores: 2,
            memory_mb: 1024,
            state,
            last_heartbeat_ms: 5,
        };
        MasterView {
            url: "spark://m:7077".into(),
            status: RecoveryState::Alive,
            epoch: 3,
            workers: vec![
                worker("w1", WorkerState::Alive),
                worker("w<2>", WorkerState::Dead),
            ],
        }
    }

    #[test]
    fn json_uses_sparks_field_names_and_counts_alive_workers() {
        let j = to_json(&view());
        assert_eq!(j["status"], "ALIVE");
        assert_eq!(j["aliveworkers"], 1);
        assert_eq!(
            (j["cores"].clone(), j["memory"].clone()),
            (json!(2), json!(1024))
        );
        assert_eq!(j["workers"][1]["state"], "DEAD");
        assert_eq!(j["workers"][0]["webuiaddress"], "http://10.0.0.1:8081");
        for key in [
            "url",
            "coresused",
            "memoryused",
            "activeapps",
            "completedapps",
            "activedrivers",
            "completeddrivers",
        ] {
            assert!(j.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn the_page_has_sparks_header_and_escapes_names() {
        let html = render_page(&view());
        for part in [
            "Spark Master at spark://m:7077",
            "<strong>Alive Workers:</strong> 1",
            "<strong>Status:</strong> ALIVE",
            "w&lt;2&gt;",
        ] {
            assert!(html.contains(part), "{part}");
        }
    }
}
