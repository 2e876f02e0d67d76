//! gzip for remembered answers, compressed once and sent many times.
//!
//! An answer is sent as its freshness (new every second) and its remembered
//! bytes (the same until the next refresh). The remembered bytes are
//! deflated once ([`deflate`]); each answer is then one gzip member
//! ([`member`], RFC 1952) made of the gzip header, the freshness as a
//! *stored* deflate block (RFC 1951 §3.2.4: its bytes as they are, no
//! compressor needed), the remembered deflate stream, which carries the
//! final block, and the trailer, whose CRC-32 of the whole is combined from
//! the two parts' without reading the remembered bytes again. Any gzip
//! decoder reads it as one ordinary member.
//!
//! Must not depend on anything but `bytes`, `crc32fast` and `flate2`.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::Compression;
use flate2::write::DeflateEncoder;

/// The gzip header: deflate, no flags, no time, unknown system.
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The header of a stored block that is not the last: `BFINAL` 0, `BTYPE`
/// 00 (padded to the byte), `LEN` and `NLEN` written by [`stored_header`].
pub const STORED_HEADER: usize = 5;

/// The largest stored block.
pub const STORED_MAX: usize = u16::MAX as usize;

/// `bytes` deflated (raw deflate, ending with the final block), after their
/// CRC-32 and length (each 4 bytes, little-endian): what [`member`] needs.
pub fn deflate(bytes: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + bytes.len() / 2);
    out.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    let mut encoder = DeflateEncoder::new(out, Compression::default());
    encoder.write_all(bytes).expect("writing to a Vec does not fail");
    encoder.finish().expect("writing to a Vec does not fail").into()
}

/// The stored block header for `len` (at most [`STORED_MAX`]) bytes.
pub fn stored_header(len: usize) -> [u8; STORED_HEADER] {
    let len = u16::try_from(len).expect("a stored block holds at most 65 535 bytes");
    let [l0, l1] = len.to_le_bytes();
    let [n0, n1] = (!len).to_le_bytes();
    [0, l0, l1, n0, n1]
}

/// The parts of one gzip member after `head` (which ends with [`HEADER`],
/// a [`stored_header`] and then `stored`, the bytes of that block): the
/// deflated remembered bytes and the trailer.
pub fn member(stored: &[u8], deflated: &Bytes) -> [Bytes; 2] {
    let crc = u32::from_le_bytes(deflated[..4].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(deflated[4..8].try_into().expect("4 bytes"));
    let mut whole = crc32fast::Hasher::new();
    whole.update(stored);
    whole.combine(&crc32fast::Hasher::new_with_initial_len(crc, u64::from(len)));
    let mut trailer = BytesMut::with_capacity(8);
    trailer.put_u32_le(whole.finalize());
    trailer.put_u32_le((stored.len() as u32).wrapping_add(len));
    [deflated.slice(8..), trailer.freeze()]
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(member: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(member).read_to_end(&mut out).expect("a valid gzip member");
        out
    }

    fn assemble(stored: &[u8], remembered: &[u8]) -> Vec<u8> {
        let [deflated, trailer] = member(stored, &deflate(remembered));
        [&HEADER[..], &stored_header(stored.len()), stored, &deflated, &trailer].concat()
    }

    #[test]
    fn a_member_decodes_to_the_stored_bytes_then_the_remembered() {
        let remembered: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 1000).to_le_bytes()).collect();
        for stored in [&b""[..], b"fresh", &[7u8; STORED_MAX]] {
            let whole = assemble(stored, &remembered);
            assert!(whole.len() < remembered.len() / 2, "compressed");
            assert_eq!(gunzip(&whole), [stored, &remembered[..]].concat());
        }
    }

    #[test]
    fn empty_and_incompressible_answers_still_decode() {
        let noise: Vec<u8> = (0..50_000u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8).collect();
        assert_eq!(gunzip(&assemble(b"x", &noise)), [&b"x"[..], &noise].concat());
        assert_eq!(gunzip(&assemble(b"x", b"")), b"x");
    }
}
