//! Worker decommissioning (Spark 3.1+), as part of the master core: a decommissioned worker
//! gets no new executors or drivers; its executors are DECOMMISSIONED for their applications,
//! which get replacements elsewhere, while the processes run on to their end; its drivers
//! finish there. Its record is forgotten (as Spark's master does), so that a next master does
//! not wait for it in recovery; the worker itself remembers and tells every master it
//! registers with.

use super::core::{MasterCore, Output, Peer, WorkerState};
use ensemble_messages::spark::{ExecutorState, FromMaster};

/// Who may use the master's kill-workers endpoint (spark.master.ui.decommission.allow.mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowMode {
    /// Requests from this host only (the default).
    Local,
    /// Nobody.
    Deny,
    /// Anybody who reaches the web UI.
    Allow,
}

impl AllowMode {
    /// Parses Spark's value (LOCAL, DENY or ALLOW, in any case).
    pub fn parse(value: &str) -> Option<AllowMode> {
        match value.trim().to_ascii_uppercase().as_str() {
            "LOCAL" => Some(AllowMode::Local),
            "DENY" => Some(AllowMode::Deny),
            "ALLOW" => Some(AllowMode::Allow),
            _ => None,
        }
    }

    /// Whether a request from `peer` may decommission workers; `local` says whether the peer
    /// is this host (a loopback address or the server's own).
    pub fn allows(self, local: bool) -> bool {
        match self {
            AllowMode::Allow => true,
            AllowMode::Local => local,
            AllowMode::Deny => false,
        }
    }
}

impl MasterCore {
    /// The live workers on any of `hosts` (case-insensitive), by id.
    pub fn workers_on_hosts(&self, hosts: &[String]) -> Vec<String> {
        self.workers
            .values()
            .filter(|w| w.state.is_live())
            .filter(|w| hosts.iter().any(|h| h.eq_ignore_ascii_case(&w.spec.host)))
            .map(|w| w.spec.id.clone())
            .collect()
    }

    /// Decommissions worker `id` (Spark's decommissionWorker); `tell_worker` when the master
    /// decided it, so that the worker knows.
    pub(super) fn decommission(&mut self, id: &str, tell_worker: bool) {
        let Some(w) = self.workers.get_mut(id).filter(|w| w.state.is_live()) else {
            return;
        };
        if w.state == WorkerState::Decommissioned {
            return;
        }
        tracing::info!(worker = %id, "decommissioning worker on {}:{}", w.spec.host, w.spec.port);
        w.state = WorkerState::Decommissioned;
        let mut told = Vec::new();
        for app in self.apps.values_mut() {
            for (n, e) in app.executors.iter_mut() {
                if e.worker == id && !e.state.is_finished() {
                    e.state = ExecutorState::Decommissioned;
                    told.push((app.id.clone(), *n));
                }
            }
            app.refresh_state();
        }
        for (app_id, exec_id) in told {
            if let Some(conn) = self.conn_of(&Peer::App(app_id)) {
                let msg = FromMaster::ExecutorUpdated {
                    exec_id,
                    worker_id: id.to_string(),
                    state: ExecutorState::Decommissioned,
                    exit_code: None,
                    stderr: None,
                };
                self.send(conn, msg);
            }
        }
        if tell_worker {
            if let Some(conn) = self.conn_of(&Peer::Worker(id.to_string())) {
                let epoch = self.epoch;
                self.send(conn, FromMaster::DecommissionWorker { epoch });
            }
        }
        self.store(Output::ForgetWorker(id.to_string()));
        self.schedule();
    }
}

#[cfg(test)]
#[path = "decommission_tests.rs"]
mod tests;
