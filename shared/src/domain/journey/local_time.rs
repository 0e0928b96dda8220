//! When a journey may mail a contact: outside quiet hours and closed days,
//! in the contact's time zone (its `time_zone` attribute, else the
//! journey's, else UTC). Zones come from the IANA database bundled into the
//! binary (jiff's `tzdb-bundle-always`), so a Lambda function and the
//! embedded stack agree whatever the host has installed.

use jiff::Timestamp;
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use time::OffsetDateTime;

/// A local time of day, to the minute (`09:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay {
    minutes: u16,
}

/// Why a time of day or quiet hours were refused (the text is not quoted:
/// a definition's field names where it stands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LocalTimeError {
    #[error("a time of day is HH:MM, 00:00 to 23:59")]
    NotATimeOfDay,
    #[error("quiet hours start and end at different times")]
    EmptyQuietHours,
}

impl TimeOfDay {
    pub fn parse(text: &str) -> Result<TimeOfDay, LocalTimeError> {
        let bad = |_| LocalTimeError::NotATimeOfDay;
        let (h, m) = text.split_once(':').ok_or(LocalTimeError::NotATimeOfDay)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(LocalTimeError::NotATimeOfDay);
        }
        let (h, m): (u16, u16) = (h.parse().map_err(bad)?, m.parse().map_err(bad)?);
        if h > 23 || m > 59 {
            return Err(LocalTimeError::NotATimeOfDay);
        }
        Ok(TimeOfDay { minutes: h * 60 + m })
    }

    fn time(self) -> Time {
        Time::constant((self.minutes / 60) as i8, (self.minutes % 60) as i8, 0, 0)
    }
}

/// No mail from `from` until `to` (local); `20:00`–`08:00` spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    from: TimeOfDay,
    to: TimeOfDay,
}

impl QuietHours {
    pub fn parse(from: &str, to: &str) -> Result<QuietHours, LocalTimeError> {
        let (from, to) = (TimeOfDay::parse(from)?, TimeOfDay::parse(to)?);
        if from == to {
            return Err(LocalTimeError::EmptyQuietHours);
        }
        Ok(QuietHours { from, to })
    }

    fn holds(self, at: Time) -> bool {
        let (from, to) = (self.from.time(), self.to.time());
        if from < to { at >= from && at < to } else { at >= from || at < to }
    }
}

/// A journey's local rules: quiet hours, closed days, its default zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPolicy {
    quiet: Option<QuietHours>,
    /// Monday is bit 0.
    closed: u8,
    zone: String,
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
];

fn bit(day: Weekday) -> u8 {
    1 << (day.to_monday_zero_offset() as u8)
}

impl LocalPolicy {
    /// `closed_days` by English name; `zone` an IANA name. Errors name the field.
    pub fn new(
        quiet: Option<QuietHours>,
        closed_days: &[String],
        zone: Option<&str>,
    ) -> Result<LocalPolicy, (&'static str, String)> {
        let mut closed = 0;
        for day in closed_days {
            let (_, weekday) = WEEKDAYS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(day))
                .ok_or(("closed_days", "days are monday to sunday".to_owned()))?;
            closed |= bit(*weekday);
        }
        if closed == 0x7f {
            return Err(("closed_days", "at least one day must be open".to_owned()));
        }
        let zone = zone.unwrap_or("UTC").to_owned();
        if TimeZone::get(&zone).is_err() {
            return Err(("time_zone", "not a time zone of the IANA database (e.g. America/Chicago)".to_owned()));
        }
        Ok(LocalPolicy { quiet, closed, zone })
    }

    /// The contact's zone if it names one, else the journey's.
    fn zone(&self, contact_zone: Option<&str>) -> TimeZone {
        contact_zone
            .and_then(|z| TimeZone::get(z).ok())
            .or_else(|| TimeZone::get(&self.zone).ok())
            .unwrap_or(TimeZone::UTC)
    }

    /// The first moment at or after `at` when mail may go: outside quiet
    /// hours, on an open day, in the contact's zone.
    pub fn next_allowed(&self, at: OffsetDateTime, contact_zone: Option<&str>) -> OffsetDateTime {
        let zone = self.zone(contact_zone);
        let start = to_jiff(at);
        let mut now = start;
        // Each step moves to a day start or the end of quiet hours: a week's worth suffices.
        for _ in 0..16 {
            let local = now.to_zoned_datetime(zone.clone());
            if self.closed & bit(local.weekday()) != 0 {
                now = start_of_next_day(&local, &zone);
                continue;
            }
            if let Some(quiet) = self.quiet.filter(|q| q.holds(local.time())) {
                let date = if local.time() >= quiet.from.time() && quiet.from > quiet.to {
                    local.date().tomorrow().unwrap_or(local.date())
                } else {
                    local.date()
                };
                now = at_local(date, quiet.to.time(), &zone).unwrap_or(now);
                continue;
            }
            break;
        }
        if now == start { at } else { from_jiff(now) }
    }

    /// The calendar date `at` falls on in the contact's zone.
    pub fn local_date(&self, at: OffsetDateTime, contact_zone: Option<&str>) -> time::Date {
        let local = to_jiff(at).to_zoned_datetime(self.zone(contact_zone));
        time::Date::from_calendar_date(
            i32::from(local.year()),
            time::Month::try_from(local.month() as u8).unwrap_or(time::Month::January),
            local.day() as u8,
        )
        .unwrap_or_else(|_| at.date())
    }

    /// The moment `date` begins (local midnight) in the contact's zone.
    pub fn start_of_day(&self, date: time::Date, contact_zone: Option<&str>) -> OffsetDateTime {
        let civil = jiff::civil::Date::new(date.year() as i16, u8::from(date.month()) as i8, date.day() as i8);
        civil
            .ok()
            .and_then(|d| at_local(d, Time::midnight(), &self.zone(contact_zone)))
            .map_or_else(|| date.midnight().assume_utc(), from_jiff)
    }

    /// The next `time` of day (local) strictly after `at`.
    pub fn next_time_of_day(&self, at: OffsetDateTime, time: TimeOfDay, contact_zone: Option<&str>) -> OffsetDateTime {
        let zone = self.zone(contact_zone);
        let now = to_jiff(at);
        let local = now.to_zoned_datetime(zone.clone());
        let today = at_local(local.date(), time.time(), &zone);
        let next = match today {
            Some(t) if t > now => t,
            _ => local.date().tomorrow().ok().and_then(|d| at_local(d, time.time(), &zone)).unwrap_or(now),
        };
        from_jiff(next)
    }
}

fn at_local(date: jiff::civil::Date, time: Time, zone: &TimeZone) -> Option<Timestamp> {
    // A time skipped by a clock change resolves to just after it (jiff's "compatible").
    date.to_datetime(time).to_zoned_datetime(zone.clone()).ok().map(|z| z.timestamp())
}

fn start_of_next_day(local: &jiff::ZonedDateTime, zone: &TimeZone) -> Timestamp {
    local.date().tomorrow().ok().and_then(|d| at_local(d, Time::midnight(), zone)).unwrap_or_else(|| local.timestamp())
}

fn to_jiff(at: OffsetDateTime) -> Timestamp {
    Timestamp::from_second(at.unix_timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn from_jiff(at: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(at.as_second()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
