//! Fuzz targets for every decoder of ensemble, each a function of arbitrary bytes that must
//! return without panicking, aborting or allocating past the decoders' limits.
//!
//! libFuzzer drives them through `fuzz_targets/*.rs` (`cargo +nightly fuzz run TARGET`); the
//! `replay` test runs the same functions on stable over the seeds and regressions in `seeds/`
//! and over seeded mutations of them. [`seeds`] builds the valid inputs the seeds start from.

pub mod seeds;

use bytes::BytesMut;
use ensemble_actors::apache;
use ensemble_actors::client_port::{ClientPacket, ClientService, Hello, ServiceInput};
use ensemble_actors::client_port::{ServiceOutput, ServiceSettings, StepClock};
use ensemble_actors::data_tree::{DataTree, TreeTxn};
use ensemble_actors::spark_master::ensemble_link::{decode_record, Records};
use ensemble_actors::spark_master::takeover::SessionRecord;
use ensemble_actors::storage::files::{self, LogHeader, RecordRead, LOG_HEADER_LEN};
use ensemble_actors::zab::{ComposedPeer, Input, Output, PeerStatus};
use ensemble_messages::codec::{self, PeerCodec};
use ensemble_messages::jute::{ConnectRequest, Jute, JuteReader, ReplyHeader, RequestHeader};
use ensemble_messages::sync_parts::{JoinBudget, SyncJoiner};
use ensemble_messages::zk::{ConnectionId, OpCode};
use ensemble_messages::{HandshakeFrame, PeerMessage, Txn, Zxid};
use tokio_util::codec::Decoder;

/// jute.maxbuffer as the targets configure it: small, so that limits are reached.
const MAX_BUFFER: usize = 4096;

/// The bytes of sync parts the `peer_stream` target's joiner may hold (and make room for).
const JOIN_BUDGET: usize = 64 << 20;

/// Most frames one input may carry, so that one input stays fast.
const MAX_FRAMES: usize = 64;

/// A byte stream from a peer, before and after the handshake: every frame the peer codec cuts
/// from it is decoded as a handshake frame and as a peer message, the messages joined as a
/// link joins a SNAP image's pieces; the whole input is also decoded as one payload of each
/// kind.
pub fn peer_stream(data: &[u8]) {
    let _ = codec::decode::<HandshakeFrame>(data);
    let _ = codec::decode::<PeerMessage>(data);
    let mut buf = BytesMut::from(data);
    let mut messages = PeerCodec::<PeerMessage, PeerMessage>::default();
    // A small server's budget: the room a joined image makes ahead stays within it.
    let mut images = SyncJoiner::within(JoinBudget::new(JOIN_BUDGET));
    while let Ok(Some(msg)) = messages.decode(&mut buf) {
        if images.accept(msg).is_err() {
            break;
        }
    }
    let mut buf = BytesMut::from(data);
    let mut handshakes = PeerCodec::<HandshakeFrame, HandshakeFrame>::default();
    while let Ok(Some(_)) = handshakes.decode(&mut buf) {}
}

/// A client connection's bytes as the server cuts them: length-prefixed frames, the first a
/// connect request, then request header plus body. Every request goes through the server's
/// request pipeline over a real tree, and every write it submits is applied and completed as
/// a commit would be.
pub fn client_session(data: &[u8]) {
    let _ = session_replies(data);
}

/// What [`client_session`] does, returning the (xid, error code) of every reply frame the
/// server sent after the connect reply.
pub fn session_replies(data: &[u8]) -> Vec<(i32, i32)> {
    let mut frames = Frames(data);
    let Some(first) = frames.next() else {
        return Vec::new();
    };
    let Ok(request) = ConnectRequest::from_bytes(first) else {
        return Vec::new();
    };
    let mut server = Server::new();
    let hello = Hello {
        conn: ConnectionId(1),
        request,
        read_only: first.last().is_some_and(|b| *b == 1),
        ip: "127.0.0.1".into(),
        identities: Vec::new(),
    };
    server.step(ServiceInput::Connect {
        hello,
        password: [3; 16],
    });
    server.commit();
    for frame in frames.take(MAX_FRAMES) {
        let mut r = JuteReader::new(frame);
        let Ok(header) = RequestHeader::read(&mut r, "request header") else {
            continue;
        };
        let body = frame[frame.len() - r.remaining()..].to_vec();
        let packet = ClientPacket {
            conn: ConnectionId(1),
            xid: header.xid,
            op: OpCode::try_from(header.op),
            body,
        };
        server.step(ServiceInput::Packet(packet));
        server.commit();
    }
    server.step(ServiceInput::Gone(ConnectionId(1)));
    server.commit();
    let headers: Vec<(i32, i32)> = server
        .frames
        .iter()
        .filter_map(|f| ReplyHeader::from_bytes(f).ok())
        .map(|h| (h.xid, h.err))
        .collect();
    headers[1.min(headers.len())..].to_vec()
}

