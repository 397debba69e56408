//! Accepted connections as a stream, for the listener actors.

use futures::Stream;
use tokio::net::{TcpListener, TcpStream};

/// A connection accepted by a listener.
pub struct Accepted(pub TcpStream);

/// Every connection `listener` accepts; a failed accept is logged (with `what` names the port)
/// and the listener goes on.
pub fn accepted(listener: TcpListener, what: &'static str) -> impl Stream<Item = Accepted> {
    futures::stream::unfold(listener, move |l| async move {
        loop {
            match l.accept().await {
                Ok((s, _)) => return Some((Accepted(s), l)),
                Err(e) => tracing::warn!("{what} accept failed: {e}"),
            }
        }
    })
}
