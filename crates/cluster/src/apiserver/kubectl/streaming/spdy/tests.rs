use bytes::{BufMut, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio_util::codec::{Decoder, Encoder};

use super::*;

/// What spdystream's client sends: a header block deflated with the SPDY/3 dictionary, one
/// zlib stream for the connection, a sync flush per block.
struct Client {
    deflate: Compress,
    inflate: Decompress,
}

impl Client {
    fn new() -> Self {
        let mut deflate = Compress::new(Compression::best(), true);
        deflate.set_dictionary(DICTIONARY).unwrap();
        Self {
            deflate,
            inflate: Decompress::new(true),
        }
    }

    fn block(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut plain = BytesMut::new();
        plain.put_u32(headers.len() as u32);
        for (name, value) in headers {
            plain.put_u32(name.len() as u32);
            plain.put_slice(name.as_bytes());
            plain.put_u32(value.len() as u32);
            plain.put_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(plain.len() + 1024);
        self.deflate
            .compress_vec(&plain, &mut out, FlushCompress::Sync)
            .unwrap();
        out
    }

    fn syn_stream(&mut self, id: u32, headers: &[(&str, &str)], fin: bool) -> Vec<u8> {
        let block = self.block(headers);
        let mut payload = id.to_be_bytes().to_vec();
        payload.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        payload.extend_from_slice(&block);
        let mut out = BytesMut::new();
        control(&mut out, SYN_STREAM, if fin { FIN } else { 0 }, &payload);
        out.to_vec()
    }
}

#[test]
fn streams_open_with_their_headers_across_one_compression_stream() {
    let mut client = Client::new();
    let mut server = Codec::default();
    let mut wire = BytesMut::new();
    wire.put_slice(&client.syn_stream(
        1,
        &[("streamtype", "error"), ("port", "80"), ("requestid", "0")],
        false,
    ));
    wire.put_slice(&client.syn_stream(
        3,
        &[("streamtype", "data"), ("port", "80"), ("requestid", "0")],
        false,
    ));
    // Data, a ping, settings and a window update, then a FIN.
    wire.put_slice(&[0, 0, 0, 3, 0, 0, 0, 2, b'h', b'i']);
    wire.put_slice(&[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
    wire.put_slice(&[0x80, 3, 0, 4, 0, 0, 0, 4, 0, 0, 0, 0]);
    wire.put_slice(&[0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 1, 0]);
    wire.put_slice(&[0, 0, 0, 3, 1, 0, 0, 0]);
    // Frames arrive in pieces (the WebSocket tunnel splits them byte by byte).
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for byte in wire {
        buffer.put_u8(byte);
        while let Some(frame) = server.decode(&mut buffer).unwrap() {
            frames.push(frame);
        }
    }
    let headers = |kind: &str| {
        vec![
            ("streamtype".to_owned(), kind.to_owned()),
            ("port".to_owned(), "80".to_owned()),
            ("requestid".to_owned(), "0".to_owned()),
        ]
    };
    assert_eq!(
        frames,
        vec![
            Frame::SynStream {
                id: 1,
                headers: headers("error"),
                fin: false
            },
            Frame::SynStream {
                id: 3,
                headers: headers("data"),
                fin: false
            },
            Frame::Data {
                id: 3,
                data: Bytes::from_static(b"hi"),
                fin: false
            },
            Frame::Ping(1),
            Frame::Ignored,
            Frame::Ignored,
            Frame::Data {
                id: 3,
                data: Bytes::new(),
                fin: true
            },
        ]
    );
}

#[test]
fn replies_inflate_on_the_clients_side() {
    let mut client = Client::new();
    let mut server = Codec::default();
    let mut out = BytesMut::new();
    for id in [1, 3, 5] {
        server.encode(Frame::SynReply { id }, &mut out).unwrap();
    }
    server
        .encode(
            Frame::Data {
                id: 3,
                data: Bytes::from_static(b"ok"),
                fin: true,
            },
            &mut out,
        )
        .unwrap();
    server.encode(Frame::Ping(7), &mut out).unwrap();
    for id in [1u32, 3, 5] {
        assert_eq!(&out[..4], &[0x80, 3, 0, 2], "a SYN_REPLY");
        let length = u32::from_be_bytes([0, out[5], out[6], out[7]]) as usize;
        let frame = out.split_to(8 + length);
        assert_eq!(&frame[8..12], &id.to_be_bytes());
        let mut plain = Vec::with_capacity(64);
        client
            .inflate
            .decompress_vec(&frame[12..], &mut plain, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(plain, [0, 0, 0, 0], "no headers");
    }
    assert_eq!(&out[..10], &[0, 0, 0, 3, 1, 0, 0, 2, b'o', b'k']);
    assert_eq!(&out[10..], &[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 7]);
}

#[test]
fn bad_frames_are_errors() {
    let mut server = Codec::default();
    let mut wrong_version = BytesMut::from(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
    assert!(server.decode(&mut wrong_version).is_err());
    let mut garbage = BytesMut::from(
        &[
            0x80, 3, 0, 1, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4,
        ][..],
    );
    assert!(Codec::default().decode(&mut garbage).is_err());
    let mut short = BytesMut::from(&[0x80, 3, 0, 3, 0, 0, 0, 2, 0, 0][..]);
    assert!(Codec::default().decode(&mut short).is_err());
}
