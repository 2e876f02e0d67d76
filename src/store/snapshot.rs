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
//!     24     n  payload
//! ```
//!
//! The length catches truncation (and trailing garbage), the CRC catches
//! bit flips and torn writes, the version rejects files this build cannot
//! read instead of misreading them.
//!
//! # Payload
//!
//! The fields of [`Snapshot`] in order, each postcard-encoded, with the
//! projects framed so that they can be found without being decoded:
//!
//! ```text
//! seq, taken_at                 varints
//! number of projects            varint
//! per project: length, record   varint, then the postcard `ProjectRecord`
//! watermarks, jobs, definitions, activations
//! ```
//!
//! A large snapshot's records are decoded (and encoded) on several threads,
//! each taking a run of projects: decoding aggregates into maps and
//! sketches, not reading the file, is what a load spends its time on.
//!
//! # Writing only what changed
//!
//! The payload is the concatenation of independently encoded parts.
//! [`Encoder`] keeps each project's encoded record and reuses it while the
//! project's data is the same (`Arc` identity; the store replaces a
//! project's data whole): a snapshot after a refresh of a few projects
//! encodes those few, and the bytes are exactly what [`encode`] writes.
//! The parts go to the file as they are ([`Encoded::pieces`]), never
//! copied into one buffer: each record's CRC-32 is computed when it is
//! encoded, and the payload's is combined from them, so neither a copy
//! nor a second pass over the unchanged records is made.
//!
//! # Why postcard
//!
//! postcard is serde's compact binary form: varint integers, no field names,
//! no padding. A weekly aggregate is mostly small counts and sketch values
//! in milliseconds, which varints shrink to 1–5 bytes each: about 105 bytes
//! per (project, week) in `benches/snapshot.rs`, where 1 000 projects × 260
//! weeks save in well under a tenth of a second. A general compressor on top was
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
/// activation audit; 2: no attribution breakdown; 3: no teams; 4: project
/// records not framed by their length) are rejected: postcard is not
/// self-describing, and the first refresh rebuilds every figure.
pub const FORMAT_VERSION: u32 = 5;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 24;
/// Longest error text kept per project in a job record.
pub const MAX_ERROR_LEN: usize = 300;

/// Everything a snapshot holds.
#[derive(Debug, Clone, Default, PartialEq)]
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
    let records = map_in_runs(
        &snapshot.projects,
        threads_for(snapshot.projects.iter().map(|p| weight(&p.weeks, &p.teams)).sum()),
        |p| weight(&p.weeks, &p.teams),
        |p| Framed::new(p, weight(&p.weeks, &p.teams)),
    );
    Encoded::new(snapshot.seq, snapshot.taken_at, records.iter().collect(), &snapshot.tail()).to_vec()
}

/// The fields of [`Snapshot`] after its projects, borrowed.
#[derive(Serialize)]
struct TailRef<'a> {
    watermarks: &'a BTreeMap<String, Millis>,
    jobs: &'a [JobRecord],
    definitions: &'a [DefinitionsRecord],
    activations: &'a [ActivationRecord],
}

/// The fields of [`Snapshot`] after its projects.
#[derive(Deserialize)]
struct Tail {
    watermarks: BTreeMap<String, Millis>,
    jobs: Vec<JobRecord>,
    definitions: Vec<DefinitionsRecord>,
    activations: Vec<ActivationRecord>,
}

impl Snapshot {
    fn tail(&self) -> TailRef<'_> {
        TailRef {
            watermarks: &self.watermarks,
            jobs: &self.jobs,
            definitions: &self.definitions,
            activations: &self.activations,
        }
    }
}

/// A snapshot encoded, as the pieces its file is made of: the header, the
/// numbers (`seq`, `taken_at`), then the content (the number of projects,
/// each project's framed record, the tail; see "Payload" in the module
/// documentation). The records are the encoder's own: the file is written
/// from the pieces, and no copy of the whole is made.
#[derive(Debug)]
pub struct Encoded<'a> {
    header: [u8; HEADER_LEN],
    numbers: Vec<u8>,
    count: Vec<u8>,
    records: Vec<&'a Framed>,
    tail: Vec<u8>,
    /// CRC-32 of the content and its length.
    content: crc32fast::Hasher,
}

