//! `GetMetrics` answers remembered in the store's answer caches
//! (`store::answers`): the whole answer keyed by the whole encoded request
//! and the day it is asked on, and the AI impact keyed by what it depends
//! on (projects, team, period, rollout date), so that questions differing only in
//! other fields share it. Entries hold encoded protobuf (and a large
//! answer's deflated form, for clients that accept gzip); both caches forget
//! everything when the store's version moves.
//!
//! Freshness is not remembered: ages change by the second, so it is
//! sent with every answer (`Answer`). A protobuf message may
//! carry its fields in any order, and a field absent from the remembered
//! bytes and written before them decodes as if it had been among them.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use chrono::{Datelike, NaiveDate};
use prost::Message;
use tonic::Status;

use crate::domain::aggregate::ProjectAggregates;
use crate::domain::period::Period;
use crate::proto::{AiImpact, Freshness, GetMetricsRequest};
use crate::store::Store;
use crate::telemetry;

use super::gzip;

/// What a `GetMetrics` answer depends on besides the store: the request,
/// every field of it, and the local day (which resolves default periods
/// and says whether a period is partial).
pub fn question(request: &GetMetricsRequest, today: NaiveDate) -> Bytes {
    let mut key = Vec::with_capacity(4 + request.encoded_len());
    key.extend_from_slice(&today.num_days_from_ce().to_le_bytes());
    request.encode(&mut key).expect("a Vec grows as needed");
    key.into()
}

/// `GetMetricsResponse.freshness`.
const FRESHNESS_FIELD: u32 = 7;

/// The encoded answer remembered for `question` at store `version`
/// (without freshness).
pub fn recall(store: &Store, version: u64, question: &[u8]) -> Option<Bytes> {
    store.answers().get(version, question)
}

/// The answer caches' figures, for `/metrics` (counted by the caches
/// themselves: recording each lookup would cost more than the lookup).
pub fn sample(store: &Store) {
    for (name, cache) in [("answers", store.answers()), ("ai_impact", store.parts())] {
        if cache.enabled() {
            telemetry::answer_cache(name, cache.stats());
        }
    }
}

/// Remembers an encoded answer without freshness for `question`.
pub fn remember(store: &Store, version: u64, question: Bytes, answer: Bytes) {
    if store.answers().enabled() {
        store.answers().put(version, question, answer);
    }
}

/// Remembered answers at least this long are also kept deflated, for
/// clients that accept gzip (`grpc-accept-encoding`): a weekly series of
/// ten projects is 120 kB, a 13-week answer of one project 3 kB.
const DEFLATE_FROM: usize = 8 * 1024;

/// The question of the deflated form of `question`'s answer: a valid
/// protobuf encoding never ends with a byte whose high bit is set, so no
/// question ends with this one.
const DEFLATED: u8 = 0xff;

/// The remembered `answer` to `question` deflated (`gzip::deflate`), for
/// a client that accepts gzip: remembered, or deflated and remembered.
/// None for short answers, for answers that do not shrink, and with the
/// answer cache off (deflating costs more than sending).
pub fn deflated(store: &Store, version: u64, question: &[u8], answer: &[u8]) -> Option<Bytes> {
    let cache = store.answers();
    if answer.len() < DEFLATE_FROM || !cache.enabled() {
        return None;
    }
    let key = [question, &[DEFLATED]].concat();
    let deflated = cache.get_uncounted(version, &key).unwrap_or_else(|| {
        let deflated = gzip::deflate(answer);
        // Remembered as empty when it does not pay.
        let deflated = if deflated.len() < answer.len() * 9 / 10 { deflated } else { Bytes::new() };
        cache.put(version, key.into(), deflated.clone());
        deflated
    });
    (!deflated.is_empty()).then_some(deflated)
}

/// A `GetMetrics` answer as sent: the encoded freshness of this moment,
/// then the encoded answer without freshness (remembered, or just
/// computed), shared, never copied, or its deflated form. The freshness
/// goes first so that the gRPC route (`encoded`) sends the answer as a
/// small buffer with the message's gRPC prefix and the freshness, then the
/// remembered bytes as they are (with gzip: the deflated bytes, then the
/// gzip trailer).
#[derive(Debug, Clone)]
pub struct Answer {
    /// `HEADROOM` bytes (for the gRPC prefix, and with gzip the gzip header
    /// and a stored block's header, written by `grpc_message`), then the
    /// encoded freshness.
    head: BytesMut,
    remembered: Bytes,
    deflated: Option<Bytes>,
}

/// The length of a gRPC message prefix: a compression flag and the
/// message's length (big-endian `u32`).
const GRPC_PREFIX: usize = 5;

const HEADROOM: usize = GRPC_PREFIX + gzip::HEADER.len() + gzip::STORED_HEADER;

/// A gRPC answer: its body's pieces in order, and its `grpc-encoding`.
pub struct GrpcMessage {
    pub pieces: [Option<Bytes>; 3],
    pub encoding: Option<&'static str>,
}

impl Answer {
    /// `freshness` with `answer` (without freshness) after it.
    pub fn new(answer: Bytes, freshness: &Freshness) -> Self {
        let mut head = BytesMut::with_capacity(HEADROOM + freshness.encoded_len() + 8);
        head.put_bytes(0, HEADROOM);
        prost::encoding::message::encode(FRESHNESS_FIELD, freshness, &mut head);
        Self { head, remembered: answer, deflated: None }
    }

    /// Sent gzip-compressed over gRPC, from the remembered bytes `deflated`
    /// (`deflated`).
    pub fn with_deflated(self, deflated: Option<Bytes>) -> Self {
        Self { deflated, ..self }
    }

