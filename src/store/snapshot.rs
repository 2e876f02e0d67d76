//! The snapshot format: what a snapshot holds and how it becomes bytes.
//! Pure: no files, no clock (`taken_at` is given), no tokio.
//!
//! A snapshot holds each project's weekly aggregates, those of the teams
//! within it (by team name) and the operational records: refresh watermarks, the bounded history of refresh jobs, the
//! definitions the figures were computed with (the one in force first: its
//! version `<number>-<hash>` carries the version counter over a restart)
//! and the audit of definitions activations. Nothing from an issue is in
//! it: no keys or ids, labels, version names, people or text; the names
//! of teams (which `teams(issue)` derives from issues) are the one
//! exception, kept as aggregate keys. The records below are the whole list
//! of what can be stored, and every field is a count, a sketch, an
//! instant, a project key, a team name, a job id or state, a redacted
//! error, or definition text.
//!
//! # Envelope
//!
//! ```text
//! offset  size  field
//!      0     8  magic "DORASNAP"
//!      8     4  format version, u32 little-endian
//!     12     8  payload length in bytes, u64 little-endian
//!     20     4  CRC-32 (IEEE) of the payload, u32 little-endian
//!     24     n  payload: the `Snapshot`, postcard-encoded
//! ```
//!
//! The length catches truncation (and trailing garbage), the CRC catches
//! bit flips and torn writes, the version rejects files this build cannot
//! read instead of misreading them.
//!
//! # Writing only what changed
//!
//! postcard writes a list as its length followed by the items, with nothing
//! between them, so a payload is the concatenation of independently encoded
//! parts. [`Encoder`] keeps each project's encoded record and reuses it
//! while the project's data is the same (`Arc` identity; the store replaces
//! a project's data whole): a snapshot after a refresh of a few projects
//! encodes those few, and the bytes are exactly what [`encode`] writes.
//!
//! # Why postcard
//!
//! postcard is serde's compact binary form: varint integers, no field names,
//! no padding. A weekly aggregate is mostly small counts and sketch values
//! in milliseconds, which varints shrink to 1–5 bytes each: about 105 bytes
//! per (project, week) in `benches/snapshot.rs`, and 1 000 projects × 260
//! weeks save in a few hundred milliseconds. A general compressor on top was
//! left out: it would cost CPU on every write and another dependency for a
//! file that is already small. JSON is about 3× bigger and slower; bincode 2
//! is unmaintained. postcard is not self-describing:
//! any change to these records or to the serde layout of
//! `WeeklyAggregate`/`DurationSketch` changes the format, so
//! `FORMAT_VERSION` must then be bumped; a test pins the encoding of a fixed
//! sample so that such a change cannot go unnoticed.
//!
//! Must not depend on anything of the service but `domain`, and does no I/O
//! (files are `snapshot_dir`'s).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::ProjectData;
use crate::domain::aggregate::{ProjectAggregates, TeamAggregates};
use crate::domain::facts::Millis;

/// First bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"DORASNAP";
/// The format this build writes and reads. Older snapshots (1: no
/// activation audit; 2: no attribution breakdown; 3: no teams) are
/// rejected: postcard is not self-describing, and the first refresh
/// rebuilds every figure.
pub const FORMAT_VERSION: u32 = 4;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 24;
/// Longest error text kept per project in a job record.
pub const MAX_ERROR_LEN: usize = 300;

/// Everything a snapshot holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Increases by one with every snapshot the service writes.
    pub seq: u64,
    /// When it was taken (ms since the Unix epoch).
    pub taken_at: Millis,
    /// Each project's figures, by key.
    pub projects: Vec<ProjectRecord>,
    /// The refresh watermark of each project (the newest `updated` seen).
    pub watermarks: BTreeMap<String, Millis>,
    /// Recent refresh jobs, oldest first.
    pub jobs: Vec<JobRecord>,
    /// The definitions in force and any older ones that projects' figures
    /// were computed with.
    pub definitions: Vec<DefinitionsRecord>,
    /// Recent activations of definitions, oldest first.
    pub activations: Vec<ActivationRecord>,
}

