use super::*;
use serde_json::json;
use time::macros::date;

fn patient() -> Profile {
    Profile {
        date_of_birth: Some(date!(1970 - 06 - 15)),
        sex: Some(super::super::Sex::Female),
        zip: Some("02139".into()),
        language: Some("en".into()),
        conditions: vec!["type-2-diabetes".into(), "hypertension".into()],
        last_visit: Some(date!(2026 - 03 - 01)),
        ..Default::default()
    }
}

const TODAY: Date = date!(2026 - 11 - 23);

fn from_json(value: serde_json::Value) -> Result<Segment, ParseSegmentError> {
    Segment::from_json(value, &ContactSchema::default())
}

#[test]
fn custom_attributes_of_the_schema_select_by_their_code() {
    let schema = ContactSchema::parse(
        &json!({"attributes": [
            {"name": "insurance_type", "type": "code", "class": "non_identifying", "code": 16},
            {"name": "vaccinations", "type": "code_list", "class": "phi", "code": 17},
            {"name": "care_note", "type": "text", "class": "phi", "code": 18}
        ]})
        .to_string(),
    )
    .unwrap();
    let rule = json!({"all": [
        {"eq": {"attr": "insurance_type", "value": "medicare"}},
        {"not": {"in": {"attr": "vaccinations", "values": ["flu"]}}}
    ]});
    let seg = Segment::from_json(rule, &schema).unwrap();
    let mut due = Profile::default();
    due.custom.insert(16, b"medicare".to_vec());
    due.custom.insert(17, br#"["covid-19"]"#.to_vec());
    let mut vaccinated = due.clone();
    vaccinated.custom.insert(17, br#"["flu"]"#.to_vec());

    assert_eq!(seg.custom_codes(), vec![16, 17]);
    assert!(seg.matches(&due, TODAY, &Behaviour::default()));
    assert!(!seg.matches(&vaccinated, TODAY, &Behaviour::default()));
    assert!(!seg.matches(&Profile::default(), TODAY, &Behaviour::default()));
    let free_text = Segment::from_json(json!({"exists": {"attr": "care_note"}}), &schema).unwrap_err();
    assert!(free_text.message.contains("cannot be used"), "{free_text}");
    let dropped = Segment::from_json(json!({"exists": {"attr": "zip"}}), &schema).unwrap_err();
    assert!(dropped.message.contains("not in the contact schema"), "{dropped}");
    assert!(Segment::from_json(json!({"age": {"min": 40}}), &schema).is_err());
}

#[test]
fn a_nested_rule_tree_selects_the_patients_it_describes() {
    let seg = from_json(json!({"all": [
        {"age": {"min": 50, "max": 75}},
        {"in": {"attr": "conditions", "values": ["type-2-diabetes"]}},
        {"not": {"eq": {"attr": "language", "value": "es"}}},
        {"within_days": {"attr": "last_visit", "days": 365}},
        {"any": [{"eq": {"attr": "sex", "value": "female"}}, {"exists": {"attr": "journey_stage"}}]}
    ]}))
    .unwrap();
    assert!(seg.matches(&patient(), TODAY, &Behaviour::default()));
    let mut younger = patient();
    younger.date_of_birth = Some(date!(1990 - 01 - 01));
    assert!(!seg.matches(&younger, TODAY, &Behaviour::default()));
}

#[test]
fn zip_prefix_and_behaviour_select_as_documented() {
    let x = CampaignId::new_random();
    let seg = from_json(json!({"all": [
        {"prefix": {"attr": "zip", "value": "021"}},
        {"opened_within_days": 30},
        {"not": {"received_campaign": x.to_string()}}
    ]}))
    .unwrap();
    let opened =
        |days_ago: i64| Behaviour { last_open: Some(TODAY - time::Duration::days(days_ago)), ..Behaviour::default() };
    let received = Behaviour { received: vec![x], ..opened(1) };
    let mut elsewhere = patient();
    elsewhere.zip = Some("94110".into());

    assert!(seg.reads_engagement());
    assert_eq!(seg.campaigns_read(), &[x]);
    assert!(seg.matches(&patient(), TODAY, &opened(30)));
    assert!(!seg.matches(&patient(), TODAY, &opened(31)), "opened too long ago");
    assert!(!seg.matches(&patient(), TODAY, &received), "already received campaign X");
    assert!(!seg.matches(&elsewhere, TODAY, &opened(1)));
    let never = from_json(json!({"never_opened": {}})).unwrap();
    assert!(never.matches(&patient(), TODAY, &Behaviour::default()));
    assert!(!never.matches(&patient(), TODAY, &opened(400)));
}

#[test]
fn a_prefix_ignores_case_and_surrounding_spaces_and_never_matches_a_shorter_value() {
    let seg = from_json(json!({"prefix": {"attr": "journey_stage", "value": " ONBOARD "}})).unwrap();
    let with_stage = |stage: &str| Profile { journey_stage: Some(stage.into()), ..patient() };

    assert!(seg.matches(&with_stage("onboarding"), TODAY, &Behaviour::default()));
    assert!(seg.matches(&with_stage("Onboard"), TODAY, &Behaviour::default()));
    assert!(!seg.matches(&with_stage("onboa"), TODAY, &Behaviour::default()));
    assert!(!seg.matches(&with_stage("lapsed"), TODAY, &Behaviour::default()));
}

#[test]
fn behavioural_and_prefix_rules_are_checked() {
    for (rule, needle) in [
        (json!({"prefix": {"attr": "conditions", "value": "a"}}), "text or code"),
        (json!({"prefix": {"attr": "zip", "value": " "}}), "1 to 64"),
        (json!({"opened_within_days": 0}), "between 1 and 36500"),
        (json!({"received_campaign": "last-spring"}), "campaign ID"),
    ] {
        let e = from_json(rule.clone()).unwrap_err();
        assert!(e.message.contains(needle), "{rule}: {e}");
    }
}

#[test]
fn a_contact_lacking_a_read_attribute_is_told_apart() {
    let seg = from_json(json!({"in": {"attr": "conditions", "values": ["copd"]}})).unwrap();
    assert!(seg.lacks_attribute(&Profile::default()));
    assert!(!seg.lacks_attribute(&patient()));
}

#[test]
fn range_on_dates_and_missing_attributes() {
    let seg = from_json(json!({"range": {"attr": "last_visit", "min": "2026-01-01"}})).unwrap();
    assert!(seg.matches(&patient(), TODAY, &Behaviour::default()));
    assert!(!seg.matches(&Profile::default(), TODAY, &Behaviour::default()));
}

#[test]
fn unknown_attribute_is_refused_with_its_path() {
    let e = from_json(json!({"all": [{"exists": {"attr": "ssn"}}]})).unwrap_err();
    assert_eq!(e.path, "$[0]");
    assert!(e.message.contains("ssn"));
}

#[test]
fn names_and_email_cannot_select_an_audience() {
    assert!(from_json(json!({"eq": {"attr": "last_name", "value": "Smith"}})).is_err());
}

#[test]
fn malformed_json_names_the_place() {
    let e = from_json(json!({"all": [{"age": {"min": "old"}}]})).unwrap_err();
    assert!(e.path.starts_with("$.all"), "{e:?}");
}

#[test]
fn the_attributes_read_are_listed_once() {
    let seg = from_json(json!({"any": [{"age": {"min": 1}}, {"exists": {"attr": "date_of_birth"}}]})).unwrap();
    assert_eq!(seg.attributes(), vec![Attribute::DateOfBirth]);
}
