//! The worker's web UI: a page and `/json` with Spark's field names.

use super::actor::{GetWorkerStatus, WorkerActor, WorkerStatus};
use super::logs::{self, LogChunk, LogQuery};
use crate::spark_ui::{escape, frame, log_links, table};
use actix::Addr;
use actix_web::{web, App, HttpResponse, HttpServer};
use ensemble_messages::spark::{DriverRef, ExecutorRef};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Serves the UI of `worker` on `listener` (bound by the caller before it starts any actor, so
/// that a taken port ends the process cleanly), with the logs under `work_dir`; the server runs
/// on the current actix system.
pub fn serve(
    worker: Addr<WorkerActor>,
    work_dir: PathBuf,
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(worker.clone()))
            .app_data(web::Data::new(WorkDir(work_dir.clone())))
            .route("/", web::get().to(page))
            .route("/logPage", web::get().to(log_page))
            .route("/logPage/", web::get().to(log_page))
            .route("/log", web::get().to(log_text))
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

/// Where the worker's processes run and write their logs.
struct WorkDir(PathBuf);

/// Reads the log a query names, off the server's thread.
async fn read_log(dir: &WorkDir, q: LogQuery) -> Result<(LogChunk, String), HttpResponse> {
    let name = match (&q.app_id, &q.executor_id, &q.driver_id) {
        (Some(app), Some(exec), _) => format!("{app}/{exec}"),
        (_, _, Some(driver)) => driver.clone(),
        _ => String::new(),
    };
    let name = format!(
        "{} log page for {name}",
        q.log_type.as_deref().unwrap_or("")
    );
    let root = dir.0.clone();
    match web::block(move || logs::read(&root, &q)).await {
        Ok(Ok(chunk)) => Ok((chunk, name)),
        Ok(Err(why)) => Err(HttpResponse::BadRequest().body(format!("Error: {why}"))),
        Err(_) => Err(HttpResponse::ServiceUnavailable().body("the worker is busy")),
    }
}

/// Spark's `/log`: the text of a range of a log.
async fn log_text(dir: web::Data<WorkDir>, q: web::Query<LogQuery>) -> HttpResponse {
    match read_log(&dir, q.into_inner()).await {
        Ok((chunk, _)) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(chunk.text),
        Err(refused) => refused,
    }
}

/// Spark's `/logPage/`: a range of a log on a page, with where it lies in the file.
async fn log_page(dir: web::Data<WorkDir>, q: web::Query<LogQuery>) -> HttpResponse {
    match read_log(&dir, q.into_inner()).await {
        Ok((chunk, title)) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(render_log(&escape(&title), &chunk)),
        Err(refused) => refused,
    }
}

/// The page of a log range.
pub fn render_log(title: &str, c: &LogChunk) -> String {
    let body = format!(
        "<p><a href=\"/\">Back to Worker</a></p><p>Showing {len} Bytes: {start} - {end} of \
         {total}</p><pre>{text}</pre>",
        len = c.end - c.start,
        start = c.start,
        end = c.end,
        total = c.total,
        text = escape(&c.text),
    );
    frame(title, &body)
}

/// Cores and memory (MiB) its running executors and drivers hold, as Spark's worker counts
/// them.
pub fn used(s: &WorkerStatus) -> (u32, u64) {
    let executors = s.executors.iter().map(|e| (e.cores, e.memory_mb));
    let drivers = s.drivers.iter().map(|d| (d.cores, d.memory_mb));
    executors
        .chain(drivers)
        .fold((0, 0), |(c, m), (dc, dm)| (c + dc, m + dm))
}

/// ALIVE, or DECOMMISSIONED.
fn state(s: &WorkerStatus) -> &'static str {
    if s.decommissioned {
        "DECOMMISSIONED"
    } else {
        "ALIVE"
    }
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
    let (cores_used, memory_used) = used(s);
    json!({
        "id": s.spec.id,
        "masterurl": s.master.clone().unwrap_or_default(),
        // An ensemble addition: Spark's worker page has no state.
        "state": state(s),
        "cores": s.spec.cores,
        "coresused": cores_used,
        "memory": s.spec.memory_mb,
        "memoryused": memory_used,
        "executors": executors,
        "conflicts": s.conflicts,
        "finishedexecutors": [],
        "drivers": s.drivers.iter().map(|d| d.driver_id.as_str()).collect::<Vec<_>>(),
        "finisheddrivers": [],
    })
}

/// Spark's WorkerSource gauges: executors, coresUsed, coresFree, memUsed_MB, memFree_MB.
pub fn prometheus_text(s: &WorkerStatus) -> String {
    let (cores_used, mem_used) = used(s);
    let cores_used = u64::from(cores_used);
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
    match worker.send(GetWorkerStatus).await {
        Ok(s) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(render_page(&s)),
        Err(_) => HttpResponse::ServiceUnavailable().body("the worker is restarting"),
    }
}

