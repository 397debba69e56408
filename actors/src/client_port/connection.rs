//! One client connection speaking ZooKeeper's protocol: frames in, frames out, in order.

use super::protocol::{ClientConnect, ClientGone, ClientPacket, ToClient};
use crate::zab::QuorumPeerActor;
use actix::Addr;
use ensemble_messages::jute::{ConnectRequest, Jute, JuteReader, RequestHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Room for a request's header and fields beside its data, over jute.maxbuffer.
const FRAME_OVERHEAD: usize = 1024;

/// Serves a connection whose first 4 bytes (`first`) were a frame length; frames longer than
/// `max_buffer` plus room for headers close the connection.
pub async fn run(
    stream: TcpStream,
    first: [u8; 4],
    quorum: Addr<QuorumPeerActor>,
    conn: u64,
    max_buffer: usize,
) {
    let max_frame = max_buffer + FRAME_OVERHEAD;
    let ip = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let (mut read, mut write) = stream.into_split();
    let (sink, mut outgoing) = mpsc::unbounded_channel::<ToClient>();
    let writer = actix::spawn(async move {
        while let Some(msg) = outgoing.recv().await {
            match msg {
                ToClient::Frame(f) => {
                    let mut buf = Vec::with_capacity(4 + f.len());
                    buf.extend_from_slice(&(f.len() as u32).to_be_bytes());
                    buf.extend_from_slice(&f);
                    if write.write_all(&buf).await.is_err() {
                        break;
                    }
                }
                ToClient::Close => break,
            }
        }
        let _ = write.shutdown().await;
    });
    let result = async {
        let connect = read_frame(&mut read, Some(first), max_frame).await?;
        let request = ConnectRequest::from_bytes(&connect)
            .map_err(|e| format!("bad connect request: {e}"))?;
        // The readOnly byte follows the record (45 bytes from the C client and kazoo).
        let read_only = connect.len() > request.to_bytes().len() && connect[connect.len() - 1] != 0;
        quorum.do_send(ClientConnect {
            conn,
            request,
            read_only,
            ip,
            sink: sink.clone(),
        });
        loop {
            let f = read_frame(&mut read, None, max_frame).await?;
            let mut r = JuteReader::new(&f);
            let header = RequestHeader::read(&mut r, "request header")
                .map_err(|e| format!("bad request header: {e}"))?;
            quorum.do_send(ClientPacket {
                conn,
                xid: header.xid,
                op: header.op,
                body: f[8..].to_vec(),
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(conn, "client connection closed: {e}");
    }
    quorum.do_send(ClientGone { conn });
    let _ = sink.send(ToClient::Close);
    let _ = writer.await;
}

async fn read_frame(
    read: &mut tokio::net::tcp::OwnedReadHalf,
    first: Option<[u8; 4]>,
    max_frame: usize,
) -> Result<Vec<u8>, String> {
    let len = match first {
        Some(b) => b,
        None => {
            let mut b = [0u8; 4];
            read.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            b
        }
    };
    let len = i32::from_be_bytes(len);
    if len < 0 || len as usize > max_frame {
        tracing::warn!(
            "closing a client connection: frame length {len} is outside [0, {max_frame}] \
             (jute.maxbuffer plus {FRAME_OVERHEAD} bytes of headers)"
        );
        return Err(format!("frame length {len}"));
    }
    let mut buf = vec![0u8; len as usize];
    read.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    Ok(buf)
}
