//! A SPDY session on the server side: every stream the client opens is accepted at once (an
//! empty SYN_REPLY, before any data, as spdystream expects) and handed to the protocol with its
//! headers, a receiver of its bytes and a writer. Pings are echoed. The session ends on GOAWAY
//! or when the connection closes; each stream's receiver then ends too.

use std::collections::HashMap;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{mpsc, watch},
};
use tokio_util::codec::Framed;

use super::spdy::{CANCEL, Codec, Frame};

/// How many data frames of one stream may wait for its reader (then the connection waits, as
/// spdystream's does).
const BACKLOG: usize = 64;

/// How long the connection waits for a stream whose reader takes nothing (stdin of a command
/// that never reads it); then that stream is reset, and the others go on.
const STALL: std::time::Duration = std::time::Duration::from_secs(10);

/// Writes frames of one stream.
#[derive(Clone)]
pub struct Writer {
    id: u32,
    out: mpsc::Sender<Frame>,
}

impl Writer {
    /// Sends bytes; `false` once the session is gone.
    pub async fn send(&self, data: Bytes) -> bool {
        let frame = Frame::Data {
            id: self.id,
            data,
            fin: false,
        };
        self.out.send(frame).await.is_ok()
    }

    /// Ends this direction of the stream (an empty DATA frame with FIN).
    pub async fn finish(&self) {
        let frame = Frame::Data {
            id: self.id,
            data: Bytes::new(),
            fin: true,
        };
        let _ = self.out.send(frame).await;
    }

    /// Ends the stream in both directions.
    pub async fn reset(&self) {
        let frame = Frame::Reset {
            id: self.id,
            status: CANCEL,
        };
        let _ = self.out.send(frame).await;
    }
}

/// A stream the client opened.
pub struct Stream {
    /// Its headers (names lowercase).
    pub headers: HashMap<String, String>,
    /// Its bytes, until the client finishes or resets it.
    pub incoming: mpsc::Receiver<Bytes>,
    /// Writes on it.
    pub writer: Writer,
}

impl Stream {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A running session: the streams the client opens, and a way to end it.
pub struct Session {
    /// Streams as the client opens them.
    pub streams: mpsc::Receiver<Stream>,
    out: mpsc::Sender<Frame>,
    closed: watch::Receiver<bool>,
}

impl Session {
    /// Ends the session (GOAWAY): the client closes its side.
    pub async fn go_away(&self) {
        let _ = self.out.send(Frame::GoAway { last: 0 }).await;
    }

    /// A signal that turns true when the client's side of the connection is gone.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.clone()
    }
}

/// Waits until `closed` turns true.
pub async fn until_closed(mut closed: watch::Receiver<bool>) {
    let _ = closed.wait_for(|gone| *gone).await;
}

/// Serves SPDY on `io` (after the HTTP 101): reads and writes frames on two tasks.
pub fn serve<T>(io: T) -> Session
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut sink, mut frames) = Framed::new(io, Codec::default()).split();
    let (out, mut queued) = mpsc::channel::<Frame>(BACKLOG);
    let (opened, streams) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(frame) = queued.recv().await {
            let end = matches!(frame, Frame::GoAway { .. });
            if let Err(err) = sink.send(frame).await {
                tracing::debug!("spdy: writing: {err}");
                break;
            }
            if end {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let replies = out.clone();
    let (gone, closed) = watch::channel(false);
    tokio::spawn(async move {
        let mut open: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
        while let Some(frame) = frames.next().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(err) => {
                    tracing::debug!("spdy: reading: {err}");
                    break;
                }
            };
            match frame {
                Frame::SynStream { id, headers, fin } => {
                    if replies.send(Frame::SynReply { id }).await.is_err() {
                        break;
                    }
                    let (bytes, incoming) = mpsc::channel(BACKLOG);
                    if !fin {
                        open.insert(id, bytes);
                    }
                    let stream = Stream {
                        headers: headers.into_iter().collect(),
                        incoming,
                        writer: Writer {
                            id,
                            out: replies.clone(),
                        },
                    };
                    if opened.send(stream).await.is_err() {
                        break;
                    }
                }
                Frame::Data { id, data, fin } => {
                    if let Some(sender) = open.get(&id)
                        && !data.is_empty()
                    {
                        match tokio::time::timeout(STALL, sender.send(data)).await {
                            Ok(Ok(())) => {}
                            // Its reader is gone: what follows is dropped.
                            Ok(Err(_)) => {
                                open.remove(&id);
                            }
                            Err(_) => {
                                open.remove(&id);
                                let reset = Frame::Reset { id, status: CANCEL };
                                if replies.send(reset).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    if fin {
                        open.remove(&id);
                    }
                }
                Frame::Reset { id, .. } => {
                    open.remove(&id);
                }
                Frame::Ping(id) => {
                    if replies.send(Frame::Ping(id)).await.is_err() {
                        break;
                    }
                }
                Frame::GoAway { .. } => break,
                Frame::SynReply { .. } | Frame::Ignored => {}
            }
        }
        let _ = gone.send(true);
    });
    Session {
        streams,
        out,
        closed,
    }
}
