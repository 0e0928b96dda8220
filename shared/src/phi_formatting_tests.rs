//! DESIGN §4.1 by construction: every request and message type that can hold
//! PHI, built from seeded probe values (through its real parser where it has
//! one), formatted with `{:?}`, `{:#?}` and `{}` where it has `Display`, and
//! every parse error its parsers produce on probe-laden input: no probe may
//! show. A type added to the list below is covered; one left off is not.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::IpAddr;

use serde_json::{Value, json};
use time::macros::date;

use crate::app::consent::{ConsentSubmission, RequestProof};
use crate::app::contact_views::{BatchItem, ContactView};
use crate::app::preview::{Preview, PreviewInput};
use crate::app::tracking::Requester;
use crate::domain::{
    Contact, ContactId, EmailAddress, FanoutMessage, MailEvent, Profile, ProfileInput, ScrubbedError, SendJob,
    Sensitive, Sex, scrub,
};
use crate::http::extract::{ClientIp, parse_form, parse_json};
use crate::ports::{OutgoingMail, ReceivedMessage};
use crate::synthetic::Patient;

const EMAIL: &str = "zelda.probe@phi-probe.example";
const FIRST: &str = "Zeldaprobe";
const LAST: &str = "Quixoteprobe";
const DOB: &str = "1961-07-04";
const ADDRESS: &str = "742 Probe Terrace";
const ZIP: &str = "98765-4321";
const CONDITION: &str = "probe-condition-xq";
const MEDICATION: &str = "probemedzol";
const IP: &str = "203.0.113.77";
const USER_AGENT: &str = "ProbeAgent/9.9 (PHI probe)";
const SUBJECT: &str = "Zeldaprobe, your probe-condition-xq results";

const PROBES: [&str; 11] = [EMAIL, FIRST, LAST, DOB, ADDRESS, ZIP, CONDITION, MEDICATION, IP, USER_AGENT, SUBJECT];

/// Parts of probes: a partial leak (the email's local part, the ZIP's five
/// digits) is a leak.
const PARTIAL: [&str; 2] = ["zelda.probe", "98765"];

fn assert_no_probe(what: &str, shown: &str) {
    for probe in PROBES.into_iter().chain(PARTIAL) {
        assert!(!shown.contains(probe), "{what} shows the probe '{probe}':\n{shown}");
    }
}

fn check_debug(what: &str, value: &impl Debug) {
    assert_no_probe(what, &format!("{value:?}"));
    assert_no_probe(what, &format!("{value:#?}"));
}

fn check_display(what: &str, value: &(impl Debug + std::fmt::Display)) {
    check_debug(what, value);
    assert_no_probe(what, &value.to_string());
}

/// The attributes of a patient as a client sends them (with a custom
/// attribute holding an address line).
fn attributes() -> Value {
    json!({
        "first_name": FIRST, "last_name": LAST, "date_of_birth": DOB, "sex": "female", "zip": ZIP,
        "language": "en", "conditions": [CONDITION], "medications": [MEDICATION], "address": ADDRESS
    })
}

fn profile() -> Profile {
    Profile {
        first_name: Some(FIRST.into()),
        last_name: Some(LAST.into()),
        date_of_birth: Some(date!(1961 - 07 - 04)),
        sex: Some(Sex::Female),
        zip: Some(ZIP.into()),
        language: Some("en".into()),
        conditions: vec![CONDITION.into()],
        medications: vec![MEDICATION.into()],
        journey_stage: None,
        last_visit: None,
        custom: BTreeMap::from([(40, ADDRESS.as_bytes().to_vec())]),
    }
}

/// An SES event as SES publishes it: it copies To and Subject in.
fn ses_event() -> String {
    json!({
        "eventType": "Open",
        "mail": {"messageId": "m-1", "destination": [EMAIL], "commonHeaders": {"to": [EMAIL], "subject": SUBJECT},
            "tags": {"campaign_id": ["7c0d3f5e-2a9b-4c1e-9f3a-1b2c3d4e5f60"]}},
        "open": {"ipAddress": IP, "userAgent": USER_AGENT}
    })
    .to_string()
}

