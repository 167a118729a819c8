//! SPDY/3.1 framing as Kubernetes' streaming clients speak it (moby/spdystream, which kubectl's
//! `exec`, `cp` and `port-forward` use): control and data frames, and header blocks compressed
//! with one zlib stream per direction for the whole connection (the peer's with the SPDY/3
//! dictionary, ours without, which its reader accepts). As spdystream does, no flow control:
//! SETTINGS and WINDOW_UPDATE are read and ignored, and none is sent.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio_util::codec::{Decoder, Encoder};

/// Why a connection's bytes could not be read or written as SPDY.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    /// The transport failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A frame that is not SPDY/3.
    #[error("not a SPDY/3 frame: {0}")]
    Protocol(&'static str),
    /// A header block that does not inflate.
    #[error("header block: {0}")]
    Headers(String),
}

/// The SPDY/3 header dictionary (spdystream's `headerDictionary`).
const DICTIONARY: &[u8; 1423] = b"\
    \0\0\0\x07options\0\0\0\x04head\0\0\0\x04post\0\0\0\x03put\0\0\0\x06delete\0\0\0\x05trace\0\
    \0\0\x06accept\0\0\0\x0eaccept-charset\0\0\0\x0faccept-encoding\0\0\0\x0faccept-language\0\0\
    \0\x0daccept-ranges\0\0\0\x03age\0\0\0\x05allow\0\0\0\x0dauthorization\0\0\0\x0dcache-contro\
    l\0\0\0\x0aconnection\0\0\0\x0ccontent-base\0\0\0\x10content-encoding\0\0\0\x10content-langu\
    age\0\0\0\x0econtent-length\0\0\0\x10content-location\0\0\0\x0bcontent-md5\0\0\0\x0dcontent-\
    range\0\0\0\x0ccontent-type\0\0\0\x04date\0\0\0\x04etag\0\0\0\x06expect\0\0\0\x07expires\0\0\
    \0\x04from\0\0\0\x04host\0\0\0\x08if-match\0\0\0\x11if-modified-since\0\0\0\x0dif-none-match\
    \0\0\0\x08if-range\0\0\0\x13if-unmodified-since\0\0\0\x0dlast-modified\0\0\0\x08location\0\0\
    \0\x0cmax-forwards\0\0\0\x06pragma\0\0\0\x12proxy-authenticate\0\0\0\x13proxy-authorization\
    \0\0\0\x05range\0\0\0\x07referer\0\0\0\x0bretry-after\0\0\0\x06server\0\0\0\x02te\0\0\0\x07t\
    railer\0\0\0\x11transfer-encoding\0\0\0\x07upgrade\0\0\0\x0auser-agent\0\0\0\x04vary\0\0\0\
    \x03via\0\0\0\x07warning\0\0\0\x10www-authenticate\0\0\0\x06method\0\0\0\x03get\0\0\0\x06sta\
    tus\0\0\0\x06200\x20OK\0\0\0\x07version\0\0\0\x08HTTP/1.1\0\0\0\x03url\0\0\0\x06public\0\0\0\
    \x0aset-cookie\0\0\0\x0akeep-alive\0\0\0\x06origin100101201202205206300302303304305306307402\
    405406407408409410411412413414415416417502504505203\x20Non-Authoritative\x20Information204\
    \x20No\x20Content301\x20Moved\x20Permanently400\x20Bad\x20Request401\x20Unauthorized403\x20F\
    orbidden404\x20Not\x20Found500\x20Internal\x20Server\x20Error501\x20Not\x20Implemented503\
    \x20Service\x20UnavailableJan\x20Feb\x20Mar\x20Apr\x20May\x20Jun\x20Jul\x20Aug\x20Sept\x20Oc\
    t\x20Nov\x20Dec\x2000:00:00\x20Mon,\x20Tue,\x20Wed,\x20Thu,\x20Fri,\x20Sat,\x20Sun,\x20GMTch\
    unked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/pla\
    in,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf\
    -,*,enq=0.";

const CONTROL: u8 = 0x80;
const VERSION: u16 = 3;
const FIN: u8 = 0x01;
/// The largest frame payload accepted (SPDY's length field is 24 bits).
const MAX_LENGTH: usize = (1 << 24) - 1;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;

/// RST_STREAM status: the stream is cancelled.
pub const CANCEL: u32 = 5;

/// One frame, as far as a server of Kubernetes' streaming protocols needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The peer opens a stream with these headers (names lowercase).
    SynStream {
        /// Stream id (odd: the client's).
        id: u32,
        /// Its headers.
        headers: Vec<(String, String)>,
        /// The peer sends nothing on it.
        fin: bool,
    },
    /// Accepts a stream the peer opened (no headers).
    SynReply {
        /// Stream id.
        id: u32,
    },
    /// Bytes on a stream; `fin` ends that direction.
    Data {
        /// Stream id.
        id: u32,
        /// Payload.
        data: Bytes,
        /// Last frame of this direction.
        fin: bool,
    },
    /// Ends a stream in both directions.
    Reset {
        /// Stream id.
        id: u32,
        /// Status code.
        status: u32,
    },
    /// A ping to echo, or the echo.
    Ping(u32),
    /// The peer ends the session.
    GoAway {
        /// The last stream it handled.
        last: u32,
    },
    /// A frame a server has nothing to do with (SETTINGS, WINDOW_UPDATE, HEADERS, NOOP).
    Ignored,
}

/// Reads and writes frames; holds the two header compression streams of a connection.
pub struct Codec {
    inflate: Decompress,
    deflate: Compress,
}

impl Default for Codec {
    fn default() -> Self {
        Self {
            inflate: Decompress::new(true),
            deflate: Compress::new(Compression::default(), true),
        }
    }
}