/// One project's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectRecord {
    pub key: String,
    pub last_harvest: Option<Millis>,
    pub definitions_version: String,
    pub weeks: ProjectAggregates,
    /// The weeks of each team within the project, by team name.
    pub teams: TeamAggregates,
}

impl ProjectRecord {
    pub fn of(key: &str, data: &ProjectData) -> Self {
        Self {
            key: key.to_owned(),
            last_harvest: data.last_harvest.map(|t| t.timestamp_millis()),
            definitions_version: data.definitions_version.clone(),
            weeks: data.aggregates.clone(),
            teams: data.teams.clone(),
        }
    }

    pub fn into_data(self) -> (String, ProjectData) {
        let data = ProjectData {
            aggregates: self.weeks,
            teams: self.teams,
            last_harvest: self.last_harvest.and_then(DateTime::<Utc>::from_timestamp_millis),
            definitions_version: self.definitions_version,
        };
        (self.key, data)
    }
}

/// State of a recorded job or of a project in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordedState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// A refresh job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub full: bool,
    pub created: Millis,
    pub started: Option<Millis>,
    pub finished: Option<Millis>,
    pub projects: Vec<JobProjectRecord>,
}

/// One project of a refresh job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProjectRecord {
    pub key: String,
    pub state: RecordedState,
    pub issues_fetched: u64,
    pub pages: u64,
    pub retries: u64,
    /// A redacted error (no issue ids, no data quoted by a hook), at most
    /// `MAX_ERROR_LEN` bytes.
    pub error: Option<String>,
}

/// A set of metric definitions: its version hash and its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionsRecord {
    pub version: String,
    /// (file name, source text), in name order.
    pub files: Vec<(String, String)>,
}

/// One activation of definitions: which version, its content hash, when,
/// and what caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationRecord {
    pub version: String,
    pub hash: String,
    pub at: Millis,
    pub origin: ActivationOrigin,
}

/// What put definitions in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivationOrigin {
    Startup,
    Api,
    File,
}

/// Why bytes are not a usable snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SnapshotError {
    #[error("not a snapshot file (the magic bytes are missing)")]
    NotASnapshot,
    #[error("truncated: {found} bytes where {expected} were written")]
    Truncated { expected: u64, found: u64 },
    #[error("format version {found} is unknown to this build, which reads version {FORMAT_VERSION}")]
    UnknownVersion { found: u32 },
    #[error("{extra} unexpected bytes after the payload")]
    TrailingBytes { extra: u64 },
    #[error("checksum mismatch: the payload is corrupt (CRC-32 {found:08x}, header says {expected:08x})")]
    Checksum { expected: u32, found: u32 },
    #[error("the payload does not decode: {0}")]
    Payload(String),
}

/// The snapshot as bytes: envelope and payload.
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    // `to_stdvec` pushes into a Vec directly; `to_extend` goes through
    // `Extend` byte by byte and is several times slower on large states.
    let payload = postcard::to_stdvec(snapshot).expect("encoding into a Vec cannot fail");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.resize(HEADER_LEN, 0);
    out.extend_from_slice(&payload);
    seal(out)
}

/// Writes the header in front of a payload that starts at `HEADER_LEN`.
fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let payload_len = (out.len() - HEADER_LEN) as u64;
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[0..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[12..20].copy_from_slice(&payload_len.to_le_bytes());
    out[20..24].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The payload checksum recorded in a snapshot's header, if it has one.
pub fn checksum(bytes: &[u8]) -> Option<u32> {
    let field = bytes.get(20..24)?;
    (bytes.starts_with(&MAGIC)).then(|| u32::from_le_bytes(field.try_into().expect("4 bytes")))
}

/// Checks the envelope and decodes the payload.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let payload = verify(bytes)?;
    match postcard::take_from_bytes::<Snapshot>(payload) {
        Ok((snapshot, [])) => Ok(snapshot),
        Ok((_, rest)) => Err(SnapshotError::TrailingBytes { extra: rest.len() as u64 }),
        Err(e) => Err(SnapshotError::Payload(e.to_string())),
    }
}

