//! The contact schema: every attribute a deployment stores, its type and its
//! class (identifier, PHI or non-identifying). Input naming an attribute the
//! schema does not hold is refused. Loaded from JSON (`carepost dev --schema
//! FILE`, `CONTACT_SCHEMA_JSON` in AWS); without one, every built-in
//! attribute with its default class. See `docs/schema.md`.
//!
//! Every attribute is sealed, whatever its class: the class decides who may
//! see it (list views show non-identifying attributes only) and the schema
//! refuses to class a HIPAA Safe Harbor identifier (names, ZIP codes, dates
//! about the patient) as anything but an identifier.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::Date;

use super::contact::{parse_code, parse_codes, parse_text};
use super::{Attribute, InvalidField, Profile, ProfileInput, parse_date};

/// Codes of deployment-defined attributes; built-ins use 1..=11, consent proofs 0x80.
pub const CUSTOM_CODES: std::ops::RangeInclusive<u8> = 16..=127;
const MAX_CUSTOM: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeClass {
    /// Identifies the patient (HIPAA Safe Harbor's list): never shown in lists.
    Identifier,
    /// Health information about the patient: never shown in lists.
    Phi,
    /// Neither: may be shown beside the contact ID in list views.
    NonIdentifying,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    Email,
    /// Free text, at most 100 characters.
    Text,
    /// One lower-case code (letters, digits, space, `-`, `_`, `.`), at most 64 characters.
    Code,
    /// Up to 50 codes, kept sorted and without repeats.
    CodeList,
    /// `YYYY-MM-DD`, not in the future.
    Date,
    /// `YYYY-MM-DD`, past or future: something scheduled (an appointment,
    /// a due date), which a journey can wait for.
    ScheduledDate,
    Sex,
    Zip,
    Language,
}

impl AttributeType {
    /// A calendar date (`date` or `scheduled_date`).
    pub fn is_date(self) -> bool {
        matches!(self, AttributeType::Date | AttributeType::ScheduledDate)
    }
}

/// Where an attribute lives: a built-in field of `Profile`, or a
/// deployment-defined one under its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeKey {
    Builtin(Attribute),
    Custom(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributeDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    pub class: AttributeClass,
    /// The code bound into the attribute's ciphertext.
    pub code: u8,
    #[serde(skip)]
    pub key: AttributeKey,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("contact schema: {0}")]
pub struct ParseContactSchemaError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    attributes: Vec<RawAttribute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttribute {
    name: String,
    #[serde(rename = "type")]
    kind: Option<AttributeType>,
    class: AttributeClass,
    code: Option<u8>,
}

/// The type of a built-in attribute.
fn builtin_type(attribute: Attribute) -> AttributeType {
    match attribute {
        Attribute::Email => AttributeType::Email,
        Attribute::FirstName | Attribute::LastName => AttributeType::Text,
        Attribute::DateOfBirth | Attribute::LastVisit => AttributeType::Date,
        Attribute::Sex => AttributeType::Sex,
        Attribute::Zip => AttributeType::Zip,
        Attribute::Language => AttributeType::Language,
        Attribute::Conditions | Attribute::Medications => AttributeType::CodeList,
        Attribute::JourneyStage => AttributeType::Code,
    }
}

/// The class of a built-in attribute when the schema is not given.
fn default_class(attribute: Attribute) -> AttributeClass {
    match attribute {
        Attribute::Email
        | Attribute::FirstName
        | Attribute::LastName
        | Attribute::DateOfBirth
        | Attribute::Zip
        | Attribute::LastVisit => AttributeClass::Identifier,
        Attribute::Conditions | Attribute::Medications => AttributeClass::Phi,
        Attribute::Sex | Attribute::Language | Attribute::JourneyStage => AttributeClass::NonIdentifying,
    }
}

/// A declared class weaker than the attribute's floor (see `class_floor`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassTooWeak {
    /// A Safe Harbor identifier classed `phi` or `non_identifying`.
    #[error(
        "'{name}' must be classed identifier (HIPAA Safe Harbor: names, ZIP codes and dates about a patient identify them)"
    )]
    MustBeIdentifier { name: String },
    /// Health information or free text classed `non_identifying`.
    #[error("'{name}' cannot be classed non_identifying (health information, or free text that may hold identifiers)")]
    MustBeAtLeastPhi { name: String },
}

