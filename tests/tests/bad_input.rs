//! Hostile and broken client input: each gets a clean error or disconnect and the server, with
//! every other session, keeps going.

use ensemble_actors::zk_client::{ClientError, ZkClient};
use ensemble_messages::jute::{Buffer, ConnectRequest, ConnectResponse, Jute, RequestHeader};
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
    rt.block_on(healthy.create("/alive", b"yes", 0)).unwrap();

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
        send_and_read_until_closed(&addr, &connect_bytes(healthy.session_id, vec![9; 16]));
    assert!(closed);
    let reply = ConnectResponse::from_bytes(&out[4..]).unwrap();
    assert_eq!((reply.time_out, reply.session_id), (0, 0));

    // The server and the healthy session are unharmed.
    let (data, _) = rt.block_on(healthy.get_data("/alive")).unwrap();
    assert_eq!(data, b"yes");
    assert_eq!(c.mode(1), "standalone");
    assert!(matches!(
        rt.block_on(healthy.get_data("/missing")),
        Err(ClientError::Server(-101))
    ));
}
