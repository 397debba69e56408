//! A userspace TCP proxy for one peer link, switchable at run time between passing bytes,
//! cutting the link, blackholing it (each direction on its own) and delaying it.
//!
//! A blackholed direction is read no further: nothing arrives and nothing is lost, and when
//! it heals the stream resumes intact, as TCP over a network that silently dropped every
//! packet for a while would. A cut closes every connection and closes new ones as soon as
//! they are accepted, as a refused or reset connection would.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What happens to the bytes of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Forwarded at once.
    Pass,
    /// Held back: not read, not forwarded, until the flow changes.
    Blackhole,
    /// Forwarded this long after they were read.
    Delay(Duration),
}

/// The state of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkFault {
    /// Close every connection and every new one.
    pub cut: bool,
    /// Bytes from the dialing server to the listening one.
    pub forward: Flow,
    /// Bytes from the listening server back to the dialing one.
    pub backward: Flow,
}

impl LinkFault {
    /// A healthy link.
    pub const PASS: LinkFault = LinkFault {
        cut: false,
        forward: Flow::Pass,
        backward: Flow::Pass,
    };
    /// A cut link.
    pub const CUT: LinkFault = LinkFault {
        cut: true,
        forward: Flow::Pass,
        backward: Flow::Pass,
    };

    /// Both directions with the same flow.
    pub fn both(flow: Flow) -> LinkFault {
        LinkFault {
            cut: false,
            forward: flow,
            backward: flow,
        }
    }

    fn flow(&self, forward: bool) -> Flow {
        if forward {
            self.forward
        } else {
            self.backward
        }
    }
}

/// A proxy listening on one address and forwarding to another; stops when dropped.
pub struct Proxy {
    listen: SocketAddr,
    state: watch::Sender<LinkFault>,
    accept: JoinHandle<()>,
}

/// How long a connection to the target may take before the accepted one is closed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl Proxy {
    /// Listens on `listen` and forwards every accepted connection to `target`, on `rt`.
    pub fn start(rt: &Handle, listen: &str, target: &str) -> std::io::Result<Proxy> {
        let listener = rt.block_on(TcpListener::bind(listen))?;
        let listen = listener.local_addr()?;
        let (state, rx) = watch::channel(LinkFault::PASS);
        let target = target.to_string();
        let accept = rt.spawn(accept_loop(listener, target, rx));
        Ok(Proxy {
            listen,
            state,
            accept,
        })
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// Switches the link; connections already open follow at once.
    pub fn set(&self, fault: LinkFault) {
        self.state.send_replace(fault);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Open connections close when they see the cut (or the sender gone).
        self.state.send_replace(LinkFault::CUT);
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: String, state: watch::Receiver<LinkFault>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            // Out of descriptors or the like: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if state.borrow().cut {
            drop(inbound);
            continue;
        }
        tokio::spawn(connection(inbound, target.clone(), state.clone()));
    }
}

/// Carries one connection until either side closes it or the link is cut.
async fn connection(inbound: TcpStream, target: String, state: watch::Receiver<LinkFault>) {
    let outbound = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target)).await {
        Ok(Ok(s)) => s,
        _ => return,
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    tokio::select! {
        _ = pump(in_read, out_write, true, state.clone()) => {}
        _ = pump(out_read, in_write, false, state.clone()) => {}
        _ = cut(state) => {}
    }
}