impl<'a> Encoded<'a> {
    fn new(seq: u64, taken_at: Millis, records: Vec<&'a Framed>, tail: &TailRef<'_>) -> Self {
        let count = postcard::to_stdvec(&records.len()).expect("encoding into a Vec cannot fail");
        let tail = postcard::to_stdvec(tail).expect("encoding into a Vec cannot fail");
        let mut content = crc32fast::Hasher::new();
        content.update(&count);
        for record in &records {
            content.combine(&crc32fast::Hasher::new_with_initial_len(record.crc, record.bytes().len() as u64));
        }
        content.update(&tail);
        let mut encoded = Self { header: [0; HEADER_LEN], numbers: Vec::new(), count, records, tail, content };
        encoded.number(seq, taken_at);
        encoded
    }

    /// Gives the snapshot its sequence number and date (the header follows).
    pub fn number(&mut self, seq: u64, taken_at: Millis) {
        self.numbers = postcard::to_stdvec(&(seq, taken_at)).expect("encoding into a Vec cannot fail");
        let mut crc = crc32fast::Hasher::new();
        crc.update(&self.numbers);
        crc.combine(&self.content);
        let payload_len = self.numbers.len() as u64 + self.content.total_len();
        self.header[0..8].copy_from_slice(&MAGIC);
        self.header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        self.header[12..20].copy_from_slice(&payload_len.to_le_bytes());
        self.header[20..24].copy_from_slice(&crc.finalize().to_le_bytes());
    }

    /// The payload checksum the header records.
    pub fn checksum(&self) -> u32 {
        checksum(&self.header).expect("a header")
    }

    /// A checksum of everything but the sequence number and the date: the
    /// same for snapshots of the same state.
    pub fn content_checksum(&self) -> u32 {
        self.content.clone().finalize()
    }

    /// How many projects it holds.
    pub fn projects(&self) -> usize {
        self.records.len()
    }

    /// The file's length in bytes.
    pub fn file_len(&self) -> usize {
        HEADER_LEN + self.numbers.len() + self.content.total_len() as usize
    }

    /// The file's bytes, in pieces to be written one after the other.
    pub fn pieces(&self) -> Vec<&[u8]> {
        let mut pieces = Vec::with_capacity(self.records.len() + 4);
        pieces.extend([&self.header[..], &self.numbers, &self.count]);
        pieces.extend(self.records.iter().map(|r| r.bytes()));
        pieces.push(&self.tail);
        pieces
    }

    /// The file's bytes in one piece.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.file_len());
        for piece in self.pieces() {
            out.extend_from_slice(piece);
        }
        out
    }
}

/// Room in front of a record for its length: a varint of at most 10 bytes.
const LENGTH_ROOM: usize = 10;

/// One project's record as the payload holds it: its length (varint), then
/// the postcard `ProjectRecord`.
#[derive(Debug)]
struct Framed {
    /// The framed record is `bytes[start..]` (the room for the length is
    /// filled from its end).
    bytes: Vec<u8>,
    start: usize,
    /// CRC-32 of the framed record, computed while its bytes are in the
    /// cache of the thread that encoded it.
    crc: u32,
}

