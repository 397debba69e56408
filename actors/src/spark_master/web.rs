//! The master's web UI: a page like Spark's master page, and `/json` with Spark's field names.

use super::actor::{
    AppView, DriverView, ExecView, GetView, KillApp, KillDriver, MasterActor, MasterView,
    WorkerView,
};
use super::apps::AppState;
use super::core::{RecoveryState, WorkerState};
use super::decommission::AllowMode;
use super::kill_workers::kill_workers;
use crate::spark_ui::{escape, frame, log_links, table, STYLE};
use actix::Addr;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// Serves the UI of `master` on `listener` (bound by the caller before it starts any actor, so
/// that a taken port ends the process cleanly), its kill-workers endpoint open as `allow`
/// says; the server runs on the current actix system.
pub fn serve(
    master: Addr<MasterActor>,
    listener: std::net::TcpListener,
    allow: AllowMode,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(master.clone()))
            .app_data(web::Data::new(allow))
            .route("/", web::get().to(page))
            .route("/app", web::get().to(app_page))
            .route("/app/", web::get().to(app_page))
            .route("/json", web::get().to(json_page))
            .route("/json/", web::get().to(json_page))
            .route("/metrics/master/prometheus", web::get().to(prometheus))
            .route("/metrics/prometheus", web::get().to(prometheus))
            .route("/app/kill/", web::post().to(kill_app))
            .route("/driver/kill/", web::post().to(kill_driver))
            .route("/workers/kill/", web::post().to(kill_workers))
            .route("/workers/kill", web::post().to(kill_workers))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

async fn view(master: &Addr<MasterActor>) -> Option<MasterView> {
    master.send(GetView).await.ok()
}

/// The query of the kill action: `?id=<app id>` (Spark's `/app/kill/?id=...`).
#[derive(serde::Deserialize)]
struct KillQuery {
    id: String,
}

async fn kill_app(
    master: web::Data<Addr<MasterActor>>,
    query: web::Query<KillQuery>,
) -> HttpResponse {
    match master.send(KillApp(query.id.clone())).await {
        Ok(true) => HttpResponse::SeeOther()
            .insert_header(("Location", "/"))
            .finish(),
        Ok(false) => HttpResponse::NotFound().body(format!(
            "no running application {} on an ALIVE master",
            query.id
        )),
        Err(_) => HttpResponse::ServiceUnavailable().body("the master is restarting"),
    }
}

async fn kill_driver(
    master: web::Data<Addr<MasterActor>>,
    query: web::Query<KillQuery>,
) -> HttpResponse {
    match master.send(KillDriver(query.id.clone())).await {
        Ok(true) => HttpResponse::SeeOther()
            .insert_header(("Location", "/"))
            .finish(),
        Ok(false) => HttpResponse::NotFound()
            .body(format!("no running driver {} on an ALIVE master", query.id)),
        Err(_) => HttpResponse::ServiceUnavailable().body("the master is restarting"),
    }
}

async fn json_page(master: web::Data<Addr<MasterActor>>) -> HttpResponse {
    match view(&master).await {
        Some(v) => HttpResponse::Ok().json(to_json(&v)),
        None => HttpResponse::ServiceUnavailable().body("the master is restarting"),
    }
}

/// The master source's gauges in Spark's Prometheus format.
async fn prometheus(master: web::Data<Addr<MasterActor>>) -> HttpResponse {
    match view(&master).await {
        Some(v) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(prometheus_text(&v)),
        None => HttpResponse::ServiceUnavailable().body("the master is restarting"),
    }
}

