//! A blocking ZooKeeper client that sends jute records as given and hands back what the server
//! answered, byte for byte: for tests that compare wire details (null data, multi results)
//! between ensemble and Apache ZooKeeper, which the async client would smooth over.

use ensemble_messages::frame::FrameCodec;
use ensemble_messages::jute::*;
use ensemble_messages::zk::{xid, EventType, OpCode};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Encoder;

/// The frames exchanged: replies up to 16 MiB are read.
const FRAMES: FrameCodec = FrameCodec::new(16 * 1024 * 1024);

/// One session on one server.
pub struct RawSession {
    stream: TcpStream,
    next_xid: i32,
    /// Watch events received so far: (type, path).
    pub events: Vec<(EventType, String)>,
}

/// What a multi or multiRead answered for one sub-op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubResult {
    /// A create: the path.
    Created(String),
    /// A setData: the new Stat's (version, dataLength).
    Set(i32, i32),
    /// A check that passed.
    Checked,
    /// A getData: the data (`None`: null) and the Stat's (version, dataLength).
    Data(Option<Vec<u8>>, i32, i32),
    /// A failed sub-op, with its error code.
    Error(i32),
}

fn bad(what: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl RawSession {
    /// Opens a session on `addr` (a 10 s session timeout, 10 s socket timeouts).
    pub fn connect(addr: &str) -> io::Result<RawSession> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        let mut s = RawSession {
            stream,
            next_xid: 1,
            events: Vec::new(),
        };
        let mut connect = ConnectRequest {
            time_out: 10_000,
            passwd: Buffer(vec![0; 16]),
            ..ConnectRequest::default()
        }
        .to_bytes();
        connect.push(0);
        s.send_frame(&connect)?;
        let reply = s.read_frame()?;
        let r = ConnectResponse::from_bytes(&reply).map_err(bad)?;
        if r.session_id == 0 {
            return Err(bad("the server refused the session"));
        }
        Ok(s)
    }

    fn send_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        let (mut f, mut frames) = (BytesMut::new(), FRAMES);
        frames.encode(payload, &mut f)?;
        self.stream.write_all(&f)
    }

    fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix)?;
        let mut body = vec![0u8; FRAMES.length(prefix)?];
        self.stream.read_exact(&mut body)?;
        Ok(body)
    }

    /// Sends one request and returns the reply's error code and body; watch events that
    /// arrive first are kept in `events`.
    pub fn call(&mut self, code: OpCode, body: &[u8]) -> io::Result<(i32, Vec<u8>)> {
        let x = self.next_xid;
        self.next_xid += 1;
        let mut req = RequestHeader {
            xid: x,
            op: code.code(),
        }
        .to_bytes();
        req.extend_from_slice(body);
        self.send_frame(&req)?;
        loop {
            let frame = self.read_frame()?;
            let mut r = JuteReader::new(&frame);
            let h = ReplyHeader::read(&mut r, "reply header").map_err(bad)?;
            let rest = frame[frame.len() - r.remaining()..].to_vec();
            match h.xid {
                xid::WATCH_EVENT => {
                    let e = WatcherEvent::from_bytes(&rest).map_err(bad)?;
                    self.events
                        .push((EventType::from_wire(e.event_type), e.path));
                }
                xid::PING => {}
                got if got == x => return Ok((h.err, rest)),
                other => return Err(bad(format!("reply to xid {other}, expected {x}"))),
            }
        }
    }

    /// create2 with an open ACL: the error code and the new Stat's (version, dataLength).
    pub fn create(&mut self, path: &str, data: Option<&[u8]>) -> io::Result<(i32, i32, i32)> {
        let (err, body) = self.call(OpCode::Create2, &create_request(path, data).to_bytes())?;
        Ok(match Create2Response::from_bytes(&body) {
            Ok(r) if err == 0 => (err, r.stat.version, r.stat.data_length),
            _ => (err, -1, -1),
        })
    }

    /// setData: the error code and the new Stat's (version, dataLength).
    pub fn set(&mut self, path: &str, data: Option<&[u8]>) -> io::Result<(i32, i32, i32)> {
        let (err, body) = self.call(OpCode::SetData, &set_request(path, data).to_bytes())?;
        Ok(match StatResponse::from_bytes(&body) {
            Ok(r) if err == 0 => (err, r.stat.version, r.stat.data_length),
            _ => (err, -1, -1),
        })
    }

    /// getData: the error code and, when it passed, the data (`None`: null) with the Stat's
    /// (version, dataLength).
    pub fn get(&mut self, path: &str, watch: bool) -> io::Result<(i32, SubResult)> {
        let req = PathWatchRequest {
            path: path.into(),
            watch,
        };
        let (err, body) = self.call(OpCode::GetData, &req.to_bytes())?;
        if err != 0 {
            return Ok((err, SubResult::Error(err)));
        }
        let r = GetDataResponse::from_bytes(&body).map_err(bad)?;
        Ok((
            err,
            SubResult::Data(r.data.0, r.stat.version, r.stat.data_length),
        ))
    }

    /// A multi (or, with `multiRead`, a multiRead) of `ops`, each an op code and its record:
    /// the reply's error code and each sub-op's result.
    pub fn multi(
        &mut self,
        code: OpCode,
        ops: &[(OpCode, Vec<u8>)],
    ) -> io::Result<(i32, Vec<SubResult>)> {
        let mut w = JuteWriter::default();
        for (sub, record) in ops {
            MultiHeader {
                op: sub.code(),
                done: false,
                err: -1,
            }
            .write(&mut w);
            w.bytes.extend_from_slice(record);
        }
        MultiHeader::END.write(&mut w);
        let (err, body) = self.call(code, &w.bytes)?;
        let mut r = JuteReader::new(&body);
        let mut out = Vec::new();
        while !body.is_empty() {
            let h = MultiHeader::read(&mut r, "multi header").map_err(bad)?;
            if h.done {
                break;
            }
            out.push(sub_result(&mut r, h.op).map_err(bad)?);
        }
        Ok((err, out))
    }
}

fn sub_result(r: &mut JuteReader, code: i32) -> Result<SubResult, JuteError> {
    Ok(match OpCode::try_from(code) {
        Ok(OpCode::Create) => SubResult::Created(r.string("path")?),
        Ok(OpCode::SetData) => {
            let s = Stat::read(r, "stat")?;
            SubResult::Set(s.version, s.data_length)
        }
        Ok(OpCode::Check) => SubResult::Checked,
        Ok(OpCode::GetData) => {
            let g = GetDataResponse::read(r, "getData")?;
            SubResult::Data(g.data.0, g.stat.version, g.stat.data_length)
        }
        _ => SubResult::Error(r.int("err")?),
    })
}

/// A create record with an open ACL and no flags.
pub fn create_request(path: &str, data: Option<&[u8]>) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: NullableBuffer(data.map(<[u8]>::to_vec)),
        acl: vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }],
        flags: 0,
    }
}

/// A setData record for any version.
pub fn set_request(path: &str, data: Option<&[u8]>) -> SetDataRequest {
    SetDataRequest {
        path: path.into(),
        data: NullableBuffer(data.map(<[u8]>::to_vec)),
        version: -1,
    }
}
