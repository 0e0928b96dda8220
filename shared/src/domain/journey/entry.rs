//! When a contact enters a journey whose entry is a segment or a date
//! attribute: the one rule both the entry scan (`app::journey_entry`, a
//! pass a day over the contacts) and the simulation (a horizon) apply, so
//! a simulation counts who a run on the same clock then enrols.

use time::OffsetDateTime;

use super::walk::Facts;
use super::{Entry, Journey};

/// The stretch of time one pass (or one simulation) enrols for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryWindow {
    /// The pass's time: nobody enters before it.
    pub now: OffsetDateTime,
    /// Date entries: days beginning at or after this; `None` for a first
    /// pass, from the start of the contact's own today.
    pub from: Option<OffsetDateTime>,
    /// Date entries: days beginning before this.
    pub until: OffsetDateTime,
}

/// Why a contact does not enter in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotEntering {
    NotInSegment,
    /// A date entry, and the contact has no such date.
    NoDate,
    /// A date entry, and its day does not begin in the window.
    NotDue,
}

/// When the contact enters: for a segment entry, now if it matches; for a
/// date entry, the moment its day begins where the patient lives, if that
/// falls in the window (a day already begun enters now); for a consent or
/// an event entry, now (the caller decides whether it happened).
pub fn entry_moment(journey: &Journey, facts: &dyn Facts, window: &EntryWindow) -> Result<OffsetDateTime, NotEntering> {
    match journey.entry() {
        Entry::Segment(segment) if !facts.matches(segment) => Err(NotEntering::NotInSegment),
        Entry::Date(offset) => {
            let (local, zone) = (journey.local(), facts.time_zone());
            let date = facts.date(&offset.attribute).ok_or(NotEntering::NoDate)?;
            let from = window.from.unwrap_or_else(|| local.start_of_day(local.local_date(window.now, zone), zone));
            let day = offset.next_day(date, local.local_date(from, zone)).ok_or(NotEntering::NotDue)?;
            let begins = local.start_of_day(day, zone);
            if begins < from || begins >= window.until {
                return Err(NotEntering::NotDue);
            }
            Ok(begins.max(window.now))
        }
        _ => Ok(window.now),
    }
}

#[cfg(test)]
mod tests {

    use time::macros::{date, datetime};

    use super::*;
    use crate::domain::ContactSchema;
    use crate::domain::journey::StepId;
    use crate::domain::journey::walk::Facts;
    use crate::domain::segment::Segment;

    struct Patient {
        last_visit: Option<time::Date>,
        zone: Option<&'static str>,
    }

    impl Facts for Patient {
        fn sent_at(&self, _: &StepId) -> Option<OffsetDateTime> {
            None
        }
        fn opened(&self, _: &StepId) -> bool {
            false
        }
        fn clicked(&self, _: &StepId) -> bool {
            false
        }
        fn event_since(&self, _: &crate::domain::journey::EventName, _: OffsetDateTime) -> bool {
            false
        }
        fn matches(&self, _: &Segment) -> bool {
            self.last_visit.is_some()
        }
        fn date(&self, attribute: &str) -> Option<time::Date> {
            (attribute == "last_visit").then_some(self.last_visit).flatten()
        }
        fn time_zone(&self) -> Option<&str> {
            self.zone
        }
    }

    fn recall(offset_days: i32) -> Journey {
        let definition = serde_json::json!({
            "name": "Recall", "category": "wellness-tips",
            "entry": {"date": {"attribute": "last_visit", "offset_days": offset_days}},
            "steps": [{"type": "exit", "id": "done"}]
        });
        Journey::parse(&definition.to_string(), &ContactSchema::default()).unwrap()
    }

    fn window(now: OffsetDateTime, from: Option<OffsetDateTime>, hours: i64) -> EntryWindow {
        EntryWindow { now, from, until: now + time::Duration::hours(hours) }
    }

    #[test]
    fn a_day_ahead_in_the_window_enters_when_it_begins_where_the_patient_lives() {
        let journey = recall(335);
        let now = datetime!(2027-03-01 12:00 UTC);
        // 335 days after 2026-03-31 is 2027-03-01; after 2026-04-01, 2027-03-02.
        let tokyo = Patient { last_visit: Some(date!(2026 - 04 - 01)), zone: Some("Asia/Tokyo") };
        let chicago = Patient { last_visit: Some(date!(2026 - 04 - 01)), zone: Some("America/Chicago") };

        let in_tokyo = entry_moment(&journey, &tokyo, &window(now, Some(now), 36));
        let in_chicago = entry_moment(&journey, &chicago, &window(now, Some(now), 36));

        assert_eq!(in_tokyo, Ok(datetime!(2027-03-01 15:00 UTC)), "Tokyo's 2 March begins at 15:00 UTC");
        assert_eq!(in_chicago, Ok(datetime!(2027-03-02 06:00 UTC)), "Chicago's begins at 06:00 UTC");
        assert_eq!(entry_moment(&journey, &chicago, &window(now, Some(now), 12)), Err(NotEntering::NotDue));
    }

    #[test]
    fn a_first_pass_takes_todays_patients_now_and_a_later_pass_only_days_after_its_from() {
        let journey = recall(335);
        let now = datetime!(2027-03-01 12:00 UTC);
        let today = Patient { last_visit: Some(date!(2026 - 03 - 31)), zone: None };

        let first = entry_moment(&journey, &today, &window(now, None, 36));
        let later = entry_moment(&journey, &today, &window(now, Some(datetime!(2027-03-01 06:00 UTC)), 36));

        assert_eq!(first, Ok(now), "today began before the pass: enters now");
        assert_eq!(later, Err(NotEntering::NotDue), "the previous pass, whose window held today, took it");
    }

    #[test]
    fn a_pass_after_missed_days_takes_the_days_it_missed_now() {
        let journey = recall(335);
        let now = datetime!(2027-03-05 12:00 UTC);
        let missed = Patient { last_visit: Some(date!(2026 - 03 - 31)), zone: None };
        let gone_before = Patient { last_visit: Some(date!(2026 - 03 - 20)), zone: None };
        let since = Some(datetime!(2027-03-01 00:00 UTC));

        assert_eq!(entry_moment(&journey, &missed, &window(now, since, 36)), Ok(now));
        assert_eq!(entry_moment(&journey, &gone_before, &window(now, since, 36)), Err(NotEntering::NotDue));
        assert_eq!(
            entry_moment(&journey, &Patient { last_visit: None, zone: None }, &window(now, since, 36)),
            Err(NotEntering::NoDate)
        );
    }
}
