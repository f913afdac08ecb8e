//! What the registry answers with and is asked with: releases and their views, hooks, live
//! moves and their history, runs and their pages, publish and live requests. These types are
//! the JSON of `host … --json` and of the HTTP API as they are: fields may be added, none
//! renamed. Times are [`OffsetDateTime`]s, written as RFC 3339.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::actor::Actor;
use crate::contract::Contract;
use crate::evolution::Evolution;
use crate::limits::{DEFAULT_FUEL_PER_RECORD, DEFAULT_MEMORY_BYTES, DEFAULT_TIMEOUT, Limits};
use crate::provenance::{RunRecord, RunStatus};

/// The limits a release carries, used by its runs unless overridden (within the host's
/// ceilings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseLimits {
    /// Fuel per record.
    pub fuel_per_record: u64,
    /// The starting memory cap, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time per record, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for ReleaseLimits {
    /// The host's defaults.
    fn default() -> Self {
        ReleaseLimits {
            fuel_per_record: DEFAULT_FUEL_PER_RECORD,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            timeout_ms: u64::try_from(DEFAULT_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

impl ReleaseLimits {
    /// These limits as run [`Limits`] (the OOM retries at their default).
    pub fn to_limits(self) -> Limits {
        Limits::default()
            .with_fuel_per_record(self.fuel_per_record)
            .with_memory_bytes(self.memory_bytes)
            .with_timeout(std::time::Duration::from_millis(self.timeout_ms))
    }
}

/// An immutable, numbered release of a hook, as the store keeps it. Where the hook's live
/// pointer is is the hook's, not the release's: [`ReleaseView`] adds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// The hook's name.
    pub hook: String,
    /// 1, 2, 3… without gaps.
    pub version: u32,
    /// `sha256:` digest of the component's bytes.
    pub digest: String,
    /// The component's size in bytes.
    pub size: u64,
    /// The component's own contract (a subset of the hook's when later releases added
    /// columns).
    pub contract: Contract,
    /// `sha256:` digest of `contract`.
    pub contract_digest: String,
    /// The config, as canonical JSON text.
    pub config: String,
    /// `sha256:` digest of `config`.
    pub config_digest: String,
    /// The limits its runs use by default.
    pub limits: ReleaseLimits,
    /// Where it was built from (a commit, a tag), as the publisher said.
    pub source_ref: Option<String>,
    /// Who or what built it, as the publisher said.
    pub built_by: Option<String>,
    /// When it was published.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who published it (from the storage, `local:user@host`; over HTTP, the verified token).
    /// `None` for releases published before hookhost recorded it.
    pub published_by: Option<Actor>,
}

/// A release with whether its hook's live pointer is on it, read in the same snapshot. In
/// JSON, the release's fields and `live`. Derefs to the [`Release`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseView {
    /// The release.
    #[serde(flatten)]
    pub release: Release,
    /// Whether the live pointer was on it when it was read.
    pub live: bool,
}

impl std::ops::Deref for ReleaseView {
    type Target = Release;

    fn deref(&self) -> &Release {
        &self.release
    }
}

impl ReleaseView {
    /// `release`, live when `live_version` is its version.
    pub(crate) fn new(release: Release, live_version: u32) -> ReleaseView {
        let live = release.version == live_version;
        ReleaseView { release, live }
    }
}

/// A hook: its contract and where its live pointer is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookSummary {
    /// The hook's name.
    pub name: String,
    /// The hook's contract: its releases' contracts, grown by additive changes.
    pub contract: Contract,
    /// `sha256:` digest of `contract`.
    pub contract_digest: String,
    /// The release that runs by default.
    pub live_version: u32,
    /// The newest release (versions are 1..=latest, without gaps).
    pub latest_version: u32,
    /// When its first release was published.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When its newest release was published.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Why a live pointer moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveCause {
    /// A new release was published and took the pointer.
    Publish,
    /// Someone moved it ([`Registry::set_live`](super::Registry::set_live): a rollback or a
    /// roll forward).
    Live,
}

impl LiveCause {
    /// As stored and as JSON writes it: `publish`, `live`.
    pub fn as_str(self) -> &'static str {
        match self {
            LiveCause::Publish => "publish",
            LiveCause::Live => "live",
        }
    }

    /// The cause `text` names, if any.
    pub fn parse(text: &str) -> Option<LiveCause> {
        match text {
            "publish" => Some(LiveCause::Publish),
            "live" => Some(LiveCause::Live),
            _ => None,
        }
    }
}

/// One move of a live pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveMove {
    /// Where it pointed before (none for the first release).
    pub from_version: Option<u32>,
    /// Where it points after.
    pub to_version: u32,
    /// Why it moved.
    pub cause: LiveCause,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub moved_at: OffsetDateTime,
    /// Who moved it (for a publish, who published). `None` for moves made before hookhost
    /// recorded it.
    pub moved_by: Option<Actor>,
    /// Why, as the mover said (at most [`MAX_REASON_BYTES`](super::MAX_REASON_BYTES)).
    pub reason: Option<String>,
}

/// A hook's live pointer: where it is and every move it made, oldest first, read in one
/// snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveHistory {
    /// The hook.
    pub hook: String,
    /// Where the pointer is.
    pub live_version: u32,
    /// Every move, publishes included, oldest first.
    pub moves: Vec<LiveMove>,
}

