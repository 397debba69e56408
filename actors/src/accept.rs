//! Accepted connections as a stream, for the listener actors.

use futures::Stream;
use tokio::net::{TcpListener, TcpStream};

/// A connection accepted by a listener.
pub struct Accepted(pub TcpStream);

/// A tokio listener on a copy of `socket`, so that the socket outlives the actor that accepts
/// on it: a restarted listener actor accepts on the same socket again.
pub fn listen(socket: &std::net::TcpListener) -> std::io::Result<TcpListener> {
    socket.try_clone().and_then(TcpListener::from_std)
}

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
