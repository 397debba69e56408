//! What one client may hold on a server: maxClientCnxns connections per address, partial
//! frames that time out, and output that a client that does not read cannot grow.

use ensemble_actors::zk_client::ZkClient;
use ensemble_messages::jute::{
    Buffer, ConnectRequest, ConnectResponse, Jute, PathWatchRequest, RequestHeader,
};
use ensemble_messages::zk::CreateMode;
use ensemble_node::local_cluster::{wait_until, ProcessCluster};
use ensemble_tests::{client_session, runtime};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn exe() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_ensemble-cli").into()
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

fn connect_frame() -> Vec<u8> {
    let mut c = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id: 0,
        passwd: Buffer(vec![0; 16]),
    }
    .to_bytes();
    c.push(0);
    frame(&c)
}

/// A connection to `server` from the local address `from`.
fn connect_from(from: &str, server: &str) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse::<SocketAddr>().expect("address"))?;
    let server: SocketAddr = server.parse().expect("address");
    let s = runtime().block_on(socket.connect(server))?.into_std()?;
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// One frame from the server, or None once it closed the connection (or 5 s passed).
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// A connection from `from` that completed the handshake, or None if the server closed it.
fn session_from(from: &str, server: &str) -> Option<TcpStream> {
    let mut s = connect_from(from, server).ok()?;
    s.write_all(&connect_frame()).ok()?;
    let reply = ConnectResponse::from_bytes(&read_frame(&mut s)?).ok()?;
    (reply.session_id != 0).then_some(s)
}

/// Whether the server closed `s` (EOF or reset) within `timeout`, discarding what it sent.
fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 1 << 16];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => {}
        }
    }
    false
}

/// The data of `path`, read by a new client (a client on a current-thread runtime is not
/// pinging while the test waits on other things, so its session may have expired).
fn fresh_get(addr: &str, path: &str) -> Vec<u8> {
    runtime().block_on(async {
        let client = ZkClient::connect(&[addr.to_string()], Duration::from_secs(10))
            .await
            .unwrap();
        client.get_data(path).await.unwrap().0
    })
}

fn srvr_field(addr: &str, field: &str) -> Option<u64> {
    let reply = ensemble_node::four_letter::ask(addr, "srvr", Duration::from_secs(2)).ok()?;
    reply
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn max_client_cnxns_limits_each_address_and_frees_places_on_close() {
    let mut c = ProcessCluster::with_zoo_cfg_lines(1, 70, exe(), "maxClientCnxns=60\n");
    c.start(1);
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let addr = c.client_addr(1);
    let mut first: Vec<TcpStream> = (0..60)
        .map(|i| session_from("127.0.0.1", &addr).unwrap_or_else(|| panic!("connection {i}")))
        .collect();
    for i in 0..10 {
        let mut extra = connect_from("127.0.0.1", &addr).expect("the TCP connect succeeds");
        let _ = extra.write_all(&connect_frame());
        assert!(
            closed_within(&mut extra, Duration::from_secs(5)),
            "connection {} over the limit is closed",
            60 + i
        );
    }
    assert!(c
        .log(1)
        .contains("Too many connections from /127.0.0.1 - max is 60"));
    // Another address has its own count.
    let mut other = session_from("127.0.0.2", &addr).expect("127.0.0.2 is counted apart");
    // The first 60 still work.
    for s in first.iter_mut() {
        s.write_all(&frame(&RequestHeader { xid: -2, op: 11 }.to_bytes()))
            .unwrap();
        assert!(read_frame(s).is_some(), "a ping is answered");
    }
    // Closing some gives their places back.
    first.truncate(55);
    let mut again = Vec::new();
    wait_until("5 places freed", Duration::from_secs(10), || {
        if let Some(s) = session_from("127.0.0.1", &addr) {
            again.push(s);
        }
        again.len() == 5
    })
    .unwrap();
    other
        .write_all(&frame(&RequestHeader { xid: -2, op: 11 }.to_bytes()))
        .unwrap();
    assert!(read_frame(&mut other).is_some());
}

#[test]
fn partial_frames_are_closed_in_time_and_hold_little_memory() {
    let mut c = ProcessCluster::with_zoo_cfg_lines(1, 71, exe(), "maxClientCnxns=0\n");
    c.start(1);
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let addr = c.client_addr(1);
    let (rt, healthy) = client_session(&addr);
    rt.block_on(healthy.create("/alive", b"yes", CreateMode::Persistent))
        .unwrap();
    let baseline = c.rss_kib(1).unwrap();
    let started = Instant::now();
    // 150 connect requests announcing 1,000,000 bytes and sending 1 KiB of them ...
    let mut partial: Vec<TcpStream> = (0..150)
        .map(|_| {
            let mut s = connect_from("127.0.0.1", &addr).unwrap();
            let mut bytes = 1_000_000u32.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0u8; 1024]);
            s.write_all(&bytes).unwrap();
            s
        })
        .collect();
    // ... and 50 sessions whose next request stops after its length prefix.
    partial.extend((0..50).map(|_| {
        let mut s = session_from("127.0.0.1", &addr).expect("a session");
        s.write_all(&1_000_000u32.to_be_bytes()).unwrap();
        s
    }));
    // The server keeps serving meanwhile, without holding the announced megabytes.
    let (data, _) = rt.block_on(healthy.get_data("/alive")).unwrap();
    assert_eq!(data, b"yes");
    let grown = c.rss_kib(1).unwrap().saturating_sub(baseline);
    assert!(grown < 50 * 1024, "RSS grew by {grown} KiB");
    for (i, s) in partial.iter_mut().enumerate() {
        let left = Duration::from_secs(20).saturating_sub(started.elapsed());
        assert!(
            closed_within(s, left),
            "partial frame {i} is closed in time"
        );
    }
    assert_eq!(fresh_get(&addr, "/alive"), b"yes");
}