/// A quorum peer core with its election core (server 1 of 3) driven by a script of events: messages from servers 2
/// and 3 (whatever they say), ticks, disk acknowledgements, links going up and down, and
/// client writes. The cores must never panic, whatever authenticated peers send.
pub fn zab_peer(data: &[u8]) {
    let _ = zab_peer_status(data);
}

/// What [`zab_peer`] does, returning the core's status at the end of the script.
pub fn zab_peer_status(data: &[u8]) -> PeerStatus {
    let mut peer = ComposedPeer::of(seeds::quorum_peer());
    let mut now = 0;
    let mut durable = std::collections::VecDeque::new();
    let keep = |outputs: Vec<Output>, durable: &mut std::collections::VecDeque<_>| {
        for o in outputs {
            if let Output::Persist { token: Some(t), .. } = o {
                durable.push_back(t);
            }
        }
    };
    let outputs = peer.start(now);
    keep(outputs, &mut durable);
    let mut script = Script(data);
    let mut submitted = 0;
    while let Some(event) = script.next_event() {
        let input = match event {
            ScriptEvent::Message(from, bytes) => match codec::decode::<PeerMessage>(bytes) {
                Ok(msg) => Input::Message { from, msg },
                Err(_) => continue,
            },
            ScriptEvent::Tick(ms) => {
                now += ms;
                Input::Tick
            }
            ScriptEvent::Durable => match durable.pop_front() {
                Some(token) => Input::Persisted(token),
                None => continue,
            },
            ScriptEvent::Up(sid) => Input::PeerConnected(sid),
            ScriptEvent::Down(sid) => Input::PeerDisconnected(sid),
            ScriptEvent::Submit(body) => {
                submitted += 1;
                Input::Submit {
                    request_id: submitted,
                    body,
                }
            }
        };
        let outputs = peer.step(input, now);
        keep(outputs, &mut durable);
    }
    peer.status()
}

/// One event of a [`zab_peer`] script.
enum ScriptEvent<'a> {
    /// Encoded peer message from a server.
    Message(u64, &'a [u8]),
    /// Time passes by this many ms, then a tick.
    Tick(u64),
    /// The oldest pending disk write is durable.
    Durable,
    /// A link comes up.
    Up(u64),
    /// A link goes down.
    Down(u64),
    /// A client write with this body.
    Submit(Vec<u8>),
}

/// The bytes of a [`zab_peer`] script: an op byte, then its operands.
struct Script<'a>(&'a [u8]);

impl<'a> Script<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    fn next_event(&mut self) -> Option<ScriptEvent<'a>> {
        let op = self.byte()?;
        let sid = 2 + u64::from(op >> 7);
        Some(match op & 0x7f {
            0 => {
                let len = u16::from_be_bytes([self.byte()?, self.byte()?]) as usize;
                let (msg, rest) = self.0.split_at(len.min(self.0.len()));
                self.0 = rest;
                ScriptEvent::Message(sid, msg)
            }
            1 => ScriptEvent::Tick(u64::from(self.byte()?) * 10),
            2 => ScriptEvent::Durable,
            3 => ScriptEvent::Up(sid),
            4 => ScriptEvent::Down(sid),
            _ => ScriptEvent::Submit(seeds::write_body(op)),
        })
    }
}

/// A txn body as a peer could put into a proposal: validated as the leader validates before
/// logging, and applied to a populated tree as a follower applies a commit (applying must
/// never fail loudly, whether or not the body is valid).
pub fn txn_apply(data: &[u8]) {
    let _ = TreeTxn::check_body(data, MAX_BUFFER);
    let mut tree = seeds::populated_tree();
    let txn = Txn {
        zxid: Zxid::new(2, 1),
        origin: 1,
        request_id: 1,
        body: data.to_vec(),
    };
    let _ = tree.apply(&txn);
    let _ = tree.serialize();
}

/// The content of a log file: its header, then every record until the first that cannot be
/// read, as recovery walks it; then the same records with their checksums made right, so that
/// the decoding behind the checks is reached too.
pub fn storage_log(data: &[u8]) {
    read_log(data);
    read_log(&with_valid_checksums(data));
}

fn read_log(data: &[u8]) {
    if !matches!(files::check_log_header(data), LogHeader::Valid) {
        return;
    }
    let mut offset = LOG_HEADER_LEN;
    while let RecordRead::Record(_, end) = files::read_record(data, offset) {
        if end <= offset || end > data.len() {
            panic!(
                "a record ending at {end} read from offset {offset} of {}",
                data.len()
            );
        }
        offset = end;
    }
}