impl Codec {
    fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 1024);
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity().max(1024));
            }
            let (before, produced) = (self.inflate.total_in(), out.len());
            let mut dictionary = false;
            match self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(err) if err.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| SpdyError::Headers(e.to_string()))?;
                    dictionary = true;
                }
                Err(err) => return Err(SpdyError::Headers(err.to_string())),
            }
            let used = (self.inflate.total_in() - before) as usize;
            if used == 0 && out.len() == produced && !dictionary && !input.is_empty() {
                return Err(SpdyError::Headers("the block does not inflate".into()));
            }
            input = &input[used..];
            if out.len() > MAX_LENGTH {
                return Err(SpdyError::Headers("too large".into()));
            }
            // Done once the input is used and the inflater had room to spare.
            if input.is_empty() && (out.len() < out.capacity() || out.len() == produced) {
                break;
            }
        }
        Ok(out)
    }

    fn deflate(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut rest = input;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(rest, &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Headers(e.to_string()))?;
            rest = &rest[(self.deflate.total_in() - before) as usize..];
            // A sync flush is complete once the output has room left over.
            if rest.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    fn headers(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
        let mut plain = Bytes::from(self.inflate(block)?);
        let bad = || SpdyError::Headers("truncated name/value block".into());
        let take = |plain: &mut Bytes| -> Result<String, SpdyError> {
            if plain.remaining() < 4 {
                return Err(bad());
            }
            let len = plain.get_u32() as usize;
            if plain.remaining() < len {
                return Err(bad());
            }
            Ok(String::from_utf8_lossy(&plain.split_to(len)).into_owned())
        };
        if plain.remaining() < 4 {
            return Err(bad());
        }
        let count = plain.get_u32();
        let mut headers = Vec::new();
        for _ in 0..count {
            let name = take(&mut plain)?.to_lowercase();
            let value = take(&mut plain)?;
            headers.push((name, value));
        }
        Ok(headers)
    }
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]) {
    out.put_u8(CONTROL);
    out.put_u8(VERSION as u8);
    out.put_u16(kind);
    out.put_u8(flags);
    let len = payload.len() as u32;
    out.put_slice(&len.to_be_bytes()[1..]);
    out.put_slice(payload);
}

impl Decoder for Codec {
    type Item = Frame;
    type Error = SpdyError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if src.len() < 8 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([0, src[5], src[6], src[7]]) as usize;
        if src.len() < 8 + length {
            src.reserve(8 + length - src.len());
            return Ok(None);
        }
        let head = src.split_to(8);
        let mut payload = src.split_to(length).freeze();
        let flags = head[4];
        if head[0] & CONTROL == 0 {
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            return Ok(Some(Frame::Data {
                id,
                data: payload,
                fin: flags & FIN != 0,
            }));
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(SpdyError::Protocol("version is not 3"));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |n: usize| {
            if payload.len() < n {
                Err(SpdyError::Protocol("control frame too short"))
            } else {
                Ok(())
            }
        };
        let frame = match kind {
            SYN_STREAM => {
                need(10)?;
                let id = payload.get_u32() & 0x7fff_ffff;
                payload.advance(6);
                Frame::SynStream {
                    id,
                    headers: self.headers(&payload)?,
                    fin: flags & FIN != 0,
                }
            }
            RST_STREAM => {
                need(8)?;
                Frame::Reset {
                    id: payload.get_u32() & 0x7fff_ffff,
                    status: payload.get_u32(),
                }
            }
            PING => {
                need(4)?;
                Frame::Ping(payload.get_u32())
            }
            GOAWAY => {
                need(4)?;
                Frame::GoAway {
                    last: payload.get_u32() & 0x7fff_ffff,
                }
            }
            // HEADERS still feed the shared decompressor, or the next block would not inflate.
            8 => {
                need(4)?;
                payload.advance(4);
                self.headers(&payload)?;
                Frame::Ignored
            }
            _ => Frame::Ignored,
        };
        Ok(Some(frame))
    }
}

impl Encoder<Frame> for Codec {
    type Error = SpdyError;

    fn encode(&mut self, frame: Frame, out: &mut BytesMut) -> Result<(), SpdyError> {
        match frame {
            Frame::Data { id, data, fin } => {
                for (i, chunk) in data.chunks(MAX_LENGTH).enumerate() {
                    let last = (i + 1) * MAX_LENGTH >= data.len();
                    out.put_u32(id & 0x7fff_ffff);
                    out.put_u8(if fin && last { FIN } else { 0 });
                    out.put_slice(&(chunk.len() as u32).to_be_bytes()[1..]);
                    out.put_slice(chunk);
                }
                if data.is_empty() {
                    out.put_u32(id & 0x7fff_ffff);
                    out.put_u8(if fin { FIN } else { 0 });
                    out.put_slice(&[0, 0, 0]);
                }
            }
            Frame::SynReply { id } => {
                let block = self.deflate(&0u32.to_be_bytes())?;
                let mut payload = id.to_be_bytes().to_vec();
                payload.extend_from_slice(&block);
                control(out, SYN_REPLY, 0, &payload);
            }
            Frame::Reset { id, status } => {
                let mut payload = id.to_be_bytes().to_vec();
                payload.extend_from_slice(&status.to_be_bytes());
                control(out, RST_STREAM, 0, &payload);
            }
            Frame::Ping(id) => control(out, PING, 0, &id.to_be_bytes()),
            Frame::GoAway { last } => {
                let mut payload = last.to_be_bytes().to_vec();
                payload.extend_from_slice(&0u32.to_be_bytes());
                control(out, GOAWAY, 0, &payload);
            }
            Frame::SynStream { .. } | Frame::Ignored => {
                return Err(SpdyError::Protocol("a server opens no streams"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