#[test]
fn a_client_that_does_not_read_is_throttled_then_closed_and_others_are_served() {
    let mut c = ProcessCluster::with_zoo_cfg_lines(1, 72, exe(), "");
    c.start(1);
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let addr = c.client_addr(1);
    let (rt, healthy) = client_session(&addr);
    let big = vec![7u8; 500_000];
    rt.block_on(healthy.create("/big", &big, CreateMode::Persistent))
        .unwrap();
    let baseline = c.rss_kib(1).unwrap();
    let mut slow = session_from("127.0.0.1", &addr).expect("a session");
    // 2,000 reads of 500 KB (1 GB of replies), sent without reading any reply.
    let mut requests = Vec::new();
    for xid in 1..=2000 {
        let mut r = RequestHeader { xid, op: 4 }.to_bytes();
        r.extend(
            PathWatchRequest {
                path: "/big".into(),
                watch: false,
            }
            .to_bytes(),
        );
        requests.extend(frame(&r));
    }
    slow.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = slow.write_all(&requests);
    drop(healthy);
    // Others are served at once, and the slow client's replies stay bounded in memory.
    assert_eq!(fresh_get(&addr, "/big").len(), big.len());
    let grown = c.rss_kib(1).unwrap().saturating_sub(baseline);
    assert!(grown < 50 * 1024, "RSS grew by {grown} KiB");
    // After the session timeout (4 s with these ticks) without reading, it is closed, and its
    // requests in flight no longer count.
    // The test's other sessions go quiet and expire too; nothing reads from `slow` meanwhile.
    wait_until("the slow client closed", Duration::from_secs(20), || {
        srvr_field(&addr, "Connections:") == Some(0)
    })
    .unwrap();
    wait_until("no requests in flight", Duration::from_secs(5), || {
        srvr_field(&addr, "Outstanding:") == Some(0)
    })
    .unwrap();
    let grown = c.rss_kib(1).unwrap().saturating_sub(baseline);
    assert!(grown < 50 * 1024, "RSS grew by {grown} KiB");
    assert_eq!(fresh_get(&addr, "/big").len(), big.len());
    assert!(closed_within(&mut slow, Duration::from_secs(10)));
}
