//! The master's REST submission gateway (Spark's `spark.master.rest.enabled`, port 6066):
//! `spark-submit --deploy-mode cluster`, `--status` and `--kill` against a master speak it.
//! Bodies are read up to [`MAX_BODY`] bytes (a larger declared or sent body is refused before
//! it is read), decoded strictly, and every failure is an `ErrorResponse`.

use super::actor::SubmitPending;
use super::actor::{not_alive, MasterActor, RestDone, RestKill, RestStatus, RestSubmit};
use super::core::RecoveryState;
use super::rest_protocol::{
    create_response, decode_create, driver_desc, error, kill_response, route, status_response,
    too_large, CreateAnswer, CreateSubmission, Reply, Request, MAX_BODY,
};
use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use ensemble_messages::spark::FromMaster;
use futures::StreamExt;
use std::time::Duration;

/// How long a submission waits for its record to be stored (Spark's ask timeout is longer;
/// the ensemble answers in milliseconds or not at all).
const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the gateway of `master` on `listener` (bound by the caller); the server runs on the
/// current actix system.
pub fn serve(
    master: Addr<MasterActor>,
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(master.clone()))
            .default_service(web::to(handle))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    master: web::Data<Addr<MasterActor>>,
) -> HttpResponse {
    let reply = match route(req.method().as_str(), req.path()) {
        Request::Refused(reply) => reply,
        Request::Status(id) => match master.send(RestStatus(id.clone())).await {
            Ok(answer) => status_response(&id, &answer),
            Err(_) => restarting(),
        },
        Request::Kill(id) => match master.send(RestKill(id.clone())).await {
            Ok(answer) => kill_response(&id, &answer),
            Err(_) => restarting(),
        },
        Request::Create => match read_body(&req, payload).await {
            Ok(body) => create(&body, &master).await,
            Err(reply) => reply,
        },
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type("application/json;charset=utf-8")
        .body(reply.text())
}

fn restarting() -> Reply {
    error(503, "the master is restarting; try again")
}

/// The body, at most [`MAX_BODY`] bytes: a larger Content-Length is refused unread, and
/// reading stops as soon as the sent bytes pass the limit.
async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<Vec<u8>, Reply> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| error(400, &format!("Malformed request: {e}")))?;
        if body.len().saturating_add(chunk.len()) > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn create(body: &[u8], master: &Addr<MasterActor>) -> Reply {
    let submission = match decode_create(body) {
        Ok(s) => s,
        Err(reply) => return reply,
    };
    let desc = match driver_desc(&submission) {
        Ok(d) => d,
        Err(reply) => return reply,
    };
    match master.send(RestSubmit(desc)).await {
        Ok(SubmitPending::Now(answer)) => answered(&answer, &submission),
        Ok(SubmitPending::Later { conn, mut reply }) => {
            let got = tokio::time::timeout(ASK_TIMEOUT, reply.recv()).await;
            master.do_send(RestDone(conn));
            let answer = match got {
                Ok(Some(FromMaster::SubmitDriverResponse { driver_id, message })) => CreateAnswer {
                    success: driver_id.is_some(),
                    driver_id,
                    message,
                },
                Ok(Some(FromMaster::MasterInStandby { .. })) => CreateAnswer {
                    success: false,
                    driver_id: None,
                    message: not_alive(RecoveryState::Standby, "accept driver submissions"),
                },
                _ => {
                    return error(
                        503,
                        "the driver's record was not stored in time (the ensemble is slow or \
                         unreachable); its status may still show it",
                    )
                }
            };
            answered(&answer, &submission)
        }
        Err(_) => restarting(),
    }
}

fn answered(answer: &CreateAnswer, submission: &CreateSubmission) -> Reply {
    create_response(answer, &submission.unknown_fields)
}
