//! A contact's attributes. Everything here except the IDs is PHI and is
//! envelope-encrypted attribute by attribute before it leaves the process.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use time::{Date, OffsetDateTime};

use super::{ContactId, EmailAddress, ExternalId};

/// The attributes a contact can carry; the name is bound into each
/// attribute's ciphertext so two attributes cannot be swapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    Email,
    FirstName,
    LastName,
    DateOfBirth,
    Sex,
    Zip,
    Language,
    Conditions,
    Medications,
    JourneyStage,
    LastVisit,
}

impl Attribute {
    pub const ALL: [Attribute; 11] = [
        Attribute::Email,
        Attribute::FirstName,
        Attribute::LastName,
        Attribute::DateOfBirth,
        Attribute::Sex,
        Attribute::Zip,
        Attribute::Language,
        Attribute::Conditions,
        Attribute::Medications,
        Attribute::JourneyStage,
        Attribute::LastVisit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::Email => "email",
            Attribute::FirstName => "first_name",
            Attribute::LastName => "last_name",
            Attribute::DateOfBirth => "date_of_birth",
            Attribute::Sex => "sex",
            Attribute::Zip => "zip",
            Attribute::Language => "language",
            Attribute::Conditions => "conditions",
            Attribute::Medications => "medications",
            Attribute::JourneyStage => "journey_stage",
            Attribute::LastVisit => "last_visit",
        }
    }

    pub fn parse(name: &str) -> Option<Attribute> {
        Attribute::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// One-byte code used in the stored ciphertext map and the AAD.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_code(code: u8) -> Option<Attribute> {
        Attribute::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

/// A field of the input that could not be accepted, named as the caller sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidField {
    pub field: String,
    pub message: String,
}

impl InvalidField {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub fn parse(input: &str) -> Option<Sex> {
        match input.trim().to_ascii_lowercase().as_str() {
            "female" | "f" => Some(Sex::Female),
            "male" | "m" => Some(Sex::Male),
            "other" | "x" => Some(Sex::Other),
            "unknown" | "u" => Some(Sex::Unknown),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
}

/// Decrypted profile attributes. Never logged: `Debug` is redacted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<Date>,
    pub sex: Option<Sex>,
    pub zip: Option<String>,
    pub language: Option<String>,
    pub conditions: Vec<String>,
    pub medications: Vec<String>,
    pub journey_stage: Option<String>,
    pub last_visit: Option<Date>,
    /// Deployment-defined attributes (see `ContactSchema`): their code, and
    /// their canonical bytes as sealed.
    pub custom: BTreeMap<u8, Vec<u8>>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Profile(<redacted>)")
    }
}

/// A contact with its attributes decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub id: ContactId,
    pub external_id: Option<ExternalId>,
    pub email: EmailAddress,
    pub profile: Profile,
}

/// Profile attributes as they arrive from an API or form, before parsing.
/// Absent fields leave the stored value unchanged on update. Names that are
/// not built in land in `custom`; `ContactSchema::apply` refuses any that the
/// schema does not hold.
#[derive(Default, Clone, Deserialize)]
pub struct ProfileInput {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub sex: Option<String>,
    pub zip: Option<String>,
    pub language: Option<String>,
    #[serde(default)]
    pub conditions: Option<Vec<String>>,
    #[serde(default)]
    pub medications: Option<Vec<String>>,
    pub journey_stage: Option<String>,
    pub last_visit: Option<String>,
    #[serde(flatten)]
    pub custom: BTreeMap<String, serde_json::Value>,
}

impl fmt::Debug for ProfileInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProfileInput(<redacted>)")
    }
}

const DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

pub fn parse_date(field: &str, input: &str) -> Result<Date, InvalidField> {
    Date::parse(input.trim(), DATE_FORMAT).map_err(|_| InvalidField::new(field, "must be a date as YYYY-MM-DD"))
}

pub fn format_date(date: Date) -> String {
    date.format(DATE_FORMAT).expect("a calendar date always formats")
}

/// Characters that change how text around them reads without showing:
/// bidirectional embeddings, overrides and isolates (the "Trojan Source"
/// set), zero-width characters, line/paragraph separators and the BOM.
pub(crate) fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

