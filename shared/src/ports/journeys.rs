//! Port: journeys. Each journey's versions (the definition as submitted:
//! IDs, step names, templates; no PHI), its one status, and every
//! contact's enrolment: the version it walks, where it stands and when it
//! is next due. The timer sweep reads enrolments by due time, so a wait
//! costs nothing until it ends (docs/journeys.md, "Timers"). Also each
//! contact's journey events (`POST /v1/events`: a name and a time, no PHI
//! beyond the reference), which goals, exit rules and branches read.

use super::*;
use crate::domain::JourneyId;
use crate::domain::journey::walk::{ExitReason, Position};
use crate::domain::journey::{EventName, StepId};

/// A journey's status: one value for every version, so pausing holds every
/// contact where it is with one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JourneyStatus {
    /// Stored, not running: nobody enters, nobody moves.
    Draft,
    /// Contacts enter and move.
    Live,
    /// Nobody enters or moves; contacts stay where they are until resumed.
    Paused,
}

impl JourneyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JourneyStatus::Draft => "draft",
            JourneyStatus::Live => "live",
            JourneyStatus::Paused => "paused",
        }
    }

    pub fn parse(text: &str) -> Option<JourneyStatus> {
        [JourneyStatus::Draft, JourneyStatus::Live, JourneyStatus::Paused].into_iter().find(|s| s.as_str() == text)
    }
}

/// A journey as stored: its latest version's definition and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyRecord {
    pub id: JourneyId,
    /// The latest version, from 1.
    pub version: u32,
    pub definition: String,
    pub status: JourneyStatus,
    pub created_at: OffsetDateTime,
}

/// Where an enrolled contact stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// At `position`; the sweep looks again at `due_at`.
    Active { position: Position, due_at: OffsetDateTime },
    /// Left the journey from step `from` at `at`.
    Exited { from: StepId, reason: ExitReason, at: OffsetDateTime },
}

/// One contact's walk through one journey version. IDs, step names and
/// times only: nothing about the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub journey: JourneyId,
    pub contact: ContactId,
    pub version: u32,
    pub entered_at: OffsetDateTime,
    pub standing: Standing,
    /// The send steps whose message the send ledger settled as sent, and
    /// when the walk saw it.
    pub sent: Vec<(StepId, OffsetDateTime)>,
    /// Every step it has reached, in order (a journey has no cycle, so each
    /// once): where each branch and split sent it, for the report.
    pub path: Vec<StepId>,
    /// Raised by one on every write; a write from a stale read is refused.
    pub revision: u32,
}

impl Enrolment {
    /// A first enrolment (revision 0, nothing sent yet) standing at `step`
    /// since `entered_at`, due at `due_at`.
    pub fn at_step(
        journey: JourneyId,
        version: u32,
        contact: ContactId,
        step: StepId,
        entered_at: OffsetDateTime,
        due_at: OffsetDateTime,
    ) -> Enrolment {
        Enrolment {
            journey,
            contact,
            version,
            entered_at,
            standing: Standing::Active { position: Position { step: step.clone(), arrived_at: entered_at }, due_at },
            sent: Vec::new(),
            path: vec![step],
            revision: 0,
        }
    }

    pub fn due_at(&self) -> Option<OffsetDateTime> {
        match &self.standing {
            Standing::Active { due_at, .. } => Some(*due_at),
            Standing::Exited { .. } => None,
        }
    }
}

/// Where a live journey's entry scan stands: for a segment or a date
/// entry, who enters is found by reading the contacts, one pass a day
/// (`app::journey_entry`). IDs and times only; the cursor is the contact
/// store's own page token (contact IDs, no PHI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryScan {
    /// When this pass began.
    pub started_at: OffsetDateTime,
    /// Date entries: this pass enrols contacts whose day begins at or after
    /// `from` (the previous pass's `until`; on the first pass, from the
    /// start of each contact's own today) and before `until`.
    pub from: Option<OffsetDateTime>,
    pub until: OffsetDateTime,
    /// The contacts page to read next; `None` at the start of the pass.
    pub cursor: Option<String>,
    pub complete: bool,
    /// Contacts this pass entered.
    pub entered: u64,
    /// Raised by one on every write; a write from a stale read is refused.
    pub revision: u32,
}

impl EntryScan {
    /// As both adapters store it (the revision apart, as its own number).
    pub fn to_text(&self) -> String {
        serde_json::json!({
            "started_at": self.started_at.unix_timestamp(),
            "from": self.from.map(OffsetDateTime::unix_timestamp),
            "until": self.until.unix_timestamp(),
            "cursor": self.cursor,
            "complete": self.complete,
            "entered": self.entered,
        })
        .to_string()
    }

    /// The inverse of [`EntryScan::to_text`].
    pub fn from_text(text: &str, revision: u32) -> Result<EntryScan, StoreError> {
        #[derive(serde::Deserialize)]
        struct Stored {
            started_at: i64,
            from: Option<i64>,
            until: i64,
            cursor: Option<String>,
            complete: bool,
            entered: u64,
        }
        let bad = || StoreError::corrupt("journey entry scan");
        let stored: Stored = serde_json::from_str(text).map_err(|_| bad())?;
        let time = |s: i64| OffsetDateTime::from_unix_timestamp(s).map_err(|_| bad());
        Ok(EntryScan {
            started_at: time(stored.started_at)?,
            from: stored.from.map(time).transpose()?,
            until: time(stored.until)?,
            cursor: stored.cursor,
            complete: stored.complete,
            entered: stored.entered,
            revision,
        })
    }
}

