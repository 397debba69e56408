//! The host's half of the request pipeline: the open connections' sinks, and carrying out
//! what [`ClientService::step`](super::ClientService::step) returns.

use super::protocol::ClientSink;
use super::service::ServiceOutput;
use crate::data_tree::TreeTxn;
use ensemble_messages::zk::ConnectionId;
use std::collections::HashMap;

/// Where each open connection's frames go.
#[derive(Default)]
pub struct ClientSinks {
    sinks: HashMap<ConnectionId, ClientSink>,
}

impl ClientSinks {
    /// A connection opened: its frames go to `sink`.
    pub fn open(&mut self, conn: ConnectionId, sink: ClientSink) {
        self.sinks.insert(conn, sink);
    }

    /// The connection closed.
    pub fn gone(&mut self, conn: ConnectionId) {
        self.sinks.remove(&conn);
    }

    /// Closes every connection (the pipeline restarted without their state).
    pub fn close_all(&mut self) {
        for (_, s) in self.sinks.drain() {
            s.close();
        }
    }

    /// Carries out the frames, closes and session shares of `outs`, in order, and returns the
    /// txns to propose, in order, as `(request_id, txn)`.
    pub fn deliver(&mut self, outs: Vec<ServiceOutput>) -> Vec<(u64, TreeTxn)> {
        let mut proposals = Vec::new();
        for out in outs {
            match out {
                ServiceOutput::Push { conn, frame } => {
                    if let Some(s) = self.sinks.get(&conn) {
                        s.push(frame);
                    }
                }
                ServiceOutput::Reply { conn, frame } => {
                    if let Some(s) = self.sinks.get(&conn) {
                        s.reply(frame);
                    }
                }
                ServiceOutput::Close(conn) => {
                    if let Some(s) = self.sinks.remove(&conn) {
                        s.close();
                    }
                }
                ServiceOutput::ShareSession {
                    conn,
                    session,
                    auth,
                } => {
                    if let Some(s) = self.sinks.get(&conn) {
                        s.share().enable(session, &auth);
                    }
                }
                ServiceOutput::ShareAuth { conn, auth } => {
                    if let Some(s) = self.sinks.get(&conn) {
                        s.share().set_auth(&auth);
                    }
                }
                ServiceOutput::Propose { request_id, txn } => proposals.push((request_id, txn)),
            }
        }
        proposals
    }

    /// The reads `conn`'s thread answered itself since the last reset.
    pub fn answered(&self, conn: ConnectionId) -> u64 {
        self.sinks.get(&conn).map_or(0, |s| s.share().answered())
    }

    /// Zeroes the counts of reads the connections' threads answered (`crst`).
    pub fn reset_counters(&self) {
        for s in self.sinks.values() {
            s.share().reset();
        }
    }

    /// The connections whose threads answered reads since the last call.
    pub fn take_touched(&self) -> Vec<ConnectionId> {
        self.sinks
            .iter()
            .filter(|(_, s)| s.share().take_touched())
            .map(|(conn, _)| *conn)
            .collect()
    }
}