pub(crate) fn parse_text(field: &str, input: &str, max: usize) -> Result<String, InvalidField> {
    let value = input.trim();
    if value.is_empty() {
        return Err(InvalidField::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(InvalidField::new(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() || is_invisible_format(c)) {
        return Err(InvalidField::new(field, "must not contain control, direction-override or invisible characters"));
    }
    Ok(value.to_owned())
}

pub(crate) fn parse_code(field: &str, input: &str) -> Result<String, InvalidField> {
    let value = parse_text(field, input, 64)?.to_lowercase();
    if !value.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' ' | '.')) {
        return Err(InvalidField::new(field, "may hold letters, digits, spaces, '-', '_' and '.' only"));
    }
    Ok(value)
}

pub(crate) fn parse_codes(field: &str, input: &[String]) -> Result<Vec<String>, InvalidField> {
    if input.len() > 50 {
        return Err(InvalidField::new(field, "must hold at most 50 entries"));
    }
    let mut codes = input.iter().map(|c| parse_code(field, c)).collect::<Result<Vec<_>, _>>()?;
    codes.sort();
    codes.dedup();
    Ok(codes)
}

fn parse_zip(input: &str) -> Result<String, InvalidField> {
    let value = input.trim();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let ok = match value.split_once('-') {
        None => digits(value, 5),
        Some((five, four)) => digits(five, 5) && digits(four, 4),
    };
    if ok { Ok(value.to_owned()) } else { Err(InvalidField::new("zip", "must be a US ZIP code: 12345 or 12345-6789")) }
}

fn parse_language(input: &str) -> Result<String, InvalidField> {
    let value = input.trim();
    let mut parts = value.split('-');
    let primary = parts.next().unwrap_or_default();
    let ok = (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(InvalidField::new("language", "must be a language tag such as en or es-MX"))
    }
}

impl ProfileInput {
    /// The attributes this input sets.
    pub fn present(&self) -> Vec<Attribute> {
        let mut out = Vec::new();
        let mut mark = |set: bool, a: Attribute| {
            if set {
                out.push(a)
            }
        };
        mark(self.first_name.is_some(), Attribute::FirstName);
        mark(self.last_name.is_some(), Attribute::LastName);
        mark(self.date_of_birth.is_some(), Attribute::DateOfBirth);
        mark(self.sex.is_some(), Attribute::Sex);
        mark(self.zip.is_some(), Attribute::Zip);
        mark(self.language.is_some(), Attribute::Language);
        mark(self.conditions.is_some(), Attribute::Conditions);
        mark(self.medications.is_some(), Attribute::Medications);
        mark(self.journey_stage.is_some(), Attribute::JourneyStage);
        mark(self.last_visit.is_some(), Attribute::LastVisit);
        out
    }

    /// Parses the given fields over `base` (the stored profile on update).
    pub fn apply_to(&self, base: Profile, today: Date) -> Result<Profile, InvalidField> {
        let mut p = base;
        if let Some(v) = &self.first_name {
            p.first_name = Some(parse_text("first_name", v, 100)?);
        }
        if let Some(v) = &self.last_name {
            p.last_name = Some(parse_text("last_name", v, 100)?);
        }
        if let Some(v) = &self.date_of_birth {
            let dob = parse_date("date_of_birth", v)?;
            if dob > today || dob.year() < 1900 {
                return Err(InvalidField::new("date_of_birth", "must be between 1900-01-01 and today"));
            }
            p.date_of_birth = Some(dob);
        }
        if let Some(v) = &self.sex {
            p.sex =
                Some(Sex::parse(v).ok_or_else(|| InvalidField::new("sex", "must be female, male, other or unknown"))?);
        }
        if let Some(v) = &self.zip {
            p.zip = Some(parse_zip(v)?);
        }
        if let Some(v) = &self.language {
            p.language = Some(parse_language(v)?);
        }
        if let Some(v) = &self.conditions {
            p.conditions = parse_codes("conditions", v)?;
        }
        if let Some(v) = &self.medications {
            p.medications = parse_codes("medications", v)?;
        }
        if let Some(v) = &self.journey_stage {
            p.journey_stage = Some(parse_code("journey_stage", v)?);
        }
        if let Some(v) = &self.last_visit {
            let visit = parse_date("last_visit", v)?;
            if visit > today {
                return Err(InvalidField::new("last_visit", "must not be in the future"));
            }
            p.last_visit = Some(visit);
        }
        Ok(p)
    }
}

impl Profile {
    /// Age in whole years on `today`.
    pub fn age_on(&self, today: Date) -> Option<u32> {
        let dob = self.date_of_birth?;
        let mut age = today.year() - dob.year();
        if (today.month() as u8, today.day()) < (dob.month() as u8, dob.day()) {
            age -= 1;
        }
        u32::try_from(age).ok()
    }

    /// The plaintext of one attribute, as stored inside its ciphertext.
    pub fn attribute_bytes(&self, attribute: Attribute) -> Option<Vec<u8>> {
        let text = |v: &Option<String>| v.as_ref().map(|s| s.as_bytes().to_vec());
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| serde_json::to_vec(v).expect("strings serialize"));
        match attribute {
            Attribute::Email => None,
            Attribute::FirstName => text(&self.first_name),
            Attribute::LastName => text(&self.last_name),
            Attribute::DateOfBirth => self.date_of_birth.map(|d| format_date(d).into_bytes()),
            Attribute::Sex => self.sex.map(|s| s.as_str().as_bytes().to_vec()),
            Attribute::Zip => text(&self.zip),
            Attribute::Language => text(&self.language),
            Attribute::Conditions => list(&self.conditions),
            Attribute::Medications => list(&self.medications),
            Attribute::JourneyStage => text(&self.journey_stage),
            Attribute::LastVisit => self.last_visit.map(|d| format_date(d).into_bytes()),
        }
    }

    /// Sets one attribute from the plaintext kept in its ciphertext.
    pub fn set_attribute_bytes(&mut self, attribute: Attribute, bytes: &[u8]) -> Result<(), InvalidField> {
        let field = attribute.as_str();
        let text =
            || String::from_utf8(bytes.to_vec()).map_err(|_| InvalidField::new(field, "stored value is not UTF-8"));
        match attribute {
            Attribute::Email => {}
            Attribute::FirstName => self.first_name = Some(text()?),
            Attribute::LastName => self.last_name = Some(text()?),
            Attribute::DateOfBirth => self.date_of_birth = Some(parse_date(field, &text()?)?),
            Attribute::Sex => self.sex = Sex::parse(&text()?),
            Attribute::Zip => self.zip = Some(text()?),
            Attribute::Language => self.language = Some(text()?),
            Attribute::Conditions => {
                self.conditions =
                    serde_json::from_slice(bytes).map_err(|_| InvalidField::new(field, "stored value is not a list"))?
            }
            Attribute::Medications => {
                self.medications =
                    serde_json::from_slice(bytes).map_err(|_| InvalidField::new(field, "stored value is not a list"))?
            }
            Attribute::JourneyStage => self.journey_stage = Some(text()?),
            Attribute::LastVisit => self.last_visit = Some(parse_date(field, &text()?)?),
        }
        Ok(())
    }
}

