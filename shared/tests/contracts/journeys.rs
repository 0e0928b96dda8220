//! `JourneyStore`: a journey stored once, versions added in order, its one
//! status moved only from the status read, each contact enrolled once (or
//! again after it left, when re-entry allows), an enrolment moved only from
//! the revision read, the due-time index the timer sweep reads, and each
//! contact's events, recorded once and read back in time order; a
//! journey's entry scan moved only from the revision read, and its cap
//! counted once per entrant.

use std::time::Duration;

use carepost::domain::journey::walk::{ExitReason, Position};
use carepost::domain::journey::{EventName, StepId};
use carepost::domain::{ContactId, JourneyId};
use carepost::ports::{Enrolment, EntryScan, JourneyRecord, JourneyStatus, JourneyStore, Standing};
use time::OffsetDateTime;

use super::support::T0;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn record(definition: &str) -> JourneyRecord {
    JourneyRecord {
        id: JourneyId::new_random(),
        version: 1,
        definition: definition.to_owned(),
        status: JourneyStatus::Draft,
        created_at: T0,
    }
}

fn step(name: &str) -> StepId {
    StepId::parse(name).expect("a step name")
}

fn enrolment(journey: JourneyId, step_name: &str, due_at: OffsetDateTime) -> Enrolment {
    Enrolment {
        journey,
        contact: ContactId::new_random(),
        version: 1,
        entered_at: due_at,
        standing: Standing::Active { position: Position { step: step(step_name), arrived_at: due_at }, due_at },
        sent: Vec::new(),
        path: vec![step(step_name)],
        revision: 0,
    }
}

fn exited(mut e: Enrolment, at: OffsetDateTime) -> Enrolment {
    e.standing = Standing::Exited { from: step("last"), reason: ExitReason::Completed, at };
    e.revision += 1;
    e
}

pub async fn journey_store_contract(store: &dyn JourneyStore) {
    // First: the due index is shared by every journey, and this one's rows
    // are due before any other behaviour's.
    due_enrolments_are_listed_earliest_first_and_exited_ones_never(store).await;
    a_journey_is_stored_once_and_its_versions_added_in_order(store).await;
    a_journey_moves_only_from_the_status_read(store).await;
    a_contact_is_enrolled_once_and_again_only_after_leaving_early_enough(store).await;
    an_enrolment_is_moved_only_from_the_revision_read(store).await;
    a_contacts_events_are_recorded_once_and_read_back_oldest_first(store).await;
    an_entry_scan_moves_only_from_the_revision_read(store).await;
    a_journeys_cap_counts_entrants_up_to_the_cap_and_takes_back_a_released_slot(store).await;
    // Events live beside the journeys: they must not show up as one.
    assert!(store.list().await.unwrap().iter().all(|j| j.definition != "events"));
}

pub async fn a_contacts_events_are_recorded_once_and_read_back_oldest_first(store: &dyn JourneyStore) {
    let (contact, other) = (ContactId::new_random(), ContactId::new_random());
    let booked = EventName::parse("appointment.booked").unwrap();
    let lab = EventName::parse("lab_result.available").unwrap();
    store.record_event(&contact, &lab, T0 + HOUR).await.unwrap();
    store.record_event(&contact, &booked, T0).await.unwrap();
    store.record_event(&contact, &booked, T0).await.unwrap();
    store.record_event(&other, &booked, T0).await.unwrap();

    let events = store.events_of(&contact).await.unwrap();

    assert_eq!(events, vec![(booked.clone(), T0), (lab, T0 + HOUR)], "once each, oldest first");
    assert_eq!(store.events_of(&other).await.unwrap(), vec![(booked, T0)]);
    assert!(store.events_of(&ContactId::new_random()).await.unwrap().is_empty());
}

pub async fn due_enrolments_are_listed_earliest_first_and_exited_ones_never(store: &dyn JourneyStore) {
    let early = T0 - 100 * DAY;
    let journey = JourneyId::new_random();
    let second = enrolment(journey, "wait", early + 2 * HOUR);
    let first = enrolment(journey, "welcome", early + HOUR);
    let later = enrolment(journey, "wait", early + 30 * DAY);
    let gone = enrolment(journey, "welcome", early);
    for e in [&second, &first, &later, &gone] {
        assert!(store.enrol(e, None).await.unwrap());
    }
    assert!(store.advance(&exited(gone.clone(), early)).await.unwrap());

    let due = store.due(early + 3 * HOUR, 10).await.unwrap();
    let one = store.due(early + 3 * HOUR, 1).await.unwrap();

    assert_eq!(due, vec![first.clone(), second], "due by then, earliest first; the exited one is not due");
    assert_eq!(one, vec![first]);
    assert!(store.due(early, 10).await.unwrap().is_empty());
}