#[async_trait]
pub trait JourneyStore: Send + Sync {
    /// Stores a new journey at version 1 (`record.version` is ignored);
    /// false, changing nothing, if the ID is taken.
    async fn create(&self, record: &JourneyRecord) -> Result<bool, StoreError>;
    /// The journey with its latest version.
    async fn get(&self, id: &JourneyId) -> Result<Option<JourneyRecord>, StoreError>;
    /// The definition of one version.
    async fn version(&self, id: &JourneyId, version: u32) -> Result<Option<String>, StoreError>;
    /// Adds version `latest + 1` if the latest is still `latest`; answers
    /// whether it did. Contacts on earlier versions finish them.
    async fn add_version(&self, id: &JourneyId, latest: u32, definition: &str) -> Result<bool, StoreError>;
    /// Every journey, oldest first.
    async fn list(&self) -> Result<Vec<JourneyRecord>, StoreError>;
    /// Moves `from` → `to`; false (and no change) if the status was not `from`.
    async fn transition(&self, id: &JourneyId, from: JourneyStatus, to: JourneyStatus) -> Result<bool, StoreError>;

    /// Writes the contact's enrolment if it has none in this journey, or
    /// (re-entry) replaces one that exited at or before `reenter_before`;
    /// false, changing nothing, otherwise. The stored revision is the
    /// replaced one's plus one (0 for a first), whatever `revision` says.
    async fn enrol(&self, enrolment: &Enrolment, reenter_before: Option<OffsetDateTime>) -> Result<bool, StoreError>;
    async fn enrolment(&self, journey: &JourneyId, contact: &ContactId) -> Result<Option<Enrolment>, StoreError>;
    /// Replaces the enrolment if its stored revision is `next.revision - 1`
    /// (the one the caller read); false, changing nothing, otherwise: two
    /// sweeps that read the same row cannot both move the contact.
    async fn advance(&self, next: &Enrolment) -> Result<bool, StoreError>;
    /// Up to `limit` active enrolments of any journey due at or before
    /// `now`, earliest first.
    async fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<Enrolment>, StoreError>;
    /// Every enrolment of the journey (for its report).
    async fn enrolments(&self, journey: &JourneyId) -> Result<Vec<Enrolment>, StoreError>;
    /// The journey's entry scan, once one has begun.
    async fn entry_scan(&self, journey: &JourneyId) -> Result<Option<EntryScan>, StoreError>;
    /// Writes `next` if the stored scan's revision is `next.revision - 1`
    /// (or, for revision 0, if none is stored); false, changing nothing,
    /// otherwise: two overlapping ticks cannot both move a pass on.
    async fn save_entry_scan(&self, journey: &JourneyId, next: &EntryScan) -> Result<bool, StoreError>;
    /// Counts one more contact entering against the journey's `cap`; false,
    /// counting nothing, once `cap` have entered.
    async fn take_entry_slot(&self, journey: &JourneyId, cap: u32) -> Result<bool, StoreError>;
    /// Gives back a slot taken for an entry that then did not happen.
    async fn release_entry_slot(&self, journey: &JourneyId) -> Result<(), StoreError>;
    /// Records that `name` happened to `contact` at `at`; the same three
    /// again are the same event (a retried request records it once).
    async fn record_event(&self, contact: &ContactId, name: &EventName, at: OffsetDateTime) -> Result<(), StoreError>;
    /// The contact's events, oldest first.
    async fn events_of(&self, contact: &ContactId) -> Result<Vec<(EventName, OffsetDateTime)>, StoreError>;
}

/// `Enrolment::sent` as both adapters store it: `step@unix-seconds`,
/// comma-separated (step names hold neither character).
pub fn sent_to_text(sent: &[(StepId, OffsetDateTime)]) -> String {
    let parts: Vec<String> =
        sent.iter().map(|(step, at)| format!("{}@{}", step.as_str(), at.unix_timestamp())).collect();
    parts.join(",")
}

/// `Enrolment::path` as both adapters store it: step names, comma-separated.
pub fn path_to_text(path: &[StepId]) -> String {
    path.iter().map(StepId::as_str).collect::<Vec<_>>().join(",")
}

/// The inverse of [`path_to_text`] (an enrolment written before paths
/// were kept reads as none).
pub fn path_from_text(text: &str) -> Result<Vec<StepId>, StoreError> {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| StepId::parse(part).ok_or_else(|| StoreError::corrupt("journey enrolment: path")))
        .collect()
}

/// The inverse of [`sent_to_text`].
pub fn sent_from_text(text: &str) -> Result<Vec<(StepId, OffsetDateTime)>, StoreError> {
    let bad = || StoreError::corrupt("journey enrolment: sent steps");
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (step, at) = part.split_once('@').ok_or_else(bad)?;
            let at =
                at.parse::<i64>().ok().and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()).ok_or_else(bad)?;
            Ok((StepId::parse(step).ok_or_else(bad)?, at))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_steps_read_back_as_they_were_written() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let sent = vec![
            (StepId::parse("welcome").unwrap(), at),
            (StepId::parse("nudge_2").unwrap(), at + Duration::from_secs(60)),
        ];

        let text = sent_to_text(&sent);

        assert_eq!(text, "welcome@1800000000,nudge_2@1800000060");
        assert_eq!(sent_from_text(&text).unwrap(), sent);
        assert_eq!(sent_from_text("").unwrap(), vec![]);
        assert!(sent_from_text("Welcome@1").is_err(), "a name a step cannot have is corrupt");
    }
}