pub fn today_utc() -> Date {
    OffsetDateTime::now_utc().date()
}

#[cfg(test)]
impl Profile {
    /// A profile with every fixed attribute set (tests' sample patient).
    pub(crate) fn every_attribute_set() -> Profile {
        Profile {
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            date_of_birth: Some(time::macros::date!(1975 - 02 - 03)),
            sex: Some(Sex::Female),
            zip: Some("02139".into()),
            language: Some("en".into()),
            conditions: vec!["type-2-diabetes".into()],
            medications: vec!["metformin".into()],
            journey_stage: Some("active".into()),
            last_visit: Some(time::macros::date!(2026 - 01 - 05)),
            custom: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn profile_input_names_the_field_at_fault() {
        let input = ProfileInput { zip: Some("ABCDE".into()), ..Default::default() };
        let err = input.apply_to(Profile::default(), date!(2026 - 11 - 23)).unwrap_err();
        assert_eq!(err.field, "zip");
    }

    #[test]
    fn future_date_of_birth_is_refused() {
        let input = ProfileInput { date_of_birth: Some("2030-01-01".into()), ..Default::default() };
        assert_eq!(input.apply_to(Profile::default(), date!(2026 - 11 - 23)).unwrap_err().field, "date_of_birth");
    }

    #[test]
    fn age_counts_whole_years() {
        let p = Profile { date_of_birth: Some(date!(1980 - 12 - 01)), ..Default::default() };
        assert_eq!(p.age_on(date!(2026 - 11 - 30)), Some(45));
        assert_eq!(p.age_on(date!(2026 - 12 - 01)), Some(46));
    }

    #[test]
    fn every_attribute_round_trips_through_its_stored_bytes() {
        let p = Profile::every_attribute_set();
        let mut back = Profile::default();
        for a in Attribute::ALL {
            if let Some(bytes) = p.attribute_bytes(a) {
                back.set_attribute_bytes(a, &bytes).unwrap();
            }
        }
        assert_eq!(back, p);
    }

    #[test]
    fn attribute_codes_round_trip() {
        for a in Attribute::ALL {
            assert_eq!(Attribute::from_code(a.code()), Some(a));
        }
        assert_eq!(Attribute::from_code(0), None);
    }
}