    /// The encoded message, as one buffer without a copy.
    pub fn as_buf(&self) -> impl Buf + '_ {
        self.head[HEADROOM..].chain(self.remembered.chunk())
    }

    /// The answer as one gRPC message: uncompressed, the prefix and the
    /// freshness, then the remembered bytes; gzip-compressed (when
    /// deflated), the prefix, the gzip header and the freshness as a stored
    /// block, then the deflated bytes and the gzip trailer.
    pub fn grpc_message(self) -> Result<GrpcMessage, Status> {
        let Self { mut head, remembered, deflated } = self;
        let freshness = head.len() - HEADROOM;
        let Some(deflated) = deflated.filter(|_| freshness <= gzip::STORED_MAX) else {
            head.advance(HEADROOM - GRPC_PREFIX);
            let len = head.len() - GRPC_PREFIX + remembered.len();
            write_prefix(&mut head[..GRPC_PREFIX], false, len)?;
            return Ok(GrpcMessage { pieces: [Some(head.freeze()), Some(remembered), None], encoding: None });
        };
        let [deflated, trailer] = gzip::member(&head[HEADROOM..], &deflated);
        let len = head.len() - GRPC_PREFIX + deflated.len() + trailer.len();
        write_prefix(&mut head[..GRPC_PREFIX], true, len)?;
        head[GRPC_PREFIX..GRPC_PREFIX + gzip::HEADER.len()].copy_from_slice(&gzip::HEADER);
        head[GRPC_PREFIX + gzip::HEADER.len()..HEADROOM].copy_from_slice(&gzip::stored_header(freshness));
        Ok(GrpcMessage { pieces: [Some(head.freeze()), Some(deflated), Some(trailer)], encoding: Some("gzip") })
    }
}

/// A gRPC message prefix: the compression flag, the length.
fn write_prefix(prefix: &mut [u8], compressed: bool, len: usize) -> Result<(), Status> {
    let len = u32::try_from(len)
        .map_err(|_| Status::resource_exhausted(format!("an answer of {len} bytes is too large to send")))?;
    prefix[0] = u8::from(compressed);
    prefix[1..].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The AI impact section for these projects (or one team within them),
/// period and rollout date: remembered, or computed and remembered.
pub fn ai_impact(
    store: &Store,
    version: u64,
    keys: &[String],
    team: Option<&str>,
    projects: &[&ProjectAggregates],
    period: &Period,
    rollout: Option<NaiveDate>,
) -> AiImpact {
    let cache = store.parts();
    if !cache.enabled() {
        return super::impact::ai_impact(projects, period, rollout);
    }
    let mut key = Vec::with_capacity(16 + keys.iter().map(|k| k.len() + 1).sum::<usize>());
    key.extend_from_slice(&period.first.monday().num_days_from_ce().to_le_bytes());
    key.extend_from_slice(&period.weeks.to_le_bytes());
    key.extend_from_slice(&rollout.map_or(i32::MIN, |d| d.num_days_from_ce()).to_le_bytes());
    for k in keys {
        key.extend_from_slice(k.as_bytes());
        key.push(b',');
    }
    // A project key never holds `/`; the team name ends the key.
    if let Some(team) = team {
        key.push(b'/');
        key.extend_from_slice(team.as_bytes());
    }
    let found = cache.get(version, &key);
    if let Some(impact) = found.and_then(|bytes| AiImpact::decode(bytes).ok()) {
        return impact;
    }
    let impact = super::impact::ai_impact(projects, period, rollout);
    cache.put(version, key.into(), impact.encode_to_vec().into());
    impact
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GetMetricsResponse, ProjectFreshness};

    fn framed(answer: Answer) -> (GrpcMessage, Vec<u8>) {
        let message = answer.grpc_message().unwrap();
        let bytes: Vec<u8> = message.pieces.iter().flatten().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize, bytes.len() - 5);
        (message, bytes)
    }

    #[test]
    fn prepended_freshness_decodes_as_the_field() {
        let answer = GetMetricsResponse { levels_source: "DORA".into(), ..Default::default() };
        let freshness = Freshness {
            projects: vec![ProjectFreshness { project_key: "OPS".into(), age_seconds: Some(42), ..Default::default() }],
            definitions_version: "abc".into(),
        };
        let sent = Answer::new(answer.encode_to_vec().into(), &freshness);
        let whole = GetMetricsResponse { freshness: Some(freshness), ..answer };
        assert_eq!(GetMetricsResponse::decode(sent.as_buf()).unwrap(), whole);
        // As sent over gRPC: uncompressed, its length, the message.
        let (message, bytes) = framed(sent);
        assert_eq!((bytes[0], message.encoding), (0, None));
        assert_eq!(GetMetricsResponse::decode(&bytes[5..]).unwrap(), whole);
    }

    #[test]
    fn a_deflated_answer_is_sent_as_one_gzip_member() {
        let answer = GetMetricsResponse { levels_source: "DORA ".repeat(4000), ..Default::default() };
        let remembered: Bytes = answer.encode_to_vec().into();
        let freshness = Freshness { definitions_version: "abc".into(), ..Default::default() };
        let whole = GetMetricsResponse { freshness: Some(freshness.clone()), ..answer };
        let sent = Answer::new(remembered.clone(), &freshness).with_deflated(Some(gzip::deflate(&remembered)));
        let (message, bytes) = framed(sent);
        assert_eq!((bytes[0], message.encoding), (1, Some("gzip")));
        assert!(bytes.len() < remembered.len() / 10);
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[5..]), &mut decoded).unwrap();
        assert_eq!(GetMetricsResponse::decode(&decoded[..]).unwrap(), whole);
    }
}