#[test]
fn every_type_that_can_hold_phi_formats_without_it() {
    let ip: IpAddr = IP.parse().unwrap();
    let consent_json = json!({
        "form_id": "web-signup", "email": EMAIL, "categories": ["wellness-tips"], "website": ADDRESS,
        "first_name": FIRST, "last_name": LAST, "date_of_birth": DOB, "sex": "female", "zip": ZIP,
        "language": "en", "conditions": [CONDITION]
    });
    let form = format!(
        "form_id=web-signup&email={}&categories=wellness-tips&first_name={FIRST}&last_name={LAST}\
         &date_of_birth={DOB}&zip={ZIP}&conditions={CONDITION}&website=742+Probe+Terrace",
        EMAIL.replace('@', "%40")
    );
    let contact = Contact {
        id: ContactId::new_random(),
        external_id: None,
        email: EmailAddress::parse(EMAIL).unwrap(),
        profile: profile(),
    };
    let proof = RequestProof {
        ip: Sensitive::new(Some(ip)),
        user_agent: Sensitive::new(Some(USER_AGENT.into())),
        origin: Sensitive::new(Some(format!("https://{ADDRESS}.example"))),
    };
    let profile_input: ProfileInput = serde_json::from_value(attributes()).unwrap();
    let submission = ConsentSubmission {
        form_id: "web-signup".into(),
        email: EMAIL.into(),
        categories: vec!["wellness-tips".into()],
        profile: profile_input.clone(),
        honeypot: Sensitive::new(Some(ADDRESS.into())),
        method: None,
        server_authenticated: false,
    };

    // The list of covered types, each built with every probe it can hold.
    // http::consent::ConsentBody, from JSON and from a form
    check_debug(
        "ConsentBody (JSON)",
        &parse_json::<crate::http::consent::ConsentBody>(consent_json.to_string().as_bytes()).unwrap(),
    );
    check_debug("ConsentBody (form)", &parse_form::<crate::http::consent::ConsentBody>(form.as_bytes()).unwrap());
    // http::admin::ContactBody and BatchBody
    let contact_body = json!({"email": EMAIL, "attributes": attributes()});
    check_debug(
        "ContactBody",
        &parse_json::<crate::http::admin::ContactBody>(contact_body.to_string().as_bytes()).unwrap(),
    );
    let batch = json!({"contacts": [{"external_id": "crm-1", "email": EMAIL, "attributes": attributes()}]});
    check_debug("BatchBody", &parse_json::<crate::http::admin::BatchBody>(batch.to_string().as_bytes()).unwrap());
    // app::contact_views::BatchItem and ContactView
    let item: BatchItem =
        serde_json::from_value(json!({"external_id": "crm-1", "email": EMAIL, "attributes": attributes()})).unwrap();
    check_debug("BatchItem", &item);
    let view = ContactView {
        contact_id: contact.id,
        external_id: Some("crm-1".into()),
        email: EMAIL.into(),
        attributes: attributes().into(),
    };
    check_debug("ContactView", &view);
    assert!(serde_json::to_string(&view).unwrap().contains(EMAIL), "the audited read still answers with the PHI");
    // app::consent::RequestProof and ConsentSubmission
    check_debug("RequestProof", &proof);
    assert!(serde_json::to_string(&proof).unwrap().contains(IP), "the sealed proof still holds the IP");
    check_debug("ConsentSubmission", &submission);
    // app::tracking::Requester and http::extract::ClientIp
    check_debug("Requester", &Requester { user_agent: Sensitive::new(Some(USER_AGENT)), head: false });
    check_debug("ClientIp", &ClientIp(Some(ip)));
    // app::preview::PreviewInput and Preview
    let preview_input: PreviewInput = serde_json::from_value(json!({
        "template": {"subject": "Hi {{ first_name }}", "html": "<p>x</p>", "text": "x"}, "sample": attributes()
    }))
    .unwrap();
    check_debug("PreviewInput", &preview_input);
    let preview = Preview {
        subject: SUBJECT.into(),
        html: format!("<p>{FIRST} {LAST}, {ADDRESS}</p>").into(),
        text: format!("{EMAIL} {DOB} {ZIP} {MEDICATION}").into(),
        lint: None,
    };
    check_debug("Preview", &preview);
    // domain: ProfileInput, Profile, Contact, EmailAddress
    check_debug("ProfileInput", &profile_input);
    check_debug("Profile", &profile());
    check_debug("Contact", &contact);
    check_debug("EmailAddress", &EmailAddress::parse(EMAIL).unwrap());
    // ports: ReceivedMessage carrying an SES event, OutgoingMail
    let received = ReceivedMessage {
        message_id: "q-1".into(),
        body: ses_event().into(),
        receipt_handle: "r-1".into(),
        receive_count: 1,
    };
    check_debug("ReceivedMessage", &received);
    let mail = OutgoingMail {
        key: "confirm-1".into(),
        message_id: "<m-1@carepost>".into(),
        from: "clinic@example.org".into(),
        to: EMAIL.into(),
        raw: format!("To: {EMAIL}\r\nSubject: {SUBJECT}\r\n\r\n{FIRST}").into_bytes(),
        provider_tracking: Default::default(),
        tls_optional: false,
    };
    check_debug("OutgoingMail", &mail);
    // domain::MailEvent, parsed from that event
    check_debug("MailEvent", &MailEvent::parse(received.body.expose()).unwrap());
    // domain::Sensitive itself
    check_display("Sensitive", &Sensitive::new(EMAIL.to_owned()));
    // synthetic::Patient: made up, but shaped like PHI
    let mut patient: Patient = crate::synthetic::generate(1, 1).remove(0);
    (patient.email, patient.first_name, patient.last_name, patient.zip) =
        (EMAIL.into(), FIRST.into(), LAST.into(), ZIP.into());
    check_debug("Patient", &patient);
    // app::secure_message::SecureContent and ports::SecureMessage: a kept message
    let content = crate::app::secure_message::SecureContent {
        subject: SUBJECT.into(),
        text: format!("{FIRST} {CONDITION} {DOB}"),
    };
    check_debug("SecureContent", &content);
    let kept = crate::ports::SecureMessage {
        campaign: crate::domain::CampaignId::new_random(),
        contact: crate::domain::ContactId::new_random(),
        sealed: format!("{SUBJECT} {FIRST}").into_bytes(),
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        expires_at: time::OffsetDateTime::UNIX_EPOCH,
        notice_sent: false,
        code: Some(crate::ports::IssuedCode { hash: FIRST.into(), expires_at: time::OffsetDateTime::UNIX_EPOCH }),
        failures: 0,
    };
    check_debug("SecureMessage", &kept);
}