/// Spark's MasterSource gauges: workers, aliveWorkers, apps (active) and waitingApps.
pub fn prometheus_text(v: &MasterView) -> String {
    let active = v.apps.iter().filter(|a| is_active(a.state)).count();
    let waiting = v
        .apps
        .iter()
        .filter(|a| a.state == AppState::Waiting)
        .count();
    crate::metrics::spark::gauges(
        "master",
        &[
            ("workers", v.workers.len() as u64),
            ("aliveWorkers", alive(v).count() as u64),
            ("apps", active as u64),
            ("waitingApps", waiting as u64),
        ],
    )
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
                "coresused": w.used.0,
                "coresfree": w.cores.saturating_sub(w.used.0),
                "memory": w.memory_mb,
                "memoryused": w.used.1,
                "memoryfree": w.memory_mb.saturating_sub(w.used.1),
                "state": w.state.name(),
                "lastheartbeat": w.last_heartbeat_ms,
            })
        })
        .collect();
    let (active, completed): (Vec<&AppView>, Vec<&AppView>) =
        v.apps.iter().partition(|a| is_active(a.state));
    json!({
        "url": v.url,
        "workers": workers,
        "aliveworkers": alive(v).count(),
        "cores": alive(v).map(|w| u64::from(w.cores)).sum::<u64>(),
        "coresused": alive(v).map(|w| u64::from(w.used.0)).sum::<u64>(),
        "memory": alive(v).map(|w| w.memory_mb).sum::<u64>(),
        "memoryused": alive(v).map(|w| w.used.1).sum::<u64>(),
        "activeapps": active.iter().map(|a| app_json(a)).collect::<Vec<_>>(),
        "completedapps": completed.iter().map(|a| app_json(a)).collect::<Vec<_>>(),
        "activedrivers": v.drivers.iter().filter(|d| !d.state.is_finished()).map(driver_json).collect::<Vec<_>>(),
        "completeddrivers": v.drivers.iter().filter(|d| d.state.is_finished()).map(driver_json).collect::<Vec<_>>(),
        "status": v.status.name(),
        // Ensemble additions: the leadership epoch workers fence by (0 in STANDBY), and
        // whether the master rides through a lost ensemble connection without acting.
        "epoch": v.epoch,
        "suspended": v.suspended,
    })
}

fn is_active(state: AppState) -> bool {
    matches!(
        state,
        AppState::Waiting | AppState::Running | AppState::Unknown
    )
}

fn driver_json(d: &DriverView) -> Value {
    json!({
        "id": d.id,
        "state": d.state.name(),
        "worker": d.worker,
        "cores": d.cores,
        "memory": d.memory_mb,
    })
}

fn app_json(a: &AppView) -> Value {
    json!({
        "id": a.id,
        "starttime": a.submitted_ms,
        "name": a.name,
        "cores": a.cores,
        "user": a.user,
        "memoryperexecutor": a.executor_memory_mb,
        "submitdate": format_date(a.submitted_ms),
        "state": a.state.name(),
        "duration": a.duration_ms,
        "executors": a.executors.iter().map(|e| json!({
            "id": e.id, "worker": e.worker, "state": e.state.name(),
            "cores": e.cores, "memory": e.memory_mb,
        })).collect::<Vec<_>>(),
    })
}

