//! The one scrubber for parse errors. A serde error's text can quote the
//! input (`invalid type: string "jane@example.org", expected u16`, an
//! unknown variant or field name as sent), and a queue message or request
//! body may carry PHI. `ScrubbedError` keeps only the category, the line
//! and column, and text that cannot come from the input: serde_json's fixed
//! syntax messages and field names the target type itself declares (a
//! missing or duplicate field). Every parser whose error can reach a log or
//! an HTTP body goes through it.

use std::fmt;

/// What kind of parse error, without any of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Not well-formed (serde_json's fixed message is kept).
    Syntax,
    /// The input ended early.
    Eof,
    Io,
    /// A field the type requires is absent (its declared name is kept).
    MissingField,
    /// A field given twice (its declared name is kept).
    DuplicateField,
    /// A field the type does not know; its name is the sender's, not kept.
    UnknownField,
    UnknownVariant,
    InvalidType,
    InvalidValue,
    InvalidLength,
    /// Any other message (a type's own check); none of its text is kept.
    Invalid,
}

impl ParseErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ParseErrorKind::Syntax => "syntax error",
            ParseErrorKind::Eof => "unexpected end of input",
            ParseErrorKind::Io => "read error",
            ParseErrorKind::MissingField => "missing field",
            ParseErrorKind::DuplicateField => "duplicate field",
            ParseErrorKind::UnknownField => "unknown field",
            ParseErrorKind::UnknownVariant => "unknown variant",
            ParseErrorKind::InvalidType => "invalid type",
            ParseErrorKind::InvalidValue => "invalid value",
            ParseErrorKind::InvalidLength => "invalid length",
            ParseErrorKind::Invalid => "invalid data",
        }
    }
}

/// A parse error safe to log and to answer with: see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubbedError {
    kind: ParseErrorKind,
    /// Text known not to come from the input (see `ParseErrorKind`).
    detail: Option<String>,
    line: usize,
    column: usize,
}

impl ScrubbedError {
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The declared name of a missing or duplicate field.
    pub fn field(&self) -> Option<&str> {
        match self.kind {
            ParseErrorKind::MissingField | ParseErrorKind::DuplicateField => self.detail.as_deref(),
            _ => None,
        }
    }

    /// 1-based; 0 when the parser does not know.
    pub fn line(&self) -> usize {
        self.line
    }

    pub fn column(&self) -> usize {
        self.column
    }

    /// The message without its position, as an API answer shows it.
    pub fn message(&self) -> String {
        match (&self.detail, self.kind) {
            (Some(detail), ParseErrorKind::Syntax | ParseErrorKind::Eof) => detail.clone(),
            (Some(field), _) => format!("{} `{field}`", self.kind.as_str()),
            (None, kind) => kind.as_str().to_owned(),
        }
    }
}

impl fmt::Display for ScrubbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        if self.line > 0 {
            write!(f, " at line {} column {}", self.line, self.column)?;
        }
        Ok(())
    }
}

impl std::error::Error for ScrubbedError {}

/// Scrubs a serde_json error.
pub fn parse_error(e: &serde_json::Error) -> ScrubbedError {
    use serde_json::error::Category;
    let (line, column) = (e.line(), e.column());
    let text = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let text = if line > 0 { text.strip_suffix(&suffix).unwrap_or(&text) } else { &text };
    let scrubbed = match e.classify() {
        // serde_json's own fixed messages ("expected value", "trailing
        // characters", …): custom messages are always classed as data.
        Category::Syntax => ScrubbedError { kind: ParseErrorKind::Syntax, detail: fixed(text), line, column },
        Category::Eof => ScrubbedError { kind: ParseErrorKind::Eof, detail: fixed(text), line, column },
        Category::Io => ScrubbedError { kind: ParseErrorKind::Io, detail: None, line, column },
        Category::Data => message_error(text),
    };
    ScrubbedError { line, column, ..scrubbed }
}

/// Scrubs the message of any serde deserializer (a form body, say), whose
/// error has no position.
pub fn parse_error_message(text: &str) -> ScrubbedError {
    message_error(text)
}