/// Returns once the link is cut or the proxy is gone.
async fn cut(mut state: watch::Receiver<LinkFault>) {
    loop {
        if state.borrow_and_update().cut {
            return;
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

/// Copies one direction, honouring its flow; returns when either end closes.
async fn pump(
    from: OwnedReadHalf,
    to: OwnedWriteHalf,
    forward: bool,
    state: watch::Receiver<LinkFault>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::select! {
        _ = read_side(from, tx, forward, state) => {}
        _ = write_side(to, rx) => {}
    }
}

/// Reads chunks while the flow is not a blackhole and queues each with the time it is due.
async fn read_side(
    mut from: OwnedReadHalf,
    tx: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    forward: bool,
    mut state: watch::Receiver<LinkFault>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if !wait_open(&mut state, forward).await {
            return;
        }
        let n = tokio::select! {
            biased;
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        // The flow may have changed while the read was pending: bytes read as a blackhole
        // starts are held back too.
        if !wait_open(&mut state, forward).await {
            return;
        }
        let due = match state.borrow().flow(forward) {
            Flow::Delay(d) => Instant::now() + d,
            Flow::Pass | Flow::Blackhole => Instant::now(),
        };
        if tx.send((due, buf[..n].to_vec())).is_err() {
            return;
        }
    }
}

/// Waits while the direction is blackholed; false once the proxy is gone.
async fn wait_open(state: &mut watch::Receiver<LinkFault>, forward: bool) -> bool {
    while state.borrow_and_update().flow(forward) == Flow::Blackhole {
        if state.changed().await.is_err() {
            return false;
        }
    }
    true
}

/// Writes queued chunks in order, each no earlier than it is due.
async fn write_side(mut to: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>) {
    while let Some((due, bytes)) = rx.recv().await {
        tokio::time::sleep_until(due).await;
        if to.write_all(&bytes).await.is_err() {
            return;
        }
    }
    // The reader stopped: let the write half close with the connection.
    let _ = to.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An echo server on an ephemeral loopback port.
    fn echo(rt: &Handle) -> SocketAddr {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        rt.spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
    }

    fn connect(p: &Proxy) -> std::net::TcpStream {
        let s = std::net::TcpStream::connect(p.addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(300))).ok();
        s
    }

    /// Reads up to `n` bytes, stopping at the read timeout.
    fn read_n(s: &mut std::net::TcpStream, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        let mut have = 0;
        while have < n {
            match s.read(&mut got[have..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => have += k,
            }
        }
        got.truncate(have);
        got
    }

    /// Sends `msg` and reads what comes back within the read timeout.
    fn round_trip(s: &mut std::net::TcpStream, msg: &[u8]) -> Vec<u8> {
        let _ = s.write_all(msg);
        read_n(s, msg.len())
    }

    /// Whether the other end closes `s` within 5 s (a read timeout is not a close).
    fn closed(s: &mut std::net::TcpStream) -> bool {
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut buf = [0u8; 8];
        match s.read(&mut buf) {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    }

    #[test]
    fn passes_blackholes_delays_and_cuts() {
        let rt = runtime();
        let target = echo(rt.handle());
        let p = Proxy::start(rt.handle(), "127.0.0.1:0", &target.to_string()).expect("proxy");
        let mut s = connect(&p);
        assert_eq!(round_trip(&mut s, b"one"), b"one");

        // Blackholed one way: nothing comes back; healed, the held bytes arrive intact.
        p.set(LinkFault {
            cut: false,
            forward: Flow::Blackhole,
            backward: Flow::Pass,
        });
        assert_eq!(round_trip(&mut s, b"two"), b"");
        p.set(LinkFault::PASS);
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let _ = s.write_all(b"three");
        assert_eq!(read_n(&mut s, 8), b"twothree");

        // Delayed: the echo takes at least the delay each way.
        p.set(LinkFault::both(Flow::Delay(Duration::from_millis(200))));
        let t = std::time::Instant::now();
        assert_eq!(round_trip(&mut s, b"four"), b"four");
        assert!(
            t.elapsed() >= Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );

        // Cut: the open connection closes, a new one is closed at once.
        p.set(LinkFault::CUT);
        assert!(closed(&mut s));
        assert!(closed(&mut connect(&p)));
        p.set(LinkFault::PASS);
        let mut healed = connect(&p);
        assert_eq!(round_trip(&mut healed, b"five"), b"five");
    }
}
