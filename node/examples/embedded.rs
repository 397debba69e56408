//! An actix-web application that runs an ensemble node, a Spark-style master and a worker of
//! that master inside its own actix `System`.
//!
//! ```sh
//! cargo run --release -p ensemble-node --example embedded -- [--http 127.0.0.1:8088] \
//!     [--client-port 2191] [--data-dir DIR] [--config FILE --id N]
//! ```
//!
//! It starts a single-server ensemble (ZooKeeper clients may connect to `--client-port`; its
//! data goes to a temporary directory unless `--data-dir` names one), or the server `--id` of
//! a native `--config` file, prints
//! `http://ADDR` once it serves, and answers:
//! - `GET /status`: the node's mode (`standalone`, `leader`, `follower`, `looking`), whether it
//!   serves, its last applied zxid and znode count, as JSON;
//! - `PUT /znodes/PATH` (body = data): creates or sets the znode through the node's write API;
//! - `GET /znodes/PATH`: its data (404 when there is none);
//! - `GET /events`: the node's role changes seen so far;
//! - `GET /master`: the master's URL, status (`ALIVE`, `STANDBY`, ...) and workers, as JSON.
//!
//! The master and its worker listen on the `--http` host, on free ports. Nothing the node,
//! the master or the worker does stops this application: a node failure arrives as an event,
//! a master's or worker's as the result of its `failed()` future.

use actix_web::{web, App, HttpResponse, HttpServer};
use ensemble_actors::data_tree::{AclEntry, CreateMode, OpResult, TreeOp, TreeTxn};
use ensemble_messages::zk::{SessionId, ZkError};
use ensemble_messages::ServerState;
use ensemble_node::spark::{Master, MasterOptions, Worker, WorkerOptions};
use ensemble_node::{Node, NodeEvent};
use std::sync::{Arc, Mutex};