/// Checks the envelope only (magic, version, length, checksum) and returns
/// the payload: cheaper than `decode` when the content is not needed.
pub fn verify(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] || bytes.is_empty() {
        return Err(SnapshotError::NotASnapshot);
    }
    if bytes.len() < 12 {
        return Err(SnapshotError::Truncated { expected: HEADER_LEN as u64, found: bytes.len() as u64 });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(SnapshotError::UnknownVersion { found: version });
    }
    if bytes.len() < HEADER_LEN {
        return Err(SnapshotError::Truncated { expected: HEADER_LEN as u64, found: bytes.len() as u64 });
    }
    let payload_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let expected_crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER_LEN..];
    let found_len = payload.len() as u64;
    if found_len < payload_len {
        return Err(SnapshotError::Truncated { expected: HEADER_LEN as u64 + payload_len, found: bytes.len() as u64 });
    }
    if found_len > payload_len {
        return Err(SnapshotError::TrailingBytes { extra: found_len - payload_len });
    }
    let found_crc = crc32fast::hash(payload);
    if found_crc != expected_crc {
        return Err(SnapshotError::Checksum { expected: expected_crc, found: found_crc });
    }
    Ok(payload)
}

/// [`ProjectRecord`] borrowed from the store: the same encoding, no copy.
#[derive(Serialize)]
struct ProjectRecordRef<'a> {
    key: &'a str,
    last_harvest: Option<Millis>,
    definitions_version: &'a str,
    weeks: &'a ProjectAggregates,
    teams: &'a TeamAggregates,
}

/// A snapshot whose projects are the store's own data.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotParts<'a> {
    pub seq: u64,
    pub taken_at: Millis,
    /// Each project's data, by key, in key order.
    pub projects: &'a [(String, Arc<ProjectData>)],
    pub watermarks: &'a BTreeMap<String, Millis>,
    pub jobs: &'a [JobRecord],
    pub definitions: &'a [DefinitionsRecord],
    pub activations: &'a [ActivationRecord],
}

impl Snapshot {
    /// This snapshot's parts, with `projects` (the same content as
    /// `self.projects`, shared) in place of its project records.
    pub fn parts<'a>(&'a self, projects: &'a [(String, Arc<ProjectData>)]) -> SnapshotParts<'a> {
        SnapshotParts {
            seq: self.seq,
            taken_at: self.taken_at,
            projects,
            watermarks: &self.watermarks,
            jobs: &self.jobs,
            definitions: &self.definitions,
            activations: &self.activations,
        }
    }
}

/// Encodes snapshots, reusing each project's encoded record while its data
/// stays the same (see the module documentation).
#[derive(Debug, Default)]
pub struct Encoder {
    /// Per project: the data last encoded (held weakly, so it is freed when
    /// the store lets go of it, and its address cannot be reused while this
    /// is held) and its record's bytes.
    records: HashMap<String, (Weak<ProjectData>, Vec<u8>)>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The snapshot as bytes, identical to [`encode`] of the same content.
    /// Returns how many projects had to be encoded anew.
    pub fn encode(&mut self, parts: &SnapshotParts<'_>) -> (Vec<u8>, usize) {
        let mut fresh = 0;
        let mut records = HashMap::with_capacity(parts.projects.len());
        for (key, data) in parts.projects {
            let reused = self.records.remove(key).filter(|(held, _)| std::ptr::eq(held.as_ptr(), Arc::as_ptr(data)));
            let bytes = match reused {
                Some((_, bytes)) => bytes,
                None => {
                    fresh += 1;
                    let record = ProjectRecordRef {
                        key,
                        last_harvest: data.last_harvest.map(|t| t.timestamp_millis()),
                        definitions_version: &data.definitions_version,
                        weeks: &data.aggregates,
                        teams: &data.teams,
                    };
                    postcard::to_stdvec(&record).expect("encoding into a Vec cannot fail")
                }
            };
            records.insert(key.clone(), (Arc::downgrade(data), bytes));
        }
        self.records = records;

        let project_bytes: usize = self.records.values().map(|(_, b)| b.len()).sum();
        let mut out = Vec::with_capacity(HEADER_LEN + project_bytes + 4096);
        out.resize(HEADER_LEN, 0);
        // The fields of `Snapshot` in order; a list is its length, then its
        // items.
        out = append(out, &parts.seq);
        out = append(out, &parts.taken_at);
        out = append(out, &parts.projects.len());
        for (key, _) in parts.projects {
            out.extend_from_slice(&self.records[key].1);
        }
        out = append(out, parts.watermarks);
        out = append(out, parts.jobs);
        out = append(out, parts.definitions);
        out = append(out, parts.activations);
        (seal(out), fresh)
    }
}