/// `data` with each record's two checksums recomputed from its length and body.
fn with_valid_checksums(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut offset = LOG_HEADER_LEN;
    while let Some(header) = out.get(offset..offset + 12) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let start = offset + 12;
        let end = start.saturating_add(len).min(out.len());
        let len_crc = crc32fast::hash(&out[offset..offset + 4]);
        let body_crc = crc32fast::hash(&out[start..end]);
        out[offset + 4..offset + 8].copy_from_slice(&len_crc.to_be_bytes());
        out[offset + 8..offset + 12].copy_from_slice(&body_crc.to_be_bytes());
        offset = end;
    }
    out
}

/// The content of a snapshot file, and a snapshot image as a SNAP sync carries it: decoded,
/// then turned into a tree; and the bytes as an incremental image applied onto a fresh tree
/// (whose zxid, zero, a delta's base matches easily).
pub fn storage_snapshot(data: &[u8]) {
    if let Ok(snapshot) = files::decode_snapshot(data) {
        let _ = DataTree::deserialize(&snapshot.state);
    }
    let _ = DataTree::deserialize(data);
    let _ = DataTree::default().apply_delta(data);
    // As an image streams from a file or a socket: a few bytes per read; and a length that
    // claims more than the bytes there are.
    let _ = DataTree::read_image(&mut Trickle(data), data.len() as u64);
    let _ = DataTree::read_image(&mut { data }, data.len() as u64 + 64);
    let _ = DataTree::default().apply_delta_from(&mut Trickle(data), data.len() as u64);
}

/// A reader that gives at most 7 bytes per read.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(7).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// An Apache ZooKeeper snapshot or txn-log file, as an import reads one: parsed, then the
/// snapshot turned into a tree and the log's records replayed onto a real Apache snapshot; the
/// log also with its Adler-32 checksums made right, so that the records behind them are reached.
pub fn apache_files(data: &[u8]) {
    if let Ok(snap) = apache::parse_snapshot(data) {
        if let Ok(tree) = apache::ApacheTree::from_snapshot(&snap) {
            let _ = tree.into_data_tree(Zxid::new(1, 1));
        }
    }
    replay_apache_log(data);
    replay_apache_log(&with_valid_adler32(data));
}

fn replay_apache_log(data: &[u8]) {
    let Ok(log) = apache::parse_log(data) else {
        return;
    };
    let Ok(snap) = apache::parse_snapshot(seeds::APACHE_SNAPSHOT) else {
        return;
    };
    let Ok(mut tree) = apache::ApacheTree::from_snapshot(&snap) else {
        return;
    };
    for record in &log.records {
        tree.apply(&record.txn);
    }
    let _ = tree.into_data_tree(Zxid::new(1, 1));
}

/// `data` with the Adler-32 of each Apache log record recomputed from its length and body.
fn with_valid_adler32(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut offset = 16;
    while let Some(header) = out.get(offset..offset + 12) {
        let len = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let Ok(len) = usize::try_from(len) else { break };
        let start = offset + 12;
        let Some(body) = out.get(start..start.saturating_add(len)) else {
            break;
        };
        let sum = i64::from(apache::adler32(body));
        out[offset..offset + 8].copy_from_slice(&sum.to_be_bytes());
        offset = start + len + 1;
    }
    out
}

/// A Spark-style master's stored record, under each kind of record name, and as the ALIVE
/// master's published session record.
pub fn spark_record(data: &[u8]) {
    let mut records = Records::default();
    for name in ["worker_w", "app_a", "driver_d"] {
        let _ = records.add(name, data);
    }
    let _ = decode_record::<SessionRecord>(data).and_then(SessionRecord::checked);
}

