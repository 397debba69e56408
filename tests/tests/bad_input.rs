//! Hostile and broken client input: each gets a clean error or disconnect and the server, with
//! every other session, keeps going.

use ensemble_actors::zk_client::{open_acl, ClientError, ZkClient};
use ensemble_messages::jute::{
    Buffer, ConnectRequest, ConnectResponse, CreateRequest, Jute, NullableBuffer, ReplyHeader,
    RequestHeader,
};
use ensemble_messages::zk::{CreateMode, ZkError};
use ensemble_node::local_cluster::{ProcessCluster, Program};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

fn connect_bytes(session_id: i64, passwd: Vec<u8>) -> Vec<u8> {
    let mut c = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 10_000,
        session_id,
        passwd: Buffer(passwd),
    }
    .to_bytes();
    c.push(0);
    frame(&c)
}

/// Sends `bytes` and reads until the server closes the connection (or 5 s pass).
fn send_and_read_until_closed(addr: &str, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let mut c = ProcessCluster::new(
        1,
        31,
        Program::Cli(env!("CARGO_BIN_EXE_ensemble-cli").into()),
        "",
    );
    c.start(1);
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let addr = c.client_addr(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let healthy = rt
        .block_on(ZkClient::connect(
            std::slice::from_ref(&addr),
            Duration::from_secs(10),
        ))
        .unwrap();
    rt.block_on(healthy.create("/alive", b"yes", CreateMode::Persistent))
        .unwrap();

    // A huge length, a negative length, a truncated connect record, garbage after a good connect.
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("huge frame length", vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3]),
        ("negative frame length", vec![0xff, 0xff, 0xff, 0xfe]),
        ("truncated connect record", frame(&[0, 0, 0, 0, 0, 0])),
        ("request frame shorter than its header", {
            let mut b = connect_bytes(0, vec![0; 16]);
            b.extend_from_slice(&frame(&[0, 0, 0, 1]));
            b
        }),
    ];
    for (what, bytes) in cases {
        let (_, closed) = send_and_read_until_closed(&addr, &bytes);
        assert!(closed, "{what}: the server should close the connection");
    }

    // An unknown op code gets Unimplemented (-6), not a dropped connection.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&connect_bytes(0, vec![0; 16])).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    assert!(ConnectResponse::from_bytes(&body).unwrap().session_id != 0);
    s.write_all(&frame(&RequestHeader { xid: 7, op: 9999 }.to_bytes()))
        .unwrap();
    s.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[0..4], &7i32.to_be_bytes(), "xid echoed");
    assert_eq!(&reply[12..16], &(-6i32).to_be_bytes(), "Unimplemented");

    // A reconnect with a wrong password is told the session is gone (timeOut 0) and closed.
    let (out, closed) =
        send_and_read_until_closed(&addr, &connect_bytes(healthy.session_id.0, vec![9; 16]));
    assert!(closed);
    let reply = ConnectResponse::from_bytes(&out[4..]).unwrap();
    assert_eq!((reply.time_out, reply.session_id), (0, 0));

    // The server and the healthy session are unharmed.
    let (data, _) = rt.block_on(healthy.get_data("/alive")).unwrap();
    assert_eq!(data, b"yes");
    assert_eq!(c.mode(1), "standalone");
    assert!(matches!(
        rt.block_on(healthy.get_data("/missing")),
        Err(ClientError::Server(ZkError::NoNode))
    ));
}

/// Opens a raw connection and completes the handshake.
fn raw_connect(addr: &str, session_id: i64, passwd: Vec<u8>) -> (TcpStream, ConnectResponse) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&connect_bytes(session_id, passwd)).unwrap();
    let reply = read_frame(&mut s).expect("a connect reply");
    (s, ConnectResponse::from_bytes(&reply).unwrap())
}

/// One frame from the server, or None once it closed the connection.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// Sends a create of `path` with `data` and returns the reply's error code.
fn raw_create(s: &mut TcpStream, xid: i32, path: &str, data: Vec<u8>) -> i32 {
    let mut req = RequestHeader { xid, op: 1 }.to_bytes();
    req.extend(
        CreateRequest {
            path: path.into(),
            data: NullableBuffer::bytes(data),
            acl: open_acl(),
            flags: 0,
        }
        .to_bytes(),
    );
    s.write_all(&frame(&req)).unwrap();
    let reply = read_frame(s).expect("a create reply");
    let header = ReplyHeader::from_bytes(&reply).unwrap();
    assert_eq!(header.xid, xid);
    header.err
}

#[test]
fn a_stale_connection_of_a_moved_session_gets_session_moved_and_is_closed() {
    let mut c = ProcessCluster::new(
        3,
        35,
        Program::Cli(env!("CARGO_BIN_EXE_ensemble-cli").into()),
        "",
    );
    c.start_all();
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let (mut old, first) = raw_connect(&c.client_addr(1), 0, vec![0; 16]);
    assert_eq!(raw_create(&mut old, 1, "/through-1", Vec::new()), 0);
    // The client reconnects through server 2 with its id and password; once a write there
    // is answered, the move (queued ahead of it) has committed.
    let (mut new, moved) = raw_connect(&c.client_addr(2), first.session_id, first.passwd.0);
    assert_eq!(moved.session_id, first.session_id);
    assert_eq!(raw_create(&mut new, 1, "/through-2", Vec::new()), 0);
    assert_eq!(
        raw_create(&mut old, 2, "/stale", Vec::new()),
        -118,
        "SessionMoved"
    );
    assert!(
        read_frame(&mut old).is_none(),
        "the stale connection is closed"
    );
    assert_eq!(raw_create(&mut new, 2, "/still-fine", Vec::new()), 0);
}

#[test]
fn data_over_jute_maxbuffer_is_refused_and_oversized_frames_close_the_connection() {
    let mut c = ProcessCluster::new(
        1,
        36,
        Program::Cli(env!("CARGO_BIN_EXE_ensemble-cli").into()),
        "",
    );
    std::env::set_var("ENSEMBLE__CLIENT__MAX_BUFFER_BYTES", "4096");
    c.start(1);
    std::env::remove_var("ENSEMBLE__CLIENT__MAX_BUFFER_BYTES");
    c.wait_serving(Duration::from_secs(20)).unwrap();
    let (mut s, _) = raw_connect(&c.client_addr(1), 0, vec![0; 16]);
    assert_eq!(raw_create(&mut s, 1, "/fits", vec![7; 4096]), 0);
    assert_eq!(
        raw_create(&mut s, 2, "/too-big", vec![7; 4097]),
        -8,
        "BadArguments"
    );
    // A frame beyond jute.maxbuffer plus room for headers ends the connection, with a log line.
    let mut huge = RequestHeader { xid: 3, op: 1 }.to_bytes();
    huge.extend(vec![0; 4096 + 2048]);
    s.write_all(&frame(&huge)).unwrap();
    assert!(read_frame(&mut s).is_none(), "closed");
    assert!(
        c.log(1)
            .contains("frame of 6152 bytes is over the limit of 5120"),
        "{}",
        c.log(1)
    );
    let (mut again, _) = raw_connect(&c.client_addr(1), 0, vec![0; 16]);
    assert_eq!(raw_create(&mut again, 1, "/after", Vec::new()), 0);
}