/// A time (ms since the Unix epoch) as Spark's pages show it, `yyyy/MM/dd HH:mm:ss` (UTC).
pub fn format_date(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y/%m/%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A duration as Spark's pages show it: ms under 0.1 s, then seconds, minutes, hours.
pub fn format_duration(ms: u64) -> String {
    let secs = ms as f64 / 1000.0;
    if ms < 100 {
        format!("{ms} ms")
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// The query of the application page: `?appId=<app id>` (Spark's `/app/?appId=...`).
#[derive(serde::Deserialize)]
struct AppQuery {
    #[serde(rename = "appId")]
    app_id: String,
}

async fn app_page(
    master: web::Data<Addr<MasterActor>>,
    query: web::Query<AppQuery>,
) -> HttpResponse {
    let Some(v) = view(&master).await else {
        return HttpResponse::ServiceUnavailable().body("the master is restarting");
    };
    match v.apps.iter().find(|a| a.id == query.app_id) {
        Some(a) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(render_app_page(a)),
        None => HttpResponse::NotFound().body(format!(
            "no application {} on this master",
            escape(&query.app_id)
        )),
    }
}

/// One executor's row on the application page, with links to its logs on its worker.
fn exec_row(app_id: &str, e: &ExecView) -> String {
    let logs = if e.worker_webui.is_empty() {
        String::new()
    } else {
        log_links(&e.worker_webui, app_id, e.id)
    };
    format!(
        "<tr><td>{id}</td><td>{worker}</td><td>{cores}</td><td>{mem} MiB</td><td>{state}</td>\
         <td>{logs}</td></tr>",
        id = e.id,
        worker = escape(&e.worker),
        cores = e.cores,
        mem = e.memory_mb,
        state = e.state.name(),
    )
}

/// Spark's application page: its summary, then its live and removed executors.
pub fn render_app_page(a: &AppView) -> String {
    let headers = ["ExecutorID", "Worker", "Cores", "Memory", "State", "Logs"];
    let (live, removed): (Vec<&ExecView>, Vec<&ExecView>) =
        a.executors.iter().partition(|e| !e.state.is_finished());
    let rows = |es: &[&ExecView]| -> String { es.iter().map(|e| exec_row(&a.id, e)).collect() };
    let body = format!(
        "<ul class=\"summary\"><li><strong>ID:</strong> {id}</li>\
         <li><strong>Name:</strong> {name}</li><li><strong>User:</strong> {user}</li>\
         <li><strong>Cores:</strong> {cores}</li>\
         <li><strong>Executor Memory:</strong> {mem} MiB</li>\
         <li><strong>Submit Date:</strong> {date}</li><li><strong>State:</strong> {state}</li>\
         </ul><p><a href=\"/\">Back to Master</a></p>\
         <h4>Executor Summary ({n_live})</h4>{live}<h4>Removed Executors ({n_removed})</h4>{removed}",
        id = escape(&a.id),
        name = escape(&a.name),
        user = escape(&a.user),
        cores = a.cores,
        mem = a.executor_memory_mb,
        date = format_date(a.submitted_ms),
        state = a.state.name(),
        n_live = live.len(),
        live = table("executors", &headers, &rows(&live)),
        n_removed = removed.len(),
        removed = table("removed", &headers, &rows(&removed)),
    );
    frame(&format!("Application: {}", escape(&a.name)), &body)
}

async fn page(master: web::Data<Addr<MasterActor>>) -> HttpResponse {
    match view(&master).await {
        Some(v) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(render_page(&v)),
        None => HttpResponse::ServiceUnavailable().body("the master is restarting"),
    }
}

fn driver_rows(drivers: &[DriverView]) -> String {
    drivers
        .iter()
        .map(|d| {
            let kill = if d.state.is_finished() {
                String::new()
            } else {
                format!(
                    "<form method=\"post\" action=\"/driver/kill/?id={id}\" \
                     style=\"display:inline\"><button type=\"submit\">kill</button></form>",
                    id = escape(&d.id)
                )
            };
            format!(
                "<tr><td>{id} {kill}</td><td>{worker}</td><td>{state}</td><td>{cores}</td>\
                 <td>{mem} MiB</td></tr>",
                id = escape(&d.id),
                worker = escape(d.worker.as_deref().unwrap_or("")),
                state = d.state.name(),
                cores = d.cores,
                mem = d.memory_mb,
            )
        })
        .collect()
}

/// On a STANDBY master's page, the master that leads and a link to its page: the web UI its
/// latch names, else (an older latch with the URL alone) the leader's host on this master's
/// web UI port.
fn leader_item(v: &MasterView) -> String {
    if v.status != RecoveryState::Standby {
        return String::new();
    }
    let Some(latch) = &v.leader else {
        return "<li><strong>ALIVE master:</strong> not known yet (no election seen)</li>".into();
    };
    let mut lines = latch.lines();
    let url = lines.next().unwrap_or_default();
    let webui = match lines.next().filter(|w| w.starts_with("http")) {
        Some(w) => w.trim_end_matches('/').to_string(),
        None => {
            let host = url
                .strip_prefix("spark://")
                .and_then(|a| a.rsplit_once(':'))
                .map_or(url, |(h, _)| h);
            let port = v.webui.rsplit_once(':').map_or("8080", |(_, p)| p);
            format!("http://{host}:{port}")
        }
    };
    format!(
        "<li><strong>ALIVE master:</strong> <a href=\"{webui}/\">{url}</a></li>",
        webui = escape(&webui),
        url = escape(url),
    )
}

/// The master page, laid out like Spark's.
pub fn render_page(v: &MasterView) -> String {
    let cores: u64 = alive(v).map(|w| u64::from(w.cores)).sum();
    let memory: u64 = alive(v).map(|w| w.memory_mb).sum();
    let cores_used: u64 = alive(v).map(|w| u64::from(w.used.0)).sum();
    let memory_used: u64 = alive(v).map(|w| w.used.1).sum();
    let (active, completed): (Vec<&AppView>, Vec<&AppView>) =
        v.apps.iter().partition(|a| is_active(a.state));
    let app_rows = |apps: &[&AppView]| -> String {
        apps.iter()
            .map(|a| {
                let kill = if is_active(a.state) {
                    format!(
                        "<form method=\"post\" action=\"/app/kill/?id={id}\" \
                         style=\"display:inline\"><button type=\"submit\">kill</button></form>",
                        id = escape(&a.id)
                    )
                } else {
                    String::new()
                };
                format!(
                    "<tr><td><a href=\"/app/?appId={id}\">{id}</a> {kill}</td><td>{name}</td>\
                     <td>{cores}</td><td>{mem} MiB</td><td>{submitted}</td><td>{user}</td><td>{state}</td><td>{duration}</td></tr>",
                    id = escape(&a.id),
                    name = escape(&a.name),
                    cores = a.cores,
                    mem = a.executor_memory_mb,
                    submitted = format_date(a.submitted_ms),
                    user = escape(&a.user),
                    state = a.state.name(),
                    duration = format_duration(a.duration_ms),
                )
            })
            .collect()
    };
    let app_table = |apps: &[&AppView]| {
        format!(
            "<table><tr><th>Application ID</th><th>Name</th><th>Cores</th>\
             <th>Memory per Executor</th><th>Submitted Time</th><th>User</th><th>State</th>\
             <th>Duration</th></tr>{}</table>",
            app_rows(apps)
        )
    };
    let rows: String = v
        .workers
        .iter()
        .map(|w| {
            format!(
                "<tr><td><a href=\"{webui}\">{id}</a></td><td>{host}:{port}</td><td>{state}</td>\
                 <td>{cores} ({used_cores} Used)</td><td>{mem} MiB ({used_mem} MiB Used)</td></tr>",
                webui = escape(&w.webui),
                id = escape(&w.id),
                host = escape(&w.host),
                port = w.port,
                state = w.state.name(),
                cores = w.cores,
                used_cores = w.used.0,
                mem = w.memory_mb,
                used_mem = w.used.1,
            )
        })
        .collect();
    let url = escape(&v.url);
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Spark Master at {url}</title>\
         <style>{STYLE}</style></head><body>\
         <h3>Spark Master at {url}</h3><ul class=\"summary\">\
         <li><strong>URL:</strong> {url}</li>\
         <li><strong>Alive Workers:</strong> {alive}</li>\
         <li><strong>Cores in use:</strong> {cores} Total, {cores_used} Used</li>\
         <li><strong>Memory in use:</strong> {memory} MiB Total, {memory_used} MiB Used</li>\
         <li><strong>Applications:</strong> {running} Running, {done} Completed</li>\
         <li><strong>Drivers:</strong> {drivers_running} Running, {drivers_done} Completed</li>\
         <li><strong>Status:</strong> {status}</li>{leader}</ul>\
         <h4>Workers ({count})</h4><table id=\"workers\"><tr><th>Worker Id</th><th>Address</th>\
         <th>State</th><th>Cores</th><th>Memory</th></tr>{rows}</table>\
         <h4>Running Applications ({running})</h4>{active_table}\
         <h4>Completed Applications ({done})</h4>{completed_table}\
         <h4>Drivers ({driver_count})</h4><table><tr><th>Submission ID</th><th>Worker</th>\
         <th>State</th><th>Cores</th><th>Memory</th></tr>{driver_rows}</table>\
         </body></html>",
        drivers_running = v.drivers.iter().filter(|d| !d.state.is_finished()).count(),
        drivers_done = v.drivers.iter().filter(|d| d.state.is_finished()).count(),
        driver_count = v.drivers.len(),
        driver_rows = driver_rows(&v.drivers),
        running = active.len(),
        done = completed.len(),
        active_table = app_table(&active),
        completed_table = app_table(&completed),
        alive = alive(v).count(),
        status = v.status.name(),
        leader = leader_item(v),
        count = v.workers.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_messages::spark::{DriverState, ExecutorState};

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
            used: (1, 256),
        };
        MasterView {
            url: "spark://m:7077".into(),
            webui: "http://m:8090".into(),
            leader: None,
            status: RecoveryState::Alive,
            epoch: 3,
            suspended: false,
            workers: vec![
                worker("w1", WorkerState::Alive),
                worker("w<2>", WorkerState::Dead),
            ],
            apps: vec![AppView {
                id: "app-1-0000".into(),
                name: "pi".into(),
                state: AppState::Running,
                cores: 1,
                executor_memory_mb: 256,
                user: "ann".into(),
                submitted_ms: 1_700_000_000_000,
                duration_ms: 90_000,
                executors: vec![ExecView {
                    id: 0,
                    worker: "w1".into(),
                    worker_webui: "http://10.0.0.1:8081".into(),
                    state: ExecutorState::Running,
                    cores: 1,
                    memory_mb: 256,
                }],
            }],
            drivers: vec![DriverView {
                id: "driver-1-0000".into(),
                state: DriverState::Running,
                worker: Some("w1".into()),
                cores: 1,
                memory_mb: 128,
            }],
        }
    }

    #[test]
    fn json_uses_sparks_field_names_and_counts_alive_workers() {
        let j = to_json(&view());
        assert_eq!(j["status"], "ALIVE");
        assert_eq!(j["epoch"], 3);
        assert_eq!(j["suspended"], false);
        assert_eq!(j["aliveworkers"], 1);
        assert_eq!(
            (j["cores"].clone(), j["memory"].clone()),
            (json!(2), json!(1024))
        );
        assert_eq!(j["workers"][1]["state"], "DEAD");
        assert_eq!(
            (j["coresused"].clone(), j["memoryused"].clone()),
            (json!(1), json!(256))
        );
        assert_eq!(j["activeapps"][0]["id"], "app-1-0000");
        assert_eq!(j["activeapps"][0]["executors"][0]["state"], "RUNNING");
        assert_eq!(j["activedrivers"][0]["id"], "driver-1-0000");
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
    fn the_application_page_lists_executors_with_their_log_links() {
        let v = view();
        let html = render_app_page(&v.apps[0]);
        for part in [
            "<title>Application: pi</title>",
            "<strong>User:</strong> ann",
            "Executor Summary (1)",
            "Removed Executors (0)",
            "<td>0</td><td>w1</td><td>1</td><td>256 MiB</td><td>RUNNING</td>",
            "<a href=\"http://10.0.0.1:8081/logPage/?appId=app-1-0000&amp;executorId=0&amp;\
             logType=stdout\">stdout</a>",
        ] {
            assert!(html.contains(part), "{part} in {html}");
        }
        assert!(render_page(&v).contains("<a href=\"/app/?appId=app-1-0000\">app-1-0000</a>"));
    }

    #[test]
    fn a_standby_page_names_and_links_the_alive_master() {
        let mut v = MasterView {
            status: RecoveryState::Standby,
            ..view()
        };
        assert!(render_page(&v).contains("ALIVE master:</strong> not known yet"));
        v.leader = Some("spark://10.0.0.9:7077".into());
        let html = render_page(&v);
        assert!(
            html.contains("<a href=\"http://10.0.0.9:8090/\">spark://10.0.0.9:7077</a>"),
            "{html}"
        );
        v.leader = Some("spark://10.0.0.9:7077\nhttp://10.0.0.9:8095".into());
        let html = render_page(&v);
        assert!(
            html.contains("<a href=\"http://10.0.0.9:8095/\">spark://10.0.0.9:7077</a>"),
            "the web UI from the latch: {html}"
        );
        v.status = RecoveryState::Alive;
        assert!(!render_page(&v).contains("ALIVE master:"));
    }

    #[test]
    fn the_page_has_sparks_header_and_escapes_names() {
        let html = render_page(&view());
        for part in [
            "Spark Master at spark://m:7077",
            "<strong>Alive Workers:</strong> 1",
            "<strong>Status:</strong> ALIVE",
            "<strong>Applications:</strong> 1 Running, 0 Completed",
            "<td>pi</td>",
            "action=\"/app/kill/?id=app-1-0000\"",
            "w&lt;2&gt;",
            "<th>Submitted Time</th><th>User</th><th>State</th><th>Duration</th>",
            "<td>2023/11/14 22:13:20</td><td>ann</td><td>RUNNING</td><td>1.5 min</td>",
        ] {
            assert!(html.contains(part), "{part}");
        }
    }
}