fn append<T: Serialize + ?Sized>(out: Vec<u8>, value: &T) -> Vec<u8> {
    postcard::to_extend(value, out).expect("encoding into a Vec cannot fail")
}

/// Cuts an error text to `MAX_ERROR_LEN` bytes on a character boundary.
pub fn bounded_error(text: &str) -> String {
    if text.len() <= MAX_ERROR_LEN {
        return text.to_owned();
    }
    let mut end = MAX_ERROR_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::aggregate::WeeklyAggregate;
    use crate::domain::time::IsoWeek;

    /// A small snapshot with every kind of record and both sketch forms.
    pub(crate) fn sample() -> Snapshot {
        let mut weeks = ProjectAggregates::new();
        for w in 0..3 {
            let mut a = WeeklyAggregate { deployments: 3 + w, deployment_days: 0b10101, completed: 7, ..Default::default() };
            for v in 0..(if w == 2 { 600 } else { 5 }) {
                a.lead_time.add(3_600_000 * i64::from(v + 1));
            }
            a.time_to_restore.add(90_000);
            weeks.insert(IsoWeek::parse(&format!("2026-W0{}", w + 1)).unwrap(), a);
        }
        let mut payments = weeks.clone();
        payments.retain(|w, _| w.to_string() != "2026-W02");
        Snapshot {
            seq: 42,
            taken_at: 1_767_225_600_000,
            projects: vec![ProjectRecord {
                key: "OPS".into(),
                last_harvest: Some(1_767_225_000_000),
                definitions_version: "abc123".into(),
                weeks,
                teams: [("payments".to_string(), payments)].into(),
            }],
            watermarks: [("OPS".to_string(), 1_767_224_000_000)].into(),
            jobs: vec![JobRecord {
                id: "job-1-0000abcd".into(),
                full: true,
                created: 1_767_220_000_000,
                started: Some(1_767_220_000_100),
                finished: None,
                projects: vec![JobProjectRecord {
                    key: "OPS".into(),
                    state: RecordedState::Failed,
                    issues_fetched: 12,
                    pages: 2,
                    retries: 1,
                    error: Some("GET /rest/api/3/search/jql: HTTP 503".into()),
                }],
            }],
            definitions: vec![DefinitionsRecord {
                version: "abc123".into(),
                files: vec![("work.rhai".into(), "fn is_work(issue) { true }".into())],
            }],
            activations: vec![ActivationRecord {
                version: "2-abc123".into(),
                hash: "abc123".into(),
                at: 1_767_220_000_000,
                origin: ActivationOrigin::Api,
            }],
        }
    }

    #[test]
    fn a_snapshot_survives_encoding() {
        let s = sample();
        assert_eq!(decode(&encode(&s)).unwrap(), s);
        assert_eq!(decode(&encode(&Snapshot::default())).unwrap(), Snapshot::default());
    }

    /// Guards the format: if this fails, the encoding changed (a record, or
    /// the serde layout of an aggregate or sketch). Bump `FORMAT_VERSION`,
    /// then update the expected values.
    #[test]
    fn the_encoding_is_pinned_to_format_version_4() {
        let bytes = encode(&sample());
        assert_eq!(FORMAT_VERSION, 4);
        assert_eq!((bytes.len(), checksum(&bytes).unwrap()), (PINNED_LEN, PINNED_CRC), "format changed: bump FORMAT_VERSION");
    }

    const PINNED_LEN: usize = 1456;
    const PINNED_CRC: u32 = 3_192_470_809;

    fn check(bytes: &[u8], expected: impl Fn(&SnapshotError) -> bool) {
        let e = decode(bytes).expect_err("must be rejected");
        assert!(expected(&e), "unexpected error: {e}");
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            check(&bytes[..len], |e| matches!(e, SnapshotError::Truncated { .. } | SnapshotError::NotASnapshot));
        }
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let bytes = encode(&sample());
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(decode(&b).is_err(), "flip of bit {bit} in byte {i} went unnoticed");
            }
        }
    }

    #[test]
    fn header_problems_are_named() {
        let bytes = encode(&sample());
        check(b"", |e| *e == SnapshotError::NotASnapshot);
        check(b"{\"json\": true}", |e| *e == SnapshotError::NotASnapshot);
        let mut future = bytes.clone();
        future[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        check(&future, |e| *e == SnapshotError::UnknownVersion { found: FORMAT_VERSION + 1 });
        assert!(decode(&future).unwrap_err().to_string().contains("format version 5 is unknown"));
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"junk");
        check(&longer, |e| *e == SnapshotError::TrailingBytes { extra: 4 });
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 0x40;
        check(&flipped, |e| matches!(e, SnapshotError::Checksum { .. }));
    }

    #[test]
    fn a_payload_with_a_valid_checksum_but_bad_content_is_rejected() {
        let mut out = vec![0u8; HEADER_LEN];
        out.extend_from_slice(&[0xff; 16]);
        check(&seal(out), |e| matches!(e, SnapshotError::Payload(_)));
    }

    #[test]
    fn the_encoder_writes_the_same_bytes_and_reencodes_only_changed_projects() {
        let mut s = sample();
        let (key, data) = s.projects[0].clone().into_data();
        let mut other = data.clone();
        other.aggregates.retain(|w, _| w.to_string() != "2026-W02");
        s.projects.push(ProjectRecord::of("PAY", &other));
        let mut projects = vec![(key, Arc::new(data)), ("PAY".to_string(), Arc::new(other))];
        let mut encoder = Encoder::new();
        let (bytes, fresh) = encoder.encode(&s.parts(&projects));
        assert_eq!((bytes.as_slice(), fresh), (encode(&s).as_slice(), 2));
        let (again, fresh) = encoder.encode(&s.parts(&projects));
        assert_eq!((again, fresh), (bytes, 0), "nothing changed: nothing encoded anew");
        // One project replaced (as a refresh does): only it is encoded.
        let mut changed = (*projects[1].1).clone();
        changed.definitions_version = "def456".into();
        s.projects[1].definitions_version = "def456".into();
        projects[1].1 = Arc::new(changed);
        let (bytes, fresh) = encoder.encode(&s.parts(&projects));
        assert_eq!((bytes.as_slice(), fresh), (encode(&s).as_slice(), 1));
        assert_eq!(decode(&bytes).unwrap(), s);
        // A project dropped from the store is dropped from the snapshot.
        s.projects.truncate(1);
        let (bytes, fresh) = encoder.encode(&s.parts(&projects[..1]));
        assert_eq!((decode(&bytes).unwrap(), fresh), (s, 0));
    }

    #[test]
    fn project_data_round_trips_through_its_record() {
        let s = sample();
        let (key, data) = s.projects[0].clone().into_data();
        assert_eq!(ProjectRecord::of(&key, &data), s.projects[0]);
    }

    #[test]
    fn long_errors_are_bounded_on_a_char_boundary() {
        let long = "é".repeat(400);
        let cut = bounded_error(&long);
        assert!(cut.len() <= MAX_ERROR_LEN + '…'.len_utf8());
        assert_eq!(bounded_error("short"), "short");
    }
}