/// What the routes share.
struct Shared {
    node: Node,
    master: Master,
    events: Mutex<Vec<String>>,
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse().map_err(std::io::Error::other)?;
    let config = match &args.config {
        Some((file, id)) => ensemble_config::load_toml(file, *id),
        None => ensemble_config::load_toml_str(&args.config_text(), 1),
    }
    .map_err(other)?;
    let node = Node::start(config).await.map_err(other)?;
    let host = args.http.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
    let master = Master::start(MasterOptions {
        host: host.to_string(),
        port: 0,
        webui_port: 0,
        properties: Default::default(),
    })
    .await
    .map_err(other)?;
    let work = tempfile::tempdir()?;
    let worker = Worker::start(WorkerOptions {
        masters: master.url().to_string(),
        host: host.to_string(),
        cores: 1,
        memory_mb: 256,
        webui_port: 0,
        work_dir: work.path().to_path_buf(),
        properties: Default::default(),
    })
    .await
    .map_err(other)?;
    let shared = web::Data::new(Shared {
        node,
        master,
        events: Mutex::default(),
    });
    actix_web::rt::spawn(record_events(shared.clone().into_inner()));
    actix_web::rt::spawn(async move {
        let why = worker.failed().await;
        tracing::error!("the embedded worker stopped: {why}; the application goes on");
    });
    let server = HttpServer::new({
        let shared = shared.clone();
        move || {
            App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/status", web::get().to(status))
                .route("/events", web::get().to(events))
                .route("/master", web::get().to(master_view))
                .route("/znodes/{path:.*}", web::get().to(read))
                .route("/znodes/{path:.*}", web::put().to(write))
        }
    })
    .workers(1)
    .bind(&args.http)?;
    for addr in server.addrs() {
        println!("http://{addr}");
    }
    server.run().await
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Keeps the node's events for `/events`, and says so when the node fails.
async fn record_events(shared: Arc<Shared>) {
    let mut rx = shared.node.subscribe();
    while let Ok(ev) = rx.recv().await {
        if let NodeEvent::Failed(why) = &ev {
            tracing::error!("the embedded node stopped: {why}; the application goes on");
        }
        if let Ok(mut list) = shared.events.lock() {
            list.push(format!("{ev:?}"));
        }
    }
}

async fn status(shared: web::Data<Shared>) -> HttpResponse {
    match shared.node.status().await {
        Ok(s) => {
            let mode = match (s.standalone, s.peer.state) {
                (true, _) => "standalone",
                (false, ServerState::Leading) => "leader",
                (false, ServerState::Following) => "follower",
                (false, _) => "looking",
            };
            HttpResponse::Ok().json(serde_json::json!({
                "mode": mode,
                "serving": s.peer.serving,
                "zxid": format!("{:#x}", s.peer.applied.0),
                "znodes": s.node_count,
                "client_port": shared.node.client_addr().port(),
            }))
        }
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

async fn master_view(shared: web::Data<Shared>) -> HttpResponse {
    match shared.master.view().await {
        Ok(v) => HttpResponse::Ok().json(serde_json::json!({
            "url": v.url,
            "status": v.status.name(),
            "workers": v.workers.iter().map(|w| serde_json::json!({
                "id": w.id,
                "state": w.state.name(),
                "cores": w.cores,
                "memory_mb": w.memory_mb,
            })).collect::<Vec<_>>(),
        })),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

async fn events(shared: web::Data<Shared>) -> HttpResponse {
    let list = shared.events.lock().map(|l| l.clone()).unwrap_or_default();
    HttpResponse::Ok().json(list)
}

async fn read(shared: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    match shared.node.read(&format!("/{path}")).await {
        Ok(Some(data)) => HttpResponse::Ok().body(data),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

async fn write(
    shared: web::Data<Shared>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let path = format!("/{path}");
    let create = TreeOp::Create {
        path: path.clone(),
        data: body.to_vec(),
        acl: AclEntry::open(),
        mode: CreateMode::Persistent,
    };
    let set = TreeOp::SetData {
        path,
        data: body.to_vec(),
        version: -1,
    };
    let mut outcome = submit(&shared.node, create).await;
    if matches!(outcome, Ok((_, OpResult::Error(ZkError::NodeExists)))) {
        outcome = submit(&shared.node, set).await;
    }
    match outcome {
        Ok((zxid, OpResult::Error(code))) => HttpResponse::Conflict()
            .json(serde_json::json!({ "zxid": format!("{:#x}", zxid.0), "error": code.code() })),
        Ok((zxid, _)) => {
            HttpResponse::Ok().json(serde_json::json!({ "zxid": format!("{:#x}", zxid.0) }))
        }
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

async fn submit(
    node: &Node,
    op: TreeOp,
) -> Result<(ensemble_messages::Zxid, OpResult), ensemble_node::NodeError> {
    let time_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    node.write(TreeTxn {
        session_id: SessionId::NONE,
        time_ms,
        auth: Vec::new(),
        op,
    })
    .await
}

/// Command-line options.
struct Args {
    http: String,
    client_port: u16,
    data_dir: std::path::PathBuf,
    config: Option<(std::path::PathBuf, ensemble_messages::Sid)>,
    /// Keeps a default data dir alive until exit.
    _temp: Option<tempfile::TempDir>,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let mut http = "127.0.0.1:8088".to_string();
        let mut client_port = 2191;
        let mut data_dir = None;
        let (mut config, mut id) = (None, 1);
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--http" => http = value,
                "--client-port" => {
                    client_port = value.parse().map_err(|_| format!("bad port {value}"))?
                }
                "--data-dir" => data_dir = Some(std::path::PathBuf::from(value)),
                "--config" => config = Some(std::path::PathBuf::from(value)),
                "--id" => id = value.parse().map_err(|_| format!("bad id {value}"))?,
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        let (data_dir, temp) = match data_dir {
            Some(d) => (d, None),
            None if config.is_some() => (std::path::PathBuf::new(), None),
            None => {
                let t = tempfile::tempdir().map_err(|e| e.to_string())?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        Ok(Args {
            http,
            client_port,
            data_dir,
            config: config.map(|c| (c, id)),
            _temp: temp,
        })
    }

    /// A one-server native config.
    fn config_text(&self) -> String {
        format!(
            "[storage]\ndata_dir = {:?}\n\n[[servers]]\nid = 1\nhost = \"127.0.0.1\"\n\
             peer_port = 1\nclient_port = {}\n",
            self.data_dir.display().to_string(),
            self.client_port
        )
    }
}