/// A request to a master's REST submission gateway: the first line is the path (routed as GET
/// and as POST), the rest a create body, decoded and mapped to a driver when it decodes.
pub fn rest_request(data: &[u8]) {
    use ensemble_actors::spark_master::rest_protocol as rest;
    let split = data.iter().position(|b| *b == b'\n');
    let (line, body) = match split {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(path) = std::str::from_utf8(line) {
        for method in ["GET", "POST"] {
            if let rest::Request::Refused(reply) = rest::route(method, path) {
                let _ = reply.text();
            }
        }
    }
    match rest::decode_create(body) {
        Ok(req) => {
            let _ = rest::driver_desc(&req).map_err(|e| e.text());
        }
        Err(reply) => {
            let _ = reply.text();
        }
    }
}

/// Config text as an operator or a tool may write it: as zoo.cfg (whose `myid` says 1), as
/// native TOML, as a dynamic config (the membership file, `/zookeeper/config`) and as the
/// lists of a reconfig request against that membership.
pub fn config_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ensemble_config::parse_zoo_cfg(text, |_| Ok("1\n".to_string()));
    let _ = ensemble_config::parse_toml(text);
    if let Ok(m) = ensemble_config::dynamic::Membership::parse(text) {
        let _ = ensemble_config::dynamic::Membership::parse(&m.render());
        let dynamic = ensemble_config::apache_files::dynamic_file_text(&m);
        assert!(ensemble_config::dynamic::Membership::parse(&dynamic).is_ok());
    }
    let _ = ensemble_config::apache_files::edit_static(
        text,
        std::path::Path::new("/c/zoo.cfg.dynamic.1"),
        true,
    );
    let mut parts = text.splitn(3, '|');
    let (joining, leaving, members) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let current = ensemble_config::dynamic::Membership::parse(
        "server.1=a:1:2;3\nserver.2=b:1:2;3\nserver.3=c:1:2;3\nversion=0",
    )
    .map(|m| m.servers)
    .unwrap_or_default();
    if let Ok(servers) =
        ensemble_actors::zab::membership::next_servers(&current, joining, leaving, members)
    {
        let lines = ensemble_actors::zab::membership::server_lines(&servers);
        assert!(ensemble_actors::zab::membership::voters_of_lines(&lines).is_some());
    }
}

/// A key or trust store file's bytes, read as PEM (its private key plain or encrypted, opened
/// with the password the seeds use) and as PKCS#12.
pub fn key_store(data: &[u8]) {
    use ensemble_config::{Store, StoreKind};
    for kind in [StoreKind::Pem, StoreKind::Pkcs12] {
        let store = Store {
            location: "fuzz".into(),
            password: seeds::KEY_PASSWORD.into(),
            kind,
        };
        let _ = ensemble_actors::tls::identity_from_bytes(data, &store);
        let _ = ensemble_actors::tls::trust_from_bytes(data, &store);
    }
}

/// Length-prefixed frames of a byte stream, as a connection cuts them; the last frame is what
/// remains when its length claims more.
struct Frames<'a>(&'a [u8]);

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let len = (u32::from_be_bytes(*len) as usize).min(rest.len());
        let (frame, rest) = rest.split_at(len);
        self.0 = rest;
        Some(frame)
    }
}

/// One server's request pipeline and tree, with writes committed at once.
struct Server {
    service: ClientService,
    tree: DataTree,
    /// Txns the service asked to propose, not yet committed.
    submitted: Vec<(u64, TreeTxn)>,
    /// The frames sent to the connection until it was closed.
    frames: Vec<Vec<u8>>,
    closed: bool,
    zxids: u32,
}

/// A fixed clock: the targets never read one.
fn fuzz_clock() -> StepClock {
    StepClock {
        at: std::time::Instant::now(),
        wall_ms: 1_000,
    }
}

impl Server {
    fn new() -> Self {
        let settings = ServiceSettings {
            min_ms: 4000,
            max_ms: 40000,
            max_buffer: MAX_BUFFER,
            read_only_mode: true,
            super_digest: Some([7; 20]),
            enforce_quota: true,
            reconfig_enabled: true,
        };
        let mut server = Server {
            service: ClientService::new(1, settings, fuzz_clock(), Default::default()),
            tree: seeds::populated_tree(),
            submitted: Vec::new(),
            frames: Vec::new(),
            closed: false,
            zxids: 100,
        };
        server.step(ServiceInput::Serving(true));
        server
    }

    /// Steps the service and keeps what it sends and proposes.
    fn step(&mut self, input: ServiceInput) {
        for out in self.service.step(input, &self.tree, fuzz_clock()) {
            match out {
                ServiceOutput::Push { frame, .. } | ServiceOutput::Reply { frame, .. } => {
                    if !self.closed {
                        self.frames.push(frame);
                    }
                }
                ServiceOutput::Close(_) => self.closed = true,
                ServiceOutput::Propose { request_id, txn } => {
                    self.submitted.push((request_id, txn))
                }
                ServiceOutput::ShareSession { .. } | ServiceOutput::ShareAuth { .. } => {}
            }
        }
    }

    /// Applies and completes every submitted write, in order.
    fn commit(&mut self) {
        while !self.submitted.is_empty() {
            for (request_id, txn) in std::mem::take(&mut self.submitted) {
                self.zxids += 1;
                let txn = Txn {
                    zxid: Zxid::new(2, self.zxids),
                    origin: 1,
                    request_id,
                    body: txn.encode(),
                };
                let applied = self.tree.apply(&txn);
                self.step(ServiceInput::Applied {
                    txn: &txn,
                    applied: &applied,
                    own: true,
                });
            }
        }
    }
}