impl Framed {
    fn new(record: &impl Serialize, size_hint: usize) -> Self {
        let mut out = Vec::with_capacity(LENGTH_ROOM + size_hint);
        out.resize(LENGTH_ROOM, 0);
        let mut bytes = postcard::to_extend(record, out).expect("encoding into a Vec cannot fail");
        let mut length = [0; LENGTH_ROOM];
        let length = postcard::to_slice(&(bytes.len() - LENGTH_ROOM), &mut length).expect("a varint fits in 10 bytes");
        let start = LENGTH_ROOM - length.len();
        bytes[start..LENGTH_ROOM].copy_from_slice(length);
        bytes.shrink_to_fit();
        let crc = crc32fast::hash(&bytes[start..]);
        Self { bytes, start, crc }
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// Roughly how many bytes a project's record takes, a little more than
/// most: 128 per week.
fn weight(weeks: &ProjectAggregates, teams: &TeamAggregates) -> usize {
    128 * (1 + weeks.len() + teams.values().map(BTreeMap::len).sum::<usize>())
}

/// Below this many bytes of records, one thread encodes or decodes them
/// all (a thread costs more than it saves).
const PARALLEL_FROM_BYTES: usize = 1 << 20;

/// How many threads share the records of `bytes` bytes.
fn threads_for(bytes: usize) -> usize {
    if bytes < PARALLEL_FROM_BYTES {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
}

/// `f` of each item, in order, computed on up to `threads` threads, each
/// taking a contiguous run of items of about equal `weight`.
fn map_in_runs<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    weight: impl Fn(&T) -> usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < 2 {
        return items.iter().map(f).collect();
    }
    let total: usize = items.iter().map(&weight).sum();
    let mut runs = Vec::with_capacity(threads);
    let (mut start, mut seen) = (0, 0);
    for (n, item) in items.iter().enumerate() {
        seen += weight(item);
        if seen * threads >= total * (runs.len() + 1) && runs.len() + 1 < threads {
            runs.push(&items[start..=n]);
            start = n + 1;
        }
    }
    runs.push(&items[start..]);
    let f = &f;
    std::thread::scope(|scope| {
        let others: Vec<_> =
            runs[1..].iter().map(|run| scope.spawn(move || run.iter().map(f).collect::<Vec<R>>())).collect();
        let mut out: Vec<R> = runs[0].iter().map(f).collect();
        for other in others {
            out.extend(other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        out
    })
}

/// The payload checksum recorded in a snapshot's header, if it has one.
pub fn checksum(bytes: &[u8]) -> Option<u32> {
    let field = bytes.get(20..24)?;
    (bytes.starts_with(&MAGIC)).then(|| u32::from_le_bytes(field.try_into().expect("4 bytes")))
}

/// Checks the envelope and decodes the payload, the project records on
/// several threads when they are many.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let payload = verify(bytes)?;
    let (seq, rest) = take::<u64>(payload)?;
    let (taken_at, rest) = take::<Millis>(rest)?;
    let (count, mut rest) = take::<usize>(rest)?;
    let mut records: Vec<&[u8]> = Vec::with_capacity(count.min(rest.len()));
    for _ in 0..count {
        let (len, after) = take::<usize>(rest)?;
        if len > after.len() {
            return Err(SnapshotError::Payload(format!("project record {} runs past the end", records.len() + 1)));
        }
        records.push(&after[..len]);
        rest = &after[len..];
    }
    let (tail, rest) = take::<Tail>(rest)?;
    if !rest.is_empty() {
        return Err(SnapshotError::TrailingBytes { extra: rest.len() as u64 });
    }
    let threads = threads_for(records.iter().map(|r| r.len()).sum());
    let projects = map_in_runs(
        &records,
        threads,
        |r| r.len(),
        |r| match postcard::take_from_bytes::<ProjectRecord>(r) {
            Ok((record, [])) => Ok(record),
            Ok((record, extra)) => Err(SnapshotError::Payload(format!(
                "project record {}: {} unexpected bytes at its end",
                record.key,
                extra.len()
            ))),
            Err(e) => Err(SnapshotError::Payload(format!("a project record: {e}"))),
        },
    )
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let Tail { watermarks, jobs, definitions, activations } = tail;
    Ok(Snapshot { seq, taken_at, projects, watermarks, jobs, definitions, activations })
}

/// One postcard value from the front of `bytes`, and the bytes after it.
fn take<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8]), SnapshotError> {
    postcard::take_from_bytes(bytes).map_err(|e| SnapshotError::Payload(e.to_string()))
}

/// Checks the envelope only (magic, version, length, checksum) and returns
/// the payload: cheaper than `decode` when the content is not needed.
pub fn verify(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    let expected_crc = verify_header(&bytes[..bytes.len().min(HEADER_LEN)], bytes.len() as u64)?;
    let payload = &bytes[HEADER_LEN..];
    let found_crc = crc32fast::hash(payload);
    if found_crc != expected_crc {
        return Err(SnapshotError::Checksum { expected: expected_crc, found: found_crc });
    }
    Ok(payload)
}

/// Checks what the start of a snapshot (its first `HEADER_LEN` bytes, or
/// all of a shorter file) says against the file's length: magic, version,
/// payload length. Catches a foreign or truncated file without reading the
/// payload; returns the payload checksum the header records.
pub fn verify_header(head: &[u8], file_len: u64) -> Result<u32, SnapshotError> {
    let magic_len = head.len().min(MAGIC.len());
    if head[..magic_len] != MAGIC[..magic_len] || head.is_empty() {
        return Err(SnapshotError::NotASnapshot);
    }
    if head.len() < 12 {
        return Err(SnapshotError::Truncated { expected: HEADER_LEN as u64, found: file_len });
    }
    let version = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(SnapshotError::UnknownVersion { found: version });
    }
    if head.len() < HEADER_LEN {
        return Err(SnapshotError::Truncated { expected: HEADER_LEN as u64, found: file_len });
    }
    let payload_len = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
    let found_len = file_len - HEADER_LEN as u64;
    if found_len < payload_len {
        return Err(SnapshotError::Truncated { expected: HEADER_LEN as u64 + payload_len, found: file_len });
    }
    if found_len > payload_len {
        return Err(SnapshotError::TrailingBytes { extra: found_len - payload_len });
    }
    Ok(u32::from_le_bytes(head[20..24].try_into().expect("4 bytes")))
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
    /// is held) and its framed record.
    records: HashMap<String, (Weak<ProjectData>, Framed)>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The snapshot, encoded as the same bytes as [`encode`] of the same
    /// content. Returns how many projects had to be encoded anew.
    pub fn encode(&mut self, parts: &SnapshotParts<'_>) -> (Encoded<'_>, usize) {
        let mut records = HashMap::with_capacity(parts.projects.len());
        let mut fresh = Vec::new();
        for (key, data) in parts.projects {
            match self.records.remove(key).filter(|(held, _)| std::ptr::eq(held.as_ptr(), Arc::as_ptr(data))) {
                Some(reused) => {
                    records.insert(key.clone(), reused);
                }
                None => fresh.push((key, data)),
            }
        }
        let weigh = |(_, data): &(&String, &Arc<ProjectData>)| weight(&data.aggregates, &data.teams);
        let encoded = map_in_runs(&fresh, threads_for(fresh.iter().map(weigh).sum()), weigh, |(key, data)| {
            let record = ProjectRecordRef {
                key,
                last_harvest: data.last_harvest.map(|t| t.timestamp_millis()),
                definitions_version: &data.definitions_version,
                weeks: &data.aggregates,
                teams: &data.teams,
            };
            Framed::new(&record, weight(&data.aggregates, &data.teams))
        });
        for ((key, data), framed) in fresh.iter().zip(encoded) {
            records.insert((*key).clone(), (Arc::downgrade(data), framed));
        }
        self.records = records;
        let ordered: Vec<&Framed> = parts.projects.iter().map(|(key, _)| &self.records[key].1).collect();
        let tail = TailRef {
            watermarks: parts.watermarks,
            jobs: parts.jobs,
            definitions: parts.definitions,
            activations: parts.activations,
        };
        (Encoded::new(parts.seq, parts.taken_at, ordered, &tail), fresh.len())
    }
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
            let mut a =
                WeeklyAggregate { deployments: 3 + w, deployment_days: 0b10101, completed: 7, ..Default::default() };
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
    fn the_encoding_is_pinned_to_format_version_5() {
        let bytes = encode(&sample());
        assert_eq!(FORMAT_VERSION, 5);
        assert_eq!(
            (bytes.len(), checksum(&bytes).unwrap()),
            (PINNED_LEN, PINNED_CRC),
            "format changed: bump FORMAT_VERSION"
        );
    }