fn message_error(text: &str) -> ScrubbedError {
    let declared =
        |marker: &str| text.strip_prefix(marker).and_then(|rest| rest.split('`').next()).and_then(field_name);
    let (kind, detail) = if text.starts_with("missing field `") {
        (ParseErrorKind::MissingField, declared("missing field `"))
    } else if text.starts_with("duplicate field `") {
        (ParseErrorKind::DuplicateField, declared("duplicate field `"))
    } else if text.starts_with("unknown field `") {
        (ParseErrorKind::UnknownField, None)
    } else if text.starts_with("unknown variant `") {
        (ParseErrorKind::UnknownVariant, None)
    } else if text.starts_with("invalid type:") {
        (ParseErrorKind::InvalidType, None)
    } else if text.starts_with("invalid value:") {
        (ParseErrorKind::InvalidValue, None)
    } else if text.starts_with("invalid length ") {
        (ParseErrorKind::InvalidLength, None)
    } else {
        (ParseErrorKind::Invalid, None)
    };
    ScrubbedError { kind, detail, line: 0, column: 0 }
}

/// A field name as a type declares one: short, ASCII, no spaces or `@`.
fn field_name(name: &str) -> Option<String> {
    let ok =
        (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then(|| name.to_owned())
}

/// serde_json's fixed syntax messages ("expected `,` or `}`", "EOF while
/// parsing a string"); a guard in case one ever carried a quoted value.
fn fixed(text: &str) -> Option<String> {
    let ok = text.len() <= 80 && text.bytes().all(|b| (b.is_ascii_graphic() || b == b' ') && !b"\"'@".contains(&b));
    ok.then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Job {
        campaign_id: u64,
        shard: u16,
        kind: Kind,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    enum Kind {
        Send,
    }

    fn scrub(json: &str) -> ScrubbedError {
        parse_error(&serde_json::from_str::<Job>(json).unwrap_err())
    }

    const PROBES: [&str; 4] = ["jane.probe", "Janeprobe", "1961-07-04", "98765"];

    fn assert_clean(e: &ScrubbedError) {
        let shown = format!("{e} {e:?} {e:#?} {}", e.message());
        for probe in PROBES {
            assert!(!shown.contains(probe), "'{probe}' in {shown}");
        }
    }

    #[test]
    fn no_input_is_quoted_whatever_the_error() {
        let cases = [
            (r#"{"campaign_id":"jane.probe@example.org","shard":1,"kind":"Send"}"#, ParseErrorKind::InvalidType),
            (r#"{"campaign_id":1,"shard":98765,"kind":"Send"}"#, ParseErrorKind::InvalidValue),
            (r#"{"campaign_id":1,"shard":1,"kind":"Janeprobe"}"#, ParseErrorKind::UnknownVariant),
            (r#"{"campaign_id":1,"shard":1,"kind":"Send","jane.probe@example.org":1}"#, ParseErrorKind::UnknownField),
            (r#"{"campaign_id":1,"shard":1,"kind":"Send","campaign_id":2}"#, ParseErrorKind::DuplicateField),
            (r#"{"shard":1,"kind":"Send"}"#, ParseErrorKind::MissingField),
            (r#"{"campaign_id":1961-07-04}"#, ParseErrorKind::Syntax),
            (r#"{"campaign_id":"Janeprobe"#, ParseErrorKind::Eof),
            (r#"["Janeprobe","1961-07-04"]"#, ParseErrorKind::InvalidType),
        ];
        for (json, kind) in cases {
            let e = scrub(json);
            assert_eq!(e.kind(), kind, "{json}: {e}");
            assert_clean(&e);
            assert!(e.line() >= 1, "the position is kept: {e}");
        }
    }

    #[test]
    fn declared_field_names_and_positions_are_kept() {
        let e = scrub("{\n\"shard\":1,\"kind\":\"Send\"}");
        assert_eq!(e.field(), Some("campaign_id"));
        assert_eq!(e.to_string(), "missing field `campaign_id` at line 2 column 24");
        assert_eq!(scrub("{").message(), "EOF while parsing an object");
        assert_eq!(scrub(r#"{"kind":"Janeprobe"}"#).field(), None);
    }

    #[test]
    fn custom_messages_from_a_type_are_dropped() {
        #[derive(Debug)]
        struct Picky;
        impl<'de> Deserialize<'de> for Picky {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Err(serde::de::Error::custom(format!("'{s}' is not picky enough")))
            }
        }
        let e = parse_error(&serde_json::from_str::<Picky>(r#""jane.probe@example.org""#).unwrap_err());
        assert_eq!(e.kind(), ParseErrorKind::Invalid);
        assert_clean(&e);
        assert_clean(&parse_error_message("invalid type: string \"jane.probe\", expected u16"));
        assert_clean(&parse_error_message("missing field `jane.probe@x`"));
    }
}
