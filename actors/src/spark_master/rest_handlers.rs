//! The master actor's side of the REST submission gateway (submit, status and kill of
//! drivers, answered from the core as Spark's master answers RequestSubmitDriver,
//! RequestDriverStatus and RequestKillDriver) and of the kill-workers endpoint
//! (DecommissionWorkersOnHosts).

use super::MasterActor;
use crate::spark_master::core::{ConnId, Input, RecoveryState};
use crate::spark_master::rest_protocol::NOT_ALIVE_PREFIX;
use crate::spark_master::rest_protocol::{CreateAnswer, KillAnswer, StatusAnswer};
use actix::prelude::*;
use ensemble_messages::spark::{DriverDesc, FromMaster, ToMaster};
use tokio::sync::mpsc;

/// What a master not ALIVE says it cannot do (`what`), with Spark's prefix, which tells
/// clients to ask the next master.
pub fn not_alive(state: RecoveryState, what: &str) -> String {
    format!(
        "{NOT_ALIVE_PREFIX}: {}. Can only {what} in ALIVE state.",
        state.name()
    )
}

/// Why a master that lost its ensemble connection acts on nothing.
const SUSPENDED: &str = "the master lost its ensemble connection and acts on nothing until it \
                         is back; try again";

/// Submits a driver through the REST gateway.
#[derive(Message)]
#[rtype(result = "SubmitPending")]
pub struct RestSubmit(pub DriverDesc);

/// The answer to [`RestSubmit`]: now, or once the driver's record is stored.
pub enum SubmitPending {
    /// Refused at once.
    Now(CreateAnswer),
    /// Submitted: the core's answer comes on `reply`; send [`RestDone`] for `conn` after.
    Later {
        /// The connection the submission was made on.
        conn: ConnId,
        /// Where the core's answer comes.
        reply: mpsc::UnboundedReceiver<FromMaster>,
    },
}

impl Handler<RestSubmit> for MasterActor {
    type Result = MessageResult<RestSubmit>;

    fn handle(&mut self, RestSubmit(desc): RestSubmit, _: &mut Context<Self>) -> Self::Result {
        let state = self.core.state();
        let refused = |message: String| {
            MessageResult(SubmitPending::Now(CreateAnswer {
                success: false,
                driver_id: None,
                message,
            }))
        };
        if state != RecoveryState::Alive {
            return refused(not_alive(state, "accept driver submissions"));
        }
        if self.core.suspended() {
            return refused(SUSPENDED.into());
        }
        self.next_conn += 1;
        let conn = self.next_conn;
        let (sink, reply) = mpsc::unbounded_channel();
        self.conns.insert(conn, sink);
        tracing::info!(
            "driver submitted through the REST gateway: {:?}",
            desc.command
        );
        self.step(Input::Message {
            conn,
            msg: ToMaster::RequestSubmitDriver(desc),
        });
        MessageResult(SubmitPending::Later { conn, reply })
    }
}

/// A REST submission got its answer (or gave up): its connection closes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RestDone(pub ConnId);

impl Handler<RestDone> for MasterActor {
    type Result = ();

    fn handle(&mut self, RestDone(conn): RestDone, _: &mut Context<Self>) {
        self.conns.remove(&conn);
        self.step(Input::Disconnected(conn));
    }
}

/// Asks for a driver's status.
#[derive(Message)]
#[rtype(result = "StatusAnswer")]
pub struct RestStatus(pub String);

impl Handler<RestStatus> for MasterActor {
    type Result = MessageResult<RestStatus>;

    fn handle(&mut self, RestStatus(id): RestStatus, _: &mut Context<Self>) -> Self::Result {
        let state = self.core.state();
        let mut answer = StatusAnswer {
            found: false,
            state: None,
            worker_id: None,
            worker_host_port: None,
            message: None,
        };
        if state != RecoveryState::Alive {
            answer.message = Some(not_alive(state, "request driver status"));
            return MessageResult(answer);
        }
        if let Some(d) = self.core.drivers().find(|d| d.id == id) {
            answer.found = true;
            answer.state = Some(d.state.name().to_string());
            answer.worker_id = d.worker.clone();
            answer.worker_host_port = d.worker.as_ref().and_then(|w| {
                self.core
                    .workers()
                    .find(|i| i.spec.id == *w)
                    .map(|i| format!("{}:{}", i.spec.host, i.spec.port))
            });
        }
        MessageResult(answer)
    }
}

/// Decommissions the workers on these hosts (the kill-workers endpoint); answers how many,
/// 0 on a STANDBY master (as Spark's).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DecommissionHosts(pub Vec<String>);

impl Handler<DecommissionHosts> for MasterActor {
    type Result = usize;

    fn handle(
        &mut self,
        DecommissionHosts(hosts): DecommissionHosts,
        _: &mut Context<Self>,
    ) -> usize {
        if self.core.state() == RecoveryState::Standby {
            return 0;
        }
        let ids = self.core.workers_on_hosts(&hosts);
        tracing::info!("decommissioning the workers on {hosts:?}: {ids:?}");
        let count = ids.len();
        self.step(Input::DecommissionWorkers(ids));
        count
    }
}

/// Kills a driver.
#[derive(Message)]
#[rtype(result = "KillAnswer")]
pub struct RestKill(pub String);

impl Handler<RestKill> for MasterActor {
    type Result = MessageResult<RestKill>;

    fn handle(&mut self, RestKill(id): RestKill, _: &mut Context<Self>) -> Self::Result {
        let state = self.core.state();
        let answer =
            |success: bool, message: String| MessageResult(KillAnswer { success, message });
        if state != RecoveryState::Alive {
            return answer(false, not_alive(state, "kill drivers"));
        }
        if self.core.suspended() {
            return answer(false, SUSPENDED.into());
        }
        let running = self
            .core
            .drivers()
            .any(|d| d.id == id && !d.state.is_finished());
        if !running {
            return answer(
                false,
                format!("Driver {id} has already finished or does not exist"),
            );
        }
        tracing::info!(driver = %id, "killing driver on a REST request");
        self.step(Input::KillDriver(id.clone()));
        answer(true, format!("Kill request for {id} submitted"))
    }
}
