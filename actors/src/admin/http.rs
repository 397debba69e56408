//! The AdminServer's HTTP side: `GET <commandURL>` lists the commands, `GET <commandURL>/<name>`
//! runs one and answers its JSON.

use super::commands::{find, run, COMMANDS};
use crate::metrics::http::{server, Observed};
use crate::pipeline::ResetConnectionStats;
use actix_web::{web, HttpRequest, HttpResponse};

/// What the handlers share.
#[derive(Clone)]
struct Admin {
    observed: Observed,
    command_url: String,
}

/// Serves the commands of `observed` under `command_url` on `listener`.
pub fn serve(
    listener: std::net::TcpListener,
    observed: Observed,
    command_url: &str,
) -> std::io::Result<actix_web::dev::Server> {
    let base = format!("/{}", command_url.trim_matches('/'));
    let admin = Admin {
        observed,
        command_url: base.clone(),
    };
    server(listener, move |cfg| {
        cfg.app_data(web::Data::new(admin.clone()))
            .route(&base, web::get().to(links))
            .route(&format!("{base}/"), web::get().to(links))
            .route(&format!("{base}/{{name}}"), web::get().to(command));
    })
}

/// One link per command, as ZooKeeper's AdminServer lists them.
async fn links(admin: web::Data<Admin>) -> HttpResponse {
    let body: String = COMMANDS
        .iter()
        .map(|c| {
            format!(
                "<a href=\"{0}/{1}\">{1}</a>\n<br/>\n",
                admin.command_url, c.name
            )
        })
        .collect();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body)
}

async fn command(admin: web::Data<Admin>, req: HttpRequest) -> HttpResponse {
    let name = req.match_info().get("name").unwrap_or_default().to_string();
    let observed = &admin.observed;
    let Some(status) = observed.status().await else {
        return HttpResponse::ServiceUnavailable().body("the server is restarting");
    };
    let report = observed.report().await;
    if find(&name).is_some_and(|c| c.name == "connection_stat_reset") {
        let _ = observed.server.pipeline.send(ResetConnectionStats).await;
    }
    let body = run(&name, &observed.info(&status, report.as_ref()));
    HttpResponse::Ok().json(body)
}