/// One row of the Running Executors table, with Spark's columns.
fn executor_row(e: &ExecutorRef) -> String {
    format!(
        "<tr><td>{exec}</td><td>{cores}</td><td>RUNNING</td><td>{mem} MiB</td>\
         <td><ul class=\"unstyled\"><li><strong>ID:</strong> {app}</li></ul></td>\
         <td>{logs}</td></tr>",
        logs = log_links("", &e.app_id, e.exec_id),
        exec = e.exec_id,
        cores = e.cores,
        mem = e.memory_mb,
        app = escape(&e.app_id),
    )
}

/// One row of the Running Drivers table.
fn driver_row(d: &DriverRef) -> String {
    format!(
        "<tr><td>{id}</td><td>RUNNING</td><td>{cores}</td><td>{mem} MiB</td><td>{logs}</td></tr>",
        logs = ["stdout", "stderr"]
            .iter()
            .map(|t| format!(
                "<a href=\"logPage/?driverId={id}&amp;logType={t}\">{t}</a>",
                id = escape(&d.driver_id)
            ))
            .collect::<Vec<_>>()
            .join(" "),
        id = escape(&d.driver_id),
        cores = d.cores,
        mem = d.memory_mb,
    )
}

/// The worker page, laid out like Spark's: its figures, then its executors and drivers.
pub fn render_page(s: &WorkerStatus) -> String {
    let (cores_used, memory_used) = used(s);
    let master = s.master.as_deref().unwrap_or("(not registered)");
    let executors: String = s.executors.iter().map(executor_row).collect();
    let drivers = if s.drivers.is_empty() {
        String::new()
    } else {
        let rows: String = s.drivers.iter().map(driver_row).collect();
        format!(
            "<h4>Running Drivers ({})</h4>{}",
            s.drivers.len(),
            table(
                "drivers",
                &["DriverID", "State", "Cores", "Memory", "Logs"],
                &rows
            )
        )
    };
    let body = format!(
        "<ul class=\"summary\"><li><strong>ID:</strong> {id}</li>\
         <li><strong>Master URL:</strong> {master}</li>\
         <li><strong>State:</strong> {state}</li>\
         <li><strong>Cores:</strong> {cores} ({cores_used} Used)</li>\
         <li><strong>Memory:</strong> {mem} MiB ({memory_used} MiB Used)</li></ul>\
         <h4>Running Executors ({running})</h4>{table}{drivers}",
        id = escape(&s.spec.id),
        master = escape(master),
        state = state(s),
        cores = s.spec.cores,
        mem = s.spec.memory_mb,
        running = s.executors.len(),
        table = table("executors", EXECUTOR_HEADERS, &executors),
    );
    let title = format!("Spark Worker at {}:{}", escape(&s.spec.host), s.spec.port);
    frame(&title, &body)
}

/// The columns of Spark's executors table on the worker page.
const EXECUTOR_HEADERS: &[&str] = &[
    "ExecutorID",
    "Cores",
    "State",
    "Memory",
    "Job Details",
    "Logs",
];

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_messages::spark::WorkerSpec;

    fn status() -> WorkerStatus {
        WorkerStatus {
            spec: WorkerSpec {
                id: "worker-1".into(),
                host: "10.0.0.2".into(),
                port: 4000,
                cores: 4,
                memory_mb: 2048,
                webui: "http://10.0.0.2:8081".into(),
            },
            executors: vec![ExecutorRef {
                app_id: "app-<1>".into(),
                exec_id: 3,
                cores: 2,
                memory_mb: 512,
            }],
            drivers: vec![DriverRef {
                driver_id: "driver-1".into(),
                cores: 1,
                memory_mb: 256,
            }],
            conflicts: vec![],
            master: Some("spark://m:7077".into()),
            decommissioned: false,
        }
    }

    #[test]
    fn a_decommissioned_worker_says_so_on_its_page_and_json() {
        let mut s = status();
        assert_eq!(to_json(&s)["state"], "ALIVE");
        s.decommissioned = true;
        assert_eq!(to_json(&s)["state"], "DECOMMISSIONED");
        assert!(render_page(&s).contains("<strong>State:</strong> DECOMMISSIONED"));
    }

    #[test]
    fn the_figures_count_executors_and_drivers_on_the_page_and_in_json() {
        let s = status();
        let j = to_json(&s);
        assert_eq!(
            (j["coresused"].clone(), j["memoryused"].clone()),
            (json!(3), json!(768))
        );
        let html = render_page(&s);
        for part in [
            "<strong>Cores:</strong> 4 (3 Used)",
            "<strong>Memory:</strong> 2048 MiB (768 MiB Used)",
            "Running Executors (1)",
            "<td>3</td><td>2</td><td>RUNNING</td><td>512 MiB</td>",
            "app-&lt;1&gt;",
            "Running Drivers (1)",
            "<a href=\"/logPage/?appId=app-&lt;1&gt;&amp;executorId=3&amp;logType=stderr\">stderr</a>",
            "<a href=\"logPage/?driverId=driver-1&amp;logType=stdout\">stdout</a>",
        ] {
            assert!(html.contains(part), "{part} in {html}");
        }
    }
}
