//! `Sensitive<T>`: a value that may be PHI (DESIGN §4.1). Its `Debug` and
//! `Display` print a fixed redaction whatever the value, so a request or
//! message type that holds one can derive `Debug` and still be logged,
//! put in a span or panic message without leaking it. Reading the value is
//! explicit: `expose()` or `into_inner()`.
//!
//! Serde is transparent: a `Sensitive<T>` parses and serializes exactly as a
//! `T` does, so request bodies parse as before and sealed proofs keep their
//! bytes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What `Debug` and `Display` print in place of a sensitive value.
pub const REDACTED: &str = "[redacted]";

/// A value that is never formatted: see the module docs.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub const fn new(value: T) -> Self {
        Sensitive(value)
    }

    /// The value itself. The caller is responsible for keeping it out of
    /// logs, spans, metrics and messages.
    pub const fn expose(&self) -> &T {
        &self.0
    }

    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }

    /// Transforms the value without exposing it to formatting.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Sensitive<U> {
        Sensitive(f(self.0))
    }

    /// A borrowed view, still redacted.
    pub fn by_ref(&self) -> Sensitive<&T> {
        Sensitive(&self.0)
    }
}

impl<T> Sensitive<Option<T>> {
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }

    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Sensitive(value)
    }
}

impl From<&str> for Sensitive<String> {
    fn from(value: &str) -> Self {
        Sensitive(value.to_owned())
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Serialize> Serialize for Sensitive<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sensitive<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Sensitive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    struct Form {
        id: String,
        email: Sensitive<String>,
        first_name: Option<Sensitive<String>>,
        #[serde(default)]
        conditions: Sensitive<Vec<String>>,
    }

    #[test]
    fn debug_and_display_redact_whatever_the_value() {
        let s = Sensitive::new("jane.probe@example.org".to_owned());
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s:#?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{:?}", Sensitive::new(Some(42))), REDACTED);
        let form = Form { id: "f-1".into(), email: s, first_name: Some("Jane".into()), ..Default::default() };
        let shown = format!("{form:?} {form:#?}");
        assert!(!shown.contains("jane") && !shown.contains("Jane"), "{shown}");
        assert!(shown.contains("f-1"), "fields that are not sensitive still show: {shown}");
    }

    #[test]
    fn the_value_is_read_explicitly() {
        let mut s = Sensitive::new(String::from("a"));
        s.expose_mut().push('b');
        assert_eq!(s.expose(), "ab");
        assert_eq!(s.by_ref().map(|v| v.len()).into_inner(), 2);
        assert_eq!(s.clone(), s);
        assert_eq!(s.into_inner(), "ab");
        assert!(Sensitive::new(Some(1)).is_some() && Sensitive::<Option<u8>>::default().is_none());
    }

    #[test]
    fn serde_is_transparent() {
        let json = r#"{"id":"f-1","email":"jane@example.org","first_name":null,"conditions":["asthma"]}"#;
        let form: Form = serde_json::from_str(json).unwrap();
        assert_eq!(form.email.expose(), "jane@example.org");
        assert_eq!(form.conditions.expose(), &["asthma".to_owned()]);
        assert_eq!(serde_json::to_string(&form).unwrap(), json, "the same bytes as the plain type");
        // Absent optional fields stay optional.
        let short: Form = serde_json::from_str(r#"{"id":"f","email":"e"}"#).unwrap();
        assert_eq!((short.first_name, short.conditions.expose().len()), (None, 0));
    }
}
