//! Drives a [`ClientService`] in unit tests as the request pipeline actor does: steps it, carries
//! out its frames through [`ClientSinks`] and keeps what it asks to propose.

use super::protocol::ClientConnect;
use super::service::{ClientService, ServiceInput, StepClock};
use super::sinks::ClientSinks;
use crate::data_tree::{DataTree, TreeTxn};
use std::time::Instant;

/// The actor's side of a service under test.
#[derive(Default)]
pub(super) struct TestHost {
    /// The connections' sinks.
    pub(super) sinks: ClientSinks,
    /// Txns proposed and not yet committed, as `(request_id, txn)`.
    pub(super) submitted: Vec<(u64, TreeTxn)>,
    /// Handshakes so far; each new session's password derives from it.
    connects: u8,
}

/// A fixed wall-clock time for tests.
pub(super) fn test_clock() -> StepClock {
    StepClock {
        at: Instant::now(),
        wall_ms: 1_000,
    }
}

impl TestHost {
    /// Steps `service` on `input` and carries out its outputs.
    pub(super) fn step(
        &mut self,
        service: &mut ClientService,
        input: ServiceInput,
        tree: &DataTree,
    ) {
        let outs = service.step(input, tree, test_clock());
        self.submitted.extend(self.sinks.deliver(outs));
    }

    /// A connection's handshake; a new session's password differs from every other's.
    pub(super) fn connect(
        &mut self,
        service: &mut ClientService,
        c: ClientConnect,
        tree: &DataTree,
    ) {
        let (hello, sink) = c.split();
        self.sinks.open(hello.conn, sink);
        self.connects += 1;
        let password = [self.connects ^ 0x5a; 16];
        self.step(service, ServiceInput::Connect { hello, password }, tree);
    }
}