pub async fn a_journey_is_stored_once_and_its_versions_added_in_order(store: &dyn JourneyStore) {
    let journey = record(r#"{"name":"Welcome v1"}"#);
    let mut same_id = record(r#"{"name":"other"}"#);
    same_id.id = journey.id;

    let created = store.create(&journey).await.unwrap();
    let again = store.create(&same_id).await.unwrap();
    let second = store.add_version(&journey.id, 1, r#"{"name":"Welcome v2"}"#).await.unwrap();
    let stale = store.add_version(&journey.id, 1, r#"{"name":"lost"}"#).await.unwrap();

    assert!(created);
    assert!(!again, "the ID is taken");
    assert!(second);
    assert!(!stale, "version 2 exists: a writer that read version 1 is refused");
    let read = store.get(&journey.id).await.unwrap().unwrap();
    assert_eq!((read.version, read.definition.as_str()), (2, r#"{"name":"Welcome v2"}"#));
    assert_eq!((read.status, read.created_at), (JourneyStatus::Draft, T0));
    let v1 = store.version(&journey.id, 1).await.unwrap();
    assert_eq!(v1.as_deref(), Some(r#"{"name":"Welcome v1"}"#), "contacts on version 1 still read it");
    assert_eq!(store.version(&journey.id, 3).await.unwrap(), None);
    assert_eq!(store.get(&JourneyId::new_random()).await.unwrap(), None);
    assert!(store.list().await.unwrap().iter().any(|j| j.id == journey.id && j.version == 2));
}

pub async fn a_journey_moves_only_from_the_status_read(store: &dyn JourneyStore) {
    let journey = record("{}");
    store.create(&journey).await.unwrap();

    let launched = store.transition(&journey.id, JourneyStatus::Draft, JourneyStatus::Live).await.unwrap();
    let twice = store.transition(&journey.id, JourneyStatus::Draft, JourneyStatus::Live).await.unwrap();
    let paused = store.transition(&journey.id, JourneyStatus::Live, JourneyStatus::Paused).await.unwrap();

    assert!(launched && paused);
    assert!(!twice, "no longer a draft");
    assert_eq!(store.get(&journey.id).await.unwrap().unwrap().status, JourneyStatus::Paused);
}

pub async fn a_contact_is_enrolled_once_and_again_only_after_leaving_early_enough(store: &dyn JourneyStore) {
    let journey = JourneyId::new_random();
    let first = enrolment(journey, "welcome", T0);
    let mut again = enrolment(journey, "welcome", T0 + 40 * DAY);
    again.contact = first.contact;

    let entered = store.enrol(&first, None).await.unwrap();
    let while_active = store.enrol(&again, Some(T0 + 40 * DAY)).await.unwrap();
    store.advance(&exited(first.clone(), T0 + 10 * DAY)).await.unwrap();
    let too_soon = store.enrol(&again, Some(T0 + 9 * DAY)).await.unwrap();
    let never = store.enrol(&again, None).await.unwrap();
    let after = store.enrol(&again, Some(T0 + 10 * DAY)).await.unwrap();

    assert!(entered);
    assert!(!while_active, "a contact still walking the journey does not enter it again");
    assert!(!too_soon, "it left after the re-entry cut-off");
    assert!(!never, "no re-entry");
    assert!(after);
    let read = store.enrolment(&journey, &first.contact).await.unwrap().unwrap();
    assert_eq!(read.entered_at, T0 + 40 * DAY);
    assert_eq!(read.revision, 2, "the replaced row's revision plus one");
    assert_eq!(read.due_at(), Some(T0 + 40 * DAY));
}

pub async fn an_enrolment_is_moved_only_from_the_revision_read(store: &dyn JourneyStore) {
    let journey = JourneyId::new_random();
    let first = enrolment(journey, "welcome", T0);
    store.enrol(&first, None).await.unwrap();
    let read = store.enrolment(&journey, &first.contact).await.unwrap().unwrap();
    let mut moved = read.clone();
    moved.standing = Standing::Active {
        position: Position { step: step("wait-3-days"), arrived_at: T0 + HOUR },
        due_at: T0 + 3 * DAY,
    };
    moved.sent = vec![(step("welcome"), T0 + HOUR)];
    moved.revision = read.revision + 1;
    let mut rival = read.clone();
    rival.standing = Standing::Exited { from: step("welcome"), reason: ExitReason::NotSent, at: T0 + HOUR };
    rival.revision = read.revision + 1;

    let won = store.advance(&moved).await.unwrap();
    let lost = store.advance(&rival).await.unwrap();

    assert_eq!(read, first, "read back as written");
    assert!(won);
    assert!(!lost, "a second writer from the same read is refused");
    assert_eq!(store.enrolment(&journey, &first.contact).await.unwrap(), Some(moved));
    assert_eq!(store.enrolments(&journey).await.unwrap().len(), 1);
    assert!(store.enrolments(&JourneyId::new_random()).await.unwrap().is_empty());
}

mod embedded {
    use carepost::adapters::embedded::SqliteJourneyStore;

    use super::super::support::scratch;

    #[tokio::test]
    async fn the_sqlite_store_passes_the_contract() {
        let s = scratch();
        super::journey_store_contract(&SqliteJourneyStore::new(s.db.clone())).await;
    }
}

pub async fn an_entry_scan_moves_only_from_the_revision_read(store: &dyn JourneyStore) {
    let journey = JourneyId::new_random();
    let first = EntryScan {
        started_at: T0,
        from: None,
        until: T0 + DAY,
        cursor: None,
        complete: false,
        entered: 0,
        revision: 0,
    };
    assert_eq!(store.entry_scan(&journey).await.unwrap(), None, "no pass begun");
    assert!(store.save_entry_scan(&journey, &first).await.unwrap());
    assert!(!store.save_entry_scan(&journey, &first).await.unwrap(), "a second first pass is refused");
    let paged = EntryScan { cursor: Some("page-2".into()), entered: 3, revision: 1, ..first.clone() };
    let stale = EntryScan { cursor: Some("other".into()), revision: 1, ..first.clone() };

    let moved = store.save_entry_scan(&journey, &paged).await.unwrap();
    let raced = store.save_entry_scan(&journey, &stale).await.unwrap();

    assert!(moved && !raced, "only one write from revision 0 wins");
    assert_eq!(store.entry_scan(&journey).await.unwrap(), Some(paged.clone()));
    let done = EntryScan { from: Some(T0 - DAY), cursor: None, complete: true, revision: 2, ..paged };
    assert!(store.save_entry_scan(&journey, &done).await.unwrap());
    assert_eq!(store.entry_scan(&journey).await.unwrap(), Some(done), "every field read back");
    assert_eq!(store.entry_scan(&JourneyId::new_random()).await.unwrap(), None);
}

pub async fn a_journeys_cap_counts_entrants_up_to_the_cap_and_takes_back_a_released_slot(store: &dyn JourneyStore) {
    let journey = JourneyId::new_random();
    // The slots live beside the scan: taking them must not lose it.
    let scan = EntryScan {
        started_at: T0,
        from: None,
        until: T0 + DAY,
        cursor: None,
        complete: true,
        entered: 0,
        revision: 0,
    };
    assert!(store.save_entry_scan(&journey, &scan).await.unwrap());

    let taken = [
        store.take_entry_slot(&journey, 2).await.unwrap(),
        store.take_entry_slot(&journey, 2).await.unwrap(),
        store.take_entry_slot(&journey, 2).await.unwrap(),
    ];
    store.release_entry_slot(&journey).await.unwrap();
    let after_release = store.take_entry_slot(&journey, 2).await.unwrap();

    assert_eq!(taken, [true, true, false], "two of a cap of two");
    assert!(after_release, "a released slot can be taken again");
    assert!(!store.take_entry_slot(&journey, 2).await.unwrap());
    assert!(!store.take_entry_slot(&JourneyId::new_random(), 0).await.unwrap(), "a cap of none takes nobody");
    store.release_entry_slot(&JourneyId::new_random()).await.unwrap();
    assert_eq!(store.entry_scan(&journey).await.unwrap(), Some(scan));
}