/// Why a declared class is too weak, if it is. Safe Harbor (45 CFR
/// 164.514(b)(2)) names, geographic units smaller than a state and every
/// date element but the year are identifiers; diagnoses and drugs are health
/// information; free text may hold anything.
fn class_floor(name: &str, key: AttributeKey, kind: AttributeType, class: AttributeClass) -> Result<(), ClassTooWeak> {
    let required = match key {
        AttributeKey::Builtin(a) if default_class(a) == AttributeClass::Identifier => Some(AttributeClass::Identifier),
        AttributeKey::Builtin(a) if default_class(a) == AttributeClass::Phi => {
            (class == AttributeClass::NonIdentifying).then_some(AttributeClass::Phi)
        }
        AttributeKey::Custom(_) if kind.is_date() => Some(AttributeClass::Identifier),
        AttributeKey::Custom(_) if kind == AttributeType::Text => {
            (class == AttributeClass::NonIdentifying).then_some(AttributeClass::Phi)
        }
        _ => None,
    };
    match required {
        Some(AttributeClass::Identifier) if class != AttributeClass::Identifier => {
            Err(ClassTooWeak::MustBeIdentifier { name: name.to_owned() })
        }
        Some(AttributeClass::Phi) => Err(ClassTooWeak::MustBeAtLeastPhi { name: name.to_owned() }),
        _ => Ok(()),
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    (1..=40).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactSchema {
    attributes: Vec<AttributeDef>,
}

impl Default for ContactSchema {
    /// Every built-in attribute with its default class.
    fn default() -> Self {
        let attributes = Attribute::ALL
            .into_iter()
            .map(|a| AttributeDef {
                name: a.as_str().to_owned(),
                kind: builtin_type(a),
                class: default_class(a),
                code: a.code(),
                key: AttributeKey::Builtin(a),
            })
            .collect();
        Self { attributes }
    }
}

impl ContactSchema {
    pub fn parse(json: &str) -> Result<ContactSchema, ParseContactSchemaError> {
        let err = |m: String| ParseContactSchemaError(m);
        let mut de = serde_json::Deserializer::from_str(json);
        let raw: RawSchema =
            serde_path_to_error::deserialize(&mut de).map_err(|e| err(format!("{}: {}", e.path(), e.inner())))?;
        let mut attributes = vec![AttributeDef {
            name: "email".into(),
            kind: AttributeType::Email,
            class: AttributeClass::Identifier,
            code: Attribute::Email.code(),
            key: AttributeKey::Builtin(Attribute::Email),
        }];
        for a in raw.attributes {
            let name = a.name.trim().to_owned();
            if !valid_name(&name) {
                return Err(err(format!(
                    "attribute name '{name}' must be 1 to 40 of a-z, 0-9 and '_', starting with a letter"
                )));
            }
            if attributes.iter().skip(1).any(|d| d.name == name) {
                return Err(err(format!("attribute '{name}' appears twice")));
            }
            let def = match Attribute::parse(&name) {
                Some(Attribute::Email) => {
                    if a.class != AttributeClass::Identifier || a.kind.is_some_and(|k| k != AttributeType::Email) {
                        return Err(err("'email' is always an identifier of type email".into()));
                    }
                    continue;
                }
                Some(builtin) => {
                    let kind = builtin_type(builtin);
                    if a.kind.is_some_and(|k| k != kind) {
                        return Err(err(format!("'{name}' is built in with type {}", type_name(kind))));
                    }
                    if a.code.is_some_and(|c| c != builtin.code()) {
                        return Err(err(format!("'{name}' is built in; its code is fixed and not configurable")));
                    }
                    AttributeDef {
                        name,
                        kind,
                        class: a.class,
                        code: builtin.code(),
                        key: AttributeKey::Builtin(builtin),
                    }
                }
                None => {
                    let kind = a.kind.ok_or_else(|| err(format!("custom attribute '{name}' needs a type")))?;
                    if !matches!(
                        kind,
                        AttributeType::Text
                            | AttributeType::Code
                            | AttributeType::CodeList
                            | AttributeType::Date
                            | AttributeType::ScheduledDate
                    ) {
                        return Err(err(format!(
                            "custom attribute '{name}': type must be text, code, code_list, date or scheduled_date"
                        )));
                    }
                    let code = a.code.filter(|c| CUSTOM_CODES.contains(c)).ok_or_else(|| {
                        err(format!(
                            "custom attribute '{name}' needs a code from 16 to 127 that never changes (it is bound into the ciphertext)"
                        ))
                    })?;
                    if let Some(other) = attributes.iter().find(|d| d.code == code) {
                        return Err(err(format!("'{name}' and '{}' have the same code {code}", other.name)));
                    }
                    AttributeDef { name, kind, class: a.class, code, key: AttributeKey::Custom(code) }
                }
            };
            class_floor(&def.name, def.key, def.kind, def.class).map_err(|e| err(e.to_string()))?;
            attributes.push(def);
        }
        if attributes.iter().filter(|d| matches!(d.key, AttributeKey::Custom(_))).count() > MAX_CUSTOM {
            return Err(err(format!("at most {MAX_CUSTOM} custom attributes")));
        }
        Ok(ContactSchema { attributes })
    }

    /// Every attribute, the email first.
    pub fn attributes(&self) -> &[AttributeDef] {
        &self.attributes
    }

    pub fn get(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes.iter().find(|d| d.name == name)
    }

    pub fn holds(&self, attribute: Attribute) -> bool {
        self.attributes.iter().any(|d| d.key == AttributeKey::Builtin(attribute))
    }

    /// The codes of the attributes of `class`.
    pub fn codes_of(&self, class: AttributeClass) -> Vec<u8> {
        self.attributes.iter().filter(|d| d.class == class).map(|d| d.code).collect()
    }

    /// Names of every attribute (for audit entries of whole-contact reads).
    pub fn names(&self) -> Vec<String> {
        self.attributes.iter().map(|d| d.name.clone()).collect()
    }

    /// Parses `input` over `base`: every attribute it names must be in the
    /// schema; the error names the first one that is not, or that fails its
    /// type's rule (the field, never the value).
    pub fn apply(&self, input: &ProfileInput, base: Profile, today: Date) -> Result<Profile, InvalidField> {
        for attribute in input.present() {
            if !self.holds(attribute) {
                return Err(not_in_schema(attribute.as_str()));
            }
        }
        let mut profile = input.apply_to(base, today)?;
        for (name, value) in &input.custom {
            let def = self.get(name).filter(|d| matches!(d.key, AttributeKey::Custom(_)));
            let def = def.ok_or_else(|| not_in_schema(name))?;
            match parse_custom(def, value, today)? {
                Some(bytes) => profile.custom.insert(def.code, bytes),
                None => profile.custom.remove(&def.code),
            };
        }
        Ok(profile)
    }

    /// The stored value of an attribute, as JSON (`None` when absent).
    pub fn value_json(&self, def: &AttributeDef, profile: &Profile) -> Option<serde_json::Value> {
        let bytes = match def.key {
            AttributeKey::Builtin(a) => profile.attribute_bytes(a)?,
            AttributeKey::Custom(code) => profile.custom.get(&code)?.clone(),
        };
        match def.kind {
            AttributeType::CodeList => serde_json::from_slice(&bytes).ok(),
            _ => String::from_utf8(bytes).ok().map(serde_json::Value::String),
        }
    }

    /// Every attribute of `classes` but the email, by name, `null` when absent.
    pub fn profile_json(&self, profile: &Profile, classes: &[AttributeClass]) -> serde_json::Value {
        let values = self
            .attributes
            .iter()
            .filter(|d| d.kind != AttributeType::Email && classes.contains(&d.class))
            .map(|d| (d.name.clone(), self.value_json(d, profile).unwrap_or(serde_json::Value::Null)))
            .collect::<serde_json::Map<_, _>>();
        serde_json::Value::Object(values)
    }
}

fn type_name(kind: AttributeType) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn not_in_schema(name: &str) -> InvalidField {
    InvalidField::new(name, "is not an attribute of the contact schema")
}

/// A custom attribute's canonical stored bytes; `null` clears it.
fn parse_custom(def: &AttributeDef, value: &serde_json::Value, today: Date) -> Result<Option<Vec<u8>>, InvalidField> {
    let field = def.name.as_str();
    if value.is_null() {
        return Ok(None);
    }
    let text = || value.as_str().ok_or_else(|| InvalidField::new(field, "must be a string"));
    let bytes = match def.kind {
        AttributeType::Text => parse_text(field, text()?, 100)?.into_bytes(),
        AttributeType::Code => parse_code(field, text()?)?.into_bytes(),
        AttributeType::Date => {
            let date = parse_date(field, text()?)?;
            if date > today {
                return Err(InvalidField::new(field, "must not be in the future"));
            }
            super::format_date(date).into_bytes()
        }
        AttributeType::ScheduledDate => super::format_date(parse_date(field, text()?)?).into_bytes(),
        AttributeType::CodeList => {
            let items: Vec<String> = serde_json::from_value(value.clone())
                .map_err(|_| InvalidField::new(field, "must be a list of strings"))?;
            let codes = parse_codes(field, &items)?;
            if codes.is_empty() {
                return Ok(None);
            }
            serde_json::to_vec(&codes).expect("strings serialize")
        }
        _ => return Err(not_in_schema(field)),
    };
    Ok(Some(bytes))
}

/// `GET /v1/schema`: the schema as JSON (names, types, classes, codes).
impl Serialize for ContactSchema {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        BTreeMap::from([("attributes", &self.attributes)]).serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::date;

    use super::*;

    fn schema(attributes: serde_json::Value) -> Result<ContactSchema, ParseContactSchemaError> {
        ContactSchema::parse(&json!({ "attributes": attributes }).to_string())
    }

    #[test]
    fn the_example_schema_in_the_docs_parses() {
        let s = ContactSchema::parse(include_str!("../../../docs/schema.example.json")).unwrap();
        assert!(s.get("insurance_type").is_some());
        assert_eq!(s.get("email").map(|d| d.class), Some(AttributeClass::Identifier));
    }

    #[test]
    fn the_default_schema_holds_every_built_in_attribute() {
        let s = ContactSchema::default();
        assert!(Attribute::ALL.into_iter().all(|a| s.holds(a)));
        assert_eq!(s.get("zip").unwrap().class, AttributeClass::Identifier);
        assert_eq!(s.get("language").unwrap().class, AttributeClass::NonIdentifying);
    }

    #[test]
    fn the_served_schema_parses_back_to_itself() {
        let s = ContactSchema::parse(include_str!("../../../docs/schema.example.json")).unwrap();

        let served = serde_json::to_string(&s).unwrap();

        assert_eq!(ContactSchema::parse(&served).unwrap(), s);
        assert_eq!(
            ContactSchema::parse(&serde_json::to_string(&ContactSchema::default()).unwrap()).unwrap(),
            ContactSchema::default()
        );
    }

    #[test]
    fn the_class_floor_says_which_rule_a_class_breaks() {
        use AttributeClass::{Identifier, NonIdentifying, Phi};
        let zip = AttributeKey::Builtin(Attribute::Zip);
        assert_eq!(
            class_floor("zip", zip, AttributeType::Text, Phi),
            Err(ClassTooWeak::MustBeIdentifier { name: "zip".into() })
        );
        assert_eq!(class_floor("zip", zip, AttributeType::Text, Identifier), Ok(()));
        let notes = AttributeKey::Custom(21);
        assert_eq!(
            class_floor("notes", notes, AttributeType::Text, NonIdentifying),
            Err(ClassTooWeak::MustBeAtLeastPhi { name: "notes".into() })
        );
        assert_eq!(class_floor("notes", notes, AttributeType::Text, Phi), Ok(()));
    }

    #[test]
    fn safe_harbor_identifiers_cannot_be_classed_lower() {
        for name in ["first_name", "zip", "date_of_birth", "last_visit"] {
            let e = schema(json!([{"name": name, "class": "non_identifying"}])).unwrap_err();
            assert!(e.0.contains("identifier"), "{name}: {e}");
            assert!(schema(json!([{"name": name, "class": "phi"}])).is_err(), "{name}");
        }
        assert!(schema(json!([{"name": "conditions", "class": "non_identifying"}])).is_err());
        let custom_date = json!([{"name": "vaccinated_on", "type": "date", "class": "phi", "code": 20}]);
        assert!(schema(custom_date).is_err());
        let free_text = json!([{"name": "notes", "type": "text", "class": "non_identifying", "code": 21}]);
        assert!(schema(free_text).is_err());
    }

    #[test]
    fn custom_attributes_need_a_type_and_a_unique_code_in_range() {
        let no_code = schema(json!([{"name": "plan", "type": "code", "class": "non_identifying"}])).unwrap_err();
        let low = schema(json!([{"name": "plan", "type": "code", "class": "phi", "code": 5}])).unwrap_err();
        let twice = schema(json!([
            {"name": "plan", "type": "code", "class": "phi", "code": 30},
            {"name": "site", "type": "code", "class": "phi", "code": 30}
        ]))
        .unwrap_err();
        let untyped = schema(json!([{"name": "plan", "class": "phi", "code": 30}])).unwrap_err();
        let builtin_code = schema(json!([{"name": "zip", "class": "identifier", "code": 30}])).unwrap_err();
        let builtin_type = schema(json!([{"name": "zip", "type": "text", "class": "identifier"}])).unwrap_err();

        assert!(no_code.0.contains("needs a code"), "{no_code}");
        assert!(low.0.contains("16 to 127"), "{low}");
        assert!(twice.0.contains("same code 30"), "{twice}");
        assert!(untyped.0.contains("needs a type"), "{untyped}");
        assert!(builtin_code.0.contains("fixed"), "{builtin_code}");
        assert!(builtin_type.0.contains("type zip"), "{builtin_type}");
    }

    #[test]
    fn unknown_keys_types_and_bad_names_are_refused() {
        assert!(schema(json!([{"name": "zip", "class": "identifier", "secret": true}])).is_err());
        assert!(schema(json!([{"name": "plan", "type": "number", "class": "phi", "code": 30}])).is_err());
        assert!(schema(json!([{"name": "Plan Type", "type": "code", "class": "phi", "code": 30}])).is_err());
        assert!(
            schema(json!([{"name": "zip", "class": "identifier"}, {"name": "zip", "class": "identifier"}])).is_err()
        );
    }

    #[test]
    fn input_naming_an_attribute_outside_the_schema_is_refused_by_name() {
        let s = schema(json!([
            {"name": "first_name", "class": "identifier"},
            {"name": "plan", "type": "code", "class": "non_identifying", "code": 16}
        ]))
        .unwrap();
        let today = date!(2026 - 11 - 30);
        let meds: ProfileInput = serde_json::from_value(json!({"medications": ["x"]})).unwrap();
        let unknown: ProfileInput = serde_json::from_value(json!({"ssn": "123"})).unwrap();
        let fine: ProfileInput = serde_json::from_value(json!({"first_name": "Ada", "plan": " PPO "})).unwrap();

        assert_eq!(s.apply(&meds, Profile::default(), today).unwrap_err().field, "medications");
        assert_eq!(s.apply(&unknown, Profile::default(), today).unwrap_err().field, "ssn");
        let profile = s.apply(&fine, Profile::default(), today).unwrap();
        assert_eq!(profile.custom.get(&16).map(Vec::as_slice), Some(b"ppo".as_slice()));
        assert_eq!(s.value_json(s.get("plan").unwrap(), &profile), Some(json!("ppo")));
    }

    #[test]
    fn custom_values_follow_their_type() {
        let s = schema(json!([
            {"name": "vaccines", "type": "code_list", "class": "phi", "code": 17},
            {"name": "vaccinated_on", "type": "date", "class": "identifier", "code": 18}
        ]))
        .unwrap();
        let today = date!(2026 - 11 - 30);
        let input = |v: serde_json::Value| serde_json::from_value::<ProfileInput>(v).unwrap();

        let list = s.apply(&input(json!({"vaccines": ["Flu", "covid-19", "flu"]})), Profile::default(), today).unwrap();
        let future = s.apply(&input(json!({"vaccinated_on": "2030-01-01"})), Profile::default(), today).unwrap_err();
        let not_a_list = s.apply(&input(json!({"vaccines": "flu"})), Profile::default(), today).unwrap_err();
        let cleared = s.apply(&input(json!({"vaccines": null})), list.clone(), today).unwrap();

        assert_eq!(s.value_json(s.get("vaccines").unwrap(), &list), Some(json!(["covid-19", "flu"])));
        assert_eq!((future.field.as_str(), not_a_list.field.as_str()), ("vaccinated_on", "vaccines"));
        assert!(cleared.custom.is_empty());
    }
}