#[test]
fn every_parse_error_formats_without_the_input() {
    // Bodies that put probes where each parser fails on them.
    let bodies = [
        format!(r#"{{"campaign_id":"{EMAIL}","contact_id":"{FIRST}"}}"#),
        format!(r#"{{"launch_campaign_id":["{LAST}","{DOB}"]}}"#),
        format!(r#"{{"campaign_id":"7c0d3f5e-2a9b-4c1e-9f3a-1b2c3d4e5f60","shard":1,"shards":2,"x":"{ZIP}"}}"#),
        format!(r#"{{"eventType":"{CONDITION}","mail":{{"messageId":"m-1"}}}}"#),
        format!(r#"{{"eventType":"Bounce","mail":{{"messageId":["{EMAIL}"],"destination":"{ADDRESS}"}}}}"#),
        format!(r#"{{"eventType":"Open","mail":{{"messageId":"m-1"}},"open":{{"userAgent":["{USER_AGENT}"]}}}}"#),
        format!(r#"{{"Message":"{{\"eventType\":\"{MEDICATION}\",\"mail\":{{}}}}"}}"#),
        format!(r#"{{"eventType":"Send","mail":{{"messageId":"{IP}""#),
        format!("{SUBJECT} {EMAIL}"),
    ];
    for body in &bodies {
        let send = SendJob::parse(body).unwrap_err();
        check_display("ParseJobError (send)", &send);
        check_display("ParseJobError (fan-out)", &FanoutMessage::parse(body).unwrap_err());
        check_display("ParseMailEventError", &MailEvent::parse(body).unwrap_err());
        let e = serde_json::from_str::<SendJob>(body).unwrap_err();
        let scrubbed: ScrubbedError = scrub::parse_error(&e);
        check_display("ScrubbedError", &scrubbed);
    }
    // The API answers with the scrubbed message (bad types and values).
    let answer = parse_json::<crate::http::consent::ConsentBody>(
        json!({"form_id": "web-signup", "email": [EMAIL], "zip": {"z": ZIP}, "conditions": CONDITION})
            .to_string()
            .as_bytes(),
    )
    .unwrap_err();
    check_debug("ApiError (JSON)", &answer);
    assert_no_probe("ApiError (JSON) as sent", &serde_json::to_string(&answer).unwrap());
    let answer =
        parse_form::<crate::http::consent::ConsentBody>(format!("form_id=web-signup&email={FIRST}&shard=x").as_bytes())
            .unwrap_err();
    check_debug("ApiError (form)", &answer);
    assert_no_probe("ApiError (form) as sent", &serde_json::to_string(&answer).unwrap());
}