/// A hook's releases and its pointer's history, read in one snapshot: what
/// `host releases --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseHistory {
    /// Every release, oldest first, each with whether it is live.
    pub releases: Vec<ReleaseView>,
    /// Every move of the live pointer, oldest first.
    pub live_history: Vec<LiveMove>,
}

/// How to move a live pointer ([`Registry::set_live`](super::Registry::set_live)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRequest {
    /// Move only if the pointer is on this version now (compare-and-set): another version is
    /// [`Error::LiveConflict`](crate::Error::LiveConflict) and nothing moves. `None`: move
    /// wherever it is.
    pub expected_live: Option<u32>,
    /// Why, recorded with the move; at most [`MAX_REASON_BYTES`](super::MAX_REASON_BYTES).
    pub reason: Option<String>,
    /// Who moves it.
    pub actor: Actor,
}

impl LiveRequest {
    /// A move by `actor`, unconditional, without a reason.
    pub fn new(actor: Actor) -> LiveRequest {
        LiveRequest {
            expected_live: None,
            reason: None,
            actor,
        }
    }

    /// A move by this process's user ([`Actor::local`]).
    pub fn local() -> LiveRequest {
        LiveRequest::new(Actor::local())
    }

    /// Moves only if the pointer is on `version` now.
    pub fn expecting(mut self, version: u32) -> LiveRequest {
        self.expected_live = Some(version);
        self
    }

    /// Records `reason` with the move.
    pub fn because(mut self, reason: impl Into<String>) -> LiveRequest {
        self.reason = Some(reason.into());
        self
    }
}

/// What [`Registry::set_live`](super::Registry::set_live) did, read in the transaction that
/// did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveMoved {
    /// The hook.
    pub hook: String,
    /// Where the pointer was.
    pub from: u32,
    /// Where it is now.
    pub to: u32,
    /// Whether it moved (false: it was already there, and nothing was recorded).
    pub moved: bool,
    /// The release it is on now.
    pub release: ReleaseView,
}

/// A run as the registry keeps it: `run.json` plus what a replay needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRun {
    /// The provenance record, exactly as written to `run.json`.
    pub record: RunRecord,
    /// The config it ran with, as canonical JSON.
    pub config: String,
    /// The output directory it wrote, when there was one to keep.
    pub out_dir: Option<String>,
    /// When the registry recorded it.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// Who recorded it: the process that ran it (`local:user@host`), or the token that sent
    /// it over HTTP. `None` for runs recorded before hookhost kept it.
    pub recorded_by: Option<Actor>,
}

/// Which runs [`Registry::runs_page`](super::Registry::runs_page) lists; every field given
/// must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    /// Only the runs of this hook (by name).
    pub hook: Option<String>,
    /// Only the runs that ended so.
    pub status: Option<RunStatus>,
    /// Only the runs of this worker (`run.json`'s `worker`).
    pub worker: Option<String>,
}

/// One page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPage {
    /// The runs, newest first.
    pub runs: Vec<StoredRun>,
    /// What to pass to get the next (older) page; `None` when there is none.
    pub next_cursor: Option<String>,
}

/// What [`Registry::import_run`](super::Registry::import_run) did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedRun {
    /// The run as the registry keeps it (the earlier copy when it was already recorded).
    pub run: StoredRun,
    /// Whether it was recorded now (false: the same run was already recorded).
    pub created: bool,
}

/// What to publish a component as.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// The hook's name: `^[a-z][a-z0-9_]{0,39}$`.
    pub name: String,
    /// The config as JSON text; `{}` when `None`.
    pub config: Option<String>,
    /// The limits the release's runs use. By default the host's defaults.
    pub limits: ReleaseLimits,
    /// Where it was built from.
    pub source_ref: Option<String>,
    /// Who or what built it, as the publisher says (kept as given).
    pub built_by: Option<String>,
    /// Whether a new release of an existing hook takes the live pointer. A hook's first
    /// release is always live (a hook has a live release). By default true.
    pub make_live: bool,
    /// Who publishes: recorded as the release's `published_by` (and the move's `moved_by`).
    /// By default this process's user ([`Actor::local`]); a server sets the verified token's.
    pub actor: Actor,
}

impl PublishRequest {
    /// A request by this process's user, with no config, default limits, no build
    /// information, taking the live pointer.
    pub fn new(name: impl Into<String>) -> Self {
        PublishRequest {
            name: name.into(),
            config: None,
            limits: ReleaseLimits::default(),
            source_ref: None,
            built_by: None,
            make_live: true,
            actor: Actor::local(),
        }
    }
}

/// What [`Registry::publish`](super::Registry::publish) did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// The release, new or the existing one with the same digest, and whether it is live.
    pub release: ReleaseView,
    /// Whether a release was created (false: the digest was already released).
    pub created: bool,
    /// How the contract changed; [`Evolution::Identical`] for a hook's first release.
    #[serde(flatten)]
    pub evolution: Evolution,
    /// Where the live pointer was before, when this created a release of an existing hook
    /// (whether or not the new release took it).
    pub previous_live: Option<u32>,
}

/// What storing uploaded bytes did ([`Registry::put_blob`](super::Registry::put_blob)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobPut {
    /// The bytes' digest (the one they were sent under, checked).
    pub digest: String,
    /// Their size.
    pub size: u64,
    /// Whether they were stored now (false: the store already had them).
    pub created: bool,
}
