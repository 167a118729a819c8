//! The WebSocket side of pod streaming: the handshake (RFC 6455 with Kubernetes'
//! sub-protocols), channels as the kubelet's `wsstream` frames them (each binary message starts
//! with its channel number; `v5` adds 255 to close one), and a tunnel that carries a SPDY session
//! in binary messages (`SPDY/3.1+portforward.k8s.io`, kubectl's port-forward).

use std::{
    collections::HashMap,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::{Buf, Bytes};
use futures::{Sink, SinkExt, Stream, StreamExt};
use http::{HeaderMap, HeaderValue, header};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{mpsc, watch},
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::derive_accept_key,
        protocol::{CloseFrame, Role, frame::coding::CloseCode},
    },
};

/// The channel that closes another one (`v5.channel.k8s.io`).
const CLOSE_CHANNEL: u8 = 255;
/// How many messages of one channel may wait for its reader.
const BACKLOG: usize = 64;
/// How long a channel nobody reads may hold the connection; then it is dropped.
const STALL: Duration = Duration::from_secs(10);

/// The headers of the 101 answer to a WebSocket upgrade with `protocol`, or `None` when the
/// request is no valid upgrade.
pub fn accept(
    headers: &HeaderMap,
    protocol: &str,
) -> Option<Vec<(header::HeaderName, HeaderValue)>> {
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    if !version_ok {
        return None;
    }
    Some(vec![
        (header::CONNECTION, HeaderValue::from_static("Upgrade")),
        (header::UPGRADE, HeaderValue::from_static("websocket")),
        (
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&derive_accept_key(key.as_bytes())).ok()?,
        ),
        (
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(protocol).ok()?,
        ),
    ])
}

/// The server side of an upgraded connection.
pub async fn server<T>(io: T) -> WebSocketStream<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    WebSocketStream::from_raw_socket(io, Role::Server, None).await
}

/// Writes one channel.
#[derive(Clone)]
pub struct ChannelWriter {
    channel: u8,
    out: mpsc::Sender<Message>,
}

impl ChannelWriter {
    /// Sends bytes on the channel; `false` once the connection is gone.
    pub async fn send(&self, data: &[u8]) -> bool {
        let mut message = Vec::with_capacity(data.len() + 1);
        message.push(self.channel);
        message.extend_from_slice(data);
        self.out
            .send(Message::Binary(Bytes::from(message)))
            .await
            .is_ok()
    }
}

/// A connection demultiplexed into channels.
pub struct Channels {
    inputs: HashMap<u8, mpsc::Receiver<Bytes>>,
    out: mpsc::Sender<Message>,
    closed: watch::Receiver<bool>,
}

impl Channels {
    /// Serves channels on `ws`: messages on `inputs` reach their receivers (until the client
    /// closes them, `v5`), everything else is dropped.
    pub fn serve<T>(ws: WebSocketStream<T>, inputs: &[u8]) -> Self
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut stream) = ws.split();
        let (out, mut queued) = mpsc::channel::<Message>(BACKLOG);
        tokio::spawn(async move {
            while let Some(message) = queued.recv().await {
                let last = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() || last {
                    break;
                }
            }
        });
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for channel in inputs {
            let (sender, receiver) = mpsc::channel(BACKLOG);
            senders.insert(*channel, sender);
            receivers.insert(*channel, receiver);
        }
        let (gone, closed) = watch::channel(false);
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let mut data = match message {
                    Message::Binary(data) if !data.is_empty() => data,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let channel = data.get_u8();
                if channel == CLOSE_CHANNEL {
                    if let Some(closing) = data.first() {
                        senders.remove(closing);
                    }
                    continue;
                }
                let Some(sender) = senders.get(&channel) else {
                    continue;
                };
                match tokio::time::timeout(STALL, sender.send(data)).await {
                    Ok(Ok(())) => {}
                    _ => {
                        senders.remove(&channel);
                    }
                }
            }
            let _ = gone.send(true);
        });
        Self {
            inputs: receivers,
            out,
            closed,
        }
    }

    /// The receiver of an input channel (once).
    pub fn input(&mut self, channel: u8) -> Option<mpsc::Receiver<Bytes>> {
        self.inputs.remove(&channel)
    }

    /// A writer of `channel`.
    pub fn writer(&self, channel: u8) -> ChannelWriter {
        ChannelWriter {
            channel,
            out: self.out.clone(),
        }
    }

    /// A signal that turns true when the client's side is gone.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.clone()
    }

    /// Ends the connection as the kubelet does: a close frame with 1000 (a clean end of every
    /// channel for the client), then the client's close frame, or 5 s.
    pub async fn close(self) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = self.out.send(Message::Close(Some(frame))).await;
        let wait = super::session::until_closed(self.closed);
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
    }
}

/// A byte stream carried in binary messages, both ways: what `SPDY/3.1+portforward.k8s.io`
/// tunnels a SPDY session through. Message boundaries mean nothing; a close frame is the end.
pub struct Tunnel<T> {
    ws: WebSocketStream<T>,
    pending: Bytes,
}

impl<T> Tunnel<T> {
    /// A tunnel over `ws`.
    pub fn new(ws: WebSocketStream<T>) -> Self {
        Self {
            ws,
            pending: Bytes::new(),
        }
    }
}

fn io_error(err: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
    std::io::Error::other(err)
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Tunnel<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.pending = data,
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Poll::Ready(Err(io_error(err))),
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Tunnel<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io_error)?;
        let message = Message::Binary(Bytes::copy_from_slice(buf));
        Pin::new(&mut self.ws)
            .start_send(message)
            .map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(io_error)
    }
}