    const PINNED_LEN: usize = 1458;
    const PINNED_CRC: u32 = 1_351_633_999;

    /// A header in front of a payload that starts at `HEADER_LEN`.
    fn seal(mut out: Vec<u8>) -> Vec<u8> {
        let payload_len = (out.len() - HEADER_LEN) as u64;
        let crc = crc32fast::hash(&out[HEADER_LEN..]);
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..20].copy_from_slice(&payload_len.to_le_bytes());
        out[20..24].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// What an encoder writes, in one piece, and how many projects it
    /// encoded anew.
    fn encoded(encoder: &mut Encoder, parts: &SnapshotParts<'_>) -> (Vec<u8>, usize) {
        let (encoded, fresh) = encoder.encode(parts);
        let bytes = encoded.to_vec();
        assert_eq!((bytes.len(), checksum(&bytes)), (encoded.file_len(), Some(encoded.checksum())));
        (bytes, fresh)
    }

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
        assert!(
            decode(&future)
                .unwrap_err()
                .to_string()
                .contains(&format!("format version {} is unknown", FORMAT_VERSION + 1))
        );
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
        let (bytes, fresh) = encoded(&mut encoder, &s.parts(&projects));
        assert_eq!((bytes.as_slice(), fresh), (encode(&s).as_slice(), 2));
        let (again, fresh) = encoded(&mut encoder, &s.parts(&projects));
        assert_eq!((again, fresh), (bytes, 0), "nothing changed: nothing encoded anew");
        // One project replaced (as a refresh does): only it is encoded.
        let mut changed = (*projects[1].1).clone();
        changed.definitions_version = "def456".into();
        s.projects[1].definitions_version = "def456".into();
        projects[1].1 = Arc::new(changed);
        let (bytes, fresh) = encoded(&mut encoder, &s.parts(&projects));
        assert_eq!((bytes.as_slice(), fresh), (encode(&s).as_slice(), 1));
        assert_eq!(decode(&bytes).unwrap(), s);
        // A project dropped from the store is dropped from the snapshot.
        s.projects.truncate(1);
        let (bytes, fresh) = encoded(&mut encoder, &s.parts(&projects[..1]));
        assert_eq!((decode(&bytes).unwrap(), fresh), (s, 0));
    }

    #[test]
    fn the_content_checksum_ignores_the_number_and_date_and_sees_every_change() {
        let s = sample();
        let content = |snapshot: &Snapshot| {
            let shared: Vec<(String, Arc<ProjectData>)> = snapshot
                .projects
                .iter()
                .cloned()
                .map(ProjectRecord::into_data)
                .map(|(k, d)| (k, Arc::new(d)))
                .collect();
            Encoder::new().encode(&snapshot.parts(&shared)).0.content_checksum()
        };
        let shared: Vec<(String, Arc<ProjectData>)> =
            s.projects.iter().cloned().map(ProjectRecord::into_data).map(|(k, d)| (k, Arc::new(d))).collect();
        let mut encoder = Encoder::new();
        let (mut encoded, _) = encoder.encode(&s.parts(&shared));
        let before = encoded.content_checksum();
        let renumbered = Snapshot { seq: s.seq + 1, taken_at: s.taken_at + 60_000, ..s.clone() };
        encoded.number(renumbered.seq, renumbered.taken_at);
        assert_eq!(encoded.content_checksum(), before);
        assert_eq!(encoded.to_vec(), encode(&renumbered), "numbered anew: the bytes of a snapshot with that number");
        assert_eq!(content(&renumbered), before);
        let mut changes = vec![s.clone(); 5];
        changes[0].projects[0].weeks.values_mut().next().unwrap().completed += 1;
        changes[1].projects[0].last_harvest = None;
        changes[2].watermarks.insert("OPS".into(), 1);
        changes[3].jobs[0].projects[0].pages += 1;
        changes[4].activations.clear();
        for (n, changed) in changes.iter().enumerate() {
            assert_ne!(content(changed), before, "change {n} went unnoticed");
        }
    }

    #[test]
    fn a_project_record_longer_than_the_payload_is_rejected() {
        let mut out = vec![0u8; HEADER_LEN];
        // seq 1, taken_at 0, one project of 200 bytes, then 3 bytes.
        out.extend_from_slice(&[1, 0, 1, 200, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        check(&seal(out), |e| matches!(e, SnapshotError::Payload(m) if m.contains("runs past the end")));
    }

    #[test]
    fn runs_on_several_threads_keep_the_order() {
        let items: Vec<usize> = (0..101).collect();
        for threads in [1, 2, 3, 8, 200] {
            let out = map_in_runs(&items, threads, |n| 1 + n % 7, |n| n * 2);
            assert_eq!(out, items.iter().map(|n| n * 2).collect::<Vec<_>>(), "{threads} threads");
        }
    }

    /// Large enough to be encoded and decoded on several threads.
    #[test]
    fn a_large_snapshot_survives_encoding_on_several_threads() {
        let mut s = sample();
        let template = s.projects[0].clone();
        for n in 0..1500 {
            s.projects.push(ProjectRecord { key: format!("P{n}"), ..template.clone() });
        }
        let bytes = encode(&s);
        assert!(bytes.len() > PARALLEL_FROM_BYTES, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes).unwrap(), s);
        let shared: Vec<(String, Arc<ProjectData>)> =
            s.projects.iter().cloned().map(ProjectRecord::into_data).map(|(k, d)| (k, Arc::new(d))).collect();
        assert_eq!(encoded(&mut Encoder::new(), &s.parts(&shared)), (bytes, s.projects.len()));
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
