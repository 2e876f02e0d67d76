//! `GetMetrics` answers remembered in the store's answer caches
//! (`store::answers`): the whole answer keyed by the whole encoded request
//! and the day it is asked on, and the AI impact keyed by what it depends
//! on (projects, team, period, rollout date), so that questions differing only in
//! other fields share it. Entries hold encoded protobuf; both caches forget
//! everything when the store's version moves.
//!
//! Freshness is not remembered: ages change by the second, so it is
//! sent after every answer (`Answer`). A protobuf message may
//! carry its fields in any order, and a field absent from the remembered
//! bytes and appended after them decodes as if it had been there all along.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use chrono::{Datelike, NaiveDate};
use prost::Message;

use crate::domain::aggregate::ProjectAggregates;
use crate::domain::period::Period;
use crate::proto::{AiImpact, Freshness, GetMetricsRequest};
use crate::store::Store;
use crate::telemetry;

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

/// A `GetMetrics` answer as sent: the encoded answer without freshness
/// (remembered, or just computed) and the encoded freshness of this
/// moment, which goes after it. The remembered bytes are shared, never
/// copied to append the freshness.
#[derive(Debug, Clone)]
pub struct Answer {
    remembered: Bytes,
    freshness: Bytes,
}

impl Answer {
    /// `answer` (without freshness) with `freshness` after it.
    pub fn new(answer: Bytes, freshness: &Freshness) -> Self {
        let mut out = BytesMut::with_capacity(freshness.encoded_len() + 8);
        prost::encoding::message::encode(FRESHNESS_FIELD, freshness, &mut out);
        Self { remembered: answer, freshness: out.freeze() }
    }

    /// The encoded message, as one buffer without a copy.
    pub fn as_buf(&self) -> impl Buf + '_ {
        self.remembered.chunk().chain(self.freshness.chunk())
    }

    /// Writes the encoded message (one copy of each part).
    pub fn write_to(&self, dst: &mut impl BufMut) {
        dst.put_slice(&self.remembered);
        dst.put_slice(&self.freshness);
    }
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

    #[test]
    fn appended_freshness_decodes_as_the_field() {
        let answer = GetMetricsResponse { levels_source: "DORA".into(), ..Default::default() };
        let freshness = Freshness {
            projects: vec![ProjectFreshness { project_key: "OPS".into(), age_seconds: Some(42), ..Default::default() }],
            definitions_version: "abc".into(),
        };
        let sent = Answer::new(answer.encode_to_vec().into(), &freshness);
        let mut written = Vec::new();
        sent.write_to(&mut written);
        let whole = GetMetricsResponse { freshness: Some(freshness), ..answer };
        assert_eq!(GetMetricsResponse::decode(sent.as_buf()).unwrap(), whole);
        assert_eq!(GetMetricsResponse::decode(&written[..]).unwrap(), whole);
    }
}
