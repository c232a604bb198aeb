//! Typed parameters of queries and manifest templates: declared in a file header, given by a
//! user as text, checked before anything connects, and bound (never spliced) when used.

use std::fmt;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Int,
    Text,
    Date,
    Timestamp,
    Bool,
    Decimal,
    Uuid,
}

impl ParamType {
    pub fn parse(s: &str) -> Option<ParamType> {
        Some(match s {
            "int" | "integer" => ParamType::Int,
            "text" | "string" => ParamType::Text,
            "date" => ParamType::Date,
            "timestamp" | "datetime" => ParamType::Timestamp,
            "bool" | "boolean" => ParamType::Bool,
            "decimal" | "numeric" => ParamType::Decimal,
            "uuid" => ParamType::Uuid,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ParamType::Int => "int",
            ParamType::Text => "text",
            ParamType::Date => "date",
            ParamType::Timestamp => "timestamp",
            ParamType::Bool => "bool",
            ParamType::Decimal => "decimal",
            ParamType::Uuid => "uuid",
        }
    }

    /// What a user should type, for error messages and questions.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            ParamType::Int => "a whole number",
            ParamType::Text => "text",
            ParamType::Date => "a date like 2026-11-25",
            ParamType::Timestamp => "a timestamp like 2026-11-25T14:30:00Z",
            ParamType::Bool => "true or false",
            ParamType::Decimal => "a decimal number like 12.50",
            ParamType::Uuid => "a UUID",
        }
    }
}

/// One declared parameter.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ParamType,
    pub default: Option<ParamValue>,
    /// When set, the only values allowed.
    pub values: Vec<String>,
    pub help: String,
    /// Redacted in the audit log.
    pub secret: bool,
}

impl ParamSpec {
    pub fn required(&self) -> bool {
        self.default.is_none()
    }

    /// Checks a user's text against this parameter's type and allowed values.
    pub fn check(&self, raw: &str) -> Result<ParamValue, ParamError> {
        let value = ParamValue::parse(self.ty, raw).map_err(|Invalid| ParamError::Type {
            name: self.name.clone(),
            given: raw.to_string(),
            expected: self.ty.expected(),
        })?;
        if !self.values.is_empty() && !self.values.iter().any(|v| *v == value.to_string()) {
            return Err(ParamError::NotAllowed {
                name: self.name.clone(),
                given: raw.to_string(),
                allowed: self.values.join(", "),
            });
        }
        Ok(value)
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ParamError {
    #[error("`{name}` must be {expected}, not `{given}`")]
    Type { name: String, given: String, expected: &'static str },
    #[error("`{name}` must be one of {allowed}, not `{given}`")]
    NotAllowed { name: String, given: String, allowed: String },
}

/// A checked parameter value. `Display` is its canonical text (unquoted).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    Int(i64),
    Text(String),
    Date(#[serde(with = "iso_date")] time::Date),
    Timestamp(#[serde(with = "time::serde::rfc3339")] time::OffsetDateTime),
    Bool(bool),
    /// Kept as normalised text so no precision is lost on the way to the database.
    Decimal(String),
    Uuid(uuid::Uuid),
}

mod iso_date {
    pub fn serialize<S: serde::Serializer>(d: &time::Date, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::ParamValue::Date(*d))
    }
}

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// A value that is not of its type; `ParamSpec::check` turns it into a message.
#[derive(Debug, PartialEq)]
pub struct Invalid;

impl ParamValue {
    pub fn parse(ty: ParamType, raw: &str) -> Result<ParamValue, Invalid> {
        let raw = raw.trim();
        Ok(match ty {
            ParamType::Int => ParamValue::Int(raw.parse().map_err(|_| Invalid)?),
            ParamType::Text => {
                if raw.contains('\0') {
                    return Err(Invalid);
                }
                ParamValue::Text(raw.to_string())
            }
            ParamType::Date => ParamValue::Date(time::Date::parse(raw, DATE).map_err(|_| Invalid)?),
            ParamType::Timestamp => ParamValue::Timestamp(parse_timestamp(raw)?),
            ParamType::Bool => ParamValue::Bool(match raw.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => true,
                "false" | "no" | "off" | "0" => false,
                _ => return Err(Invalid),
            }),
            ParamType::Decimal => ParamValue::Decimal(parse_decimal(raw)?),
            ParamType::Uuid => ParamValue::Uuid(uuid::Uuid::parse_str(raw).map_err(|_| Invalid)?),
        })
    }
}

fn parse_timestamp(raw: &str) -> Result<time::OffsetDateTime, Invalid> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(t.to_offset(time::UtcOffset::UTC));
    }
    // A date-time without an offset is taken as UTC, the bot's one clock.
    let fmt =
        time::macros::format_description!("[year]-[month]-[day][first [T][ ]][hour]:[minute][optional [:[second]]]");
    time::PrimitiveDateTime::parse(raw, fmt).map(|p| p.assume_utc()).map_err(|_| Invalid)
}

/// Accepts `-12.50`, `3`, `.5`; normalises to a leading digit and no `+`.
fn parse_decimal(raw: &str) -> Result<String, Invalid> {
    let (sign, digits) = match raw.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", raw.strip_prefix('+').unwrap_or(raw)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) || digits.len() > 40 {
        return Err(Invalid);
    }
    let int = if int.is_empty() { "0" } else { int };
    Ok(if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") })
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Text(s) | ParamValue::Decimal(s) => f.write_str(s),
            ParamValue::Date(d) => {
                let text = d.format(DATE).map_err(|_| fmt::Error)?;
                f.write_str(&text)
            }
            ParamValue::Timestamp(t) => {
                let text = t.format(&time::format_description::well_known::Rfc3339).map_err(|_| fmt::Error)?;
                f.write_str(&text)
            }
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Uuid(u) => write!(f, "{u}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ty: ParamType, raw: &str, expected: Option<&str>) {
        let got = ParamValue::parse(ty, raw).ok().map(|v| v.to_string());
        assert_eq!(got.as_deref(), expected, "{ty:?} {raw:?}");
    }

    #[test]
    fn values_parse_to_their_canonical_text() {
        check(ParamType::Int, "42", Some("42"));
        check(ParamType::Int, "-7", Some("-7"));
        check(ParamType::Int, "99999999999999999999", None);
        check(ParamType::Int, "1 OR 1=1", None);
        check(ParamType::Date, "2026-11-25", Some("2026-11-25"));
        check(ParamType::Date, "2026-13-01", None);
        check(ParamType::Date, "yesterday", None);
        check(ParamType::Timestamp, "2026-11-25T10:00:00+02:00", Some("2026-11-25T08:00:00Z"));
        check(ParamType::Timestamp, "2026-11-25 10:00", Some("2026-11-25T10:00:00Z"));
        check(ParamType::Bool, "Yes", Some("true"));
        check(ParamType::Bool, "maybe", None);
        check(ParamType::Decimal, "+.5", Some("0.5"));
        check(ParamType::Decimal, "12.50", Some("12.50"));
        check(ParamType::Decimal, "1e5", None);
        check(ParamType::Uuid, "67e55044-10b1-426f-9247-bb680e5fe0c8", Some("67e55044-10b1-426f-9247-bb680e5fe0c8"));
        check(ParamType::Text, "'; DROP TABLE users; --", Some("'; DROP TABLE users; --"));
        check(ParamType::Text, "nul\0byte", None);
    }

    #[test]
    fn enumerations_refuse_other_values() {
        let spec = ParamSpec {
            name: "status".into(),
            ty: ParamType::Text,
            default: None,
            values: vec!["active".into(), "suspended".into()],
            help: String::new(),
            secret: false,
        };
        assert!(spec.check("active").is_ok());
        assert_eq!(
            spec.check("gone").unwrap_err().to_string(),
            "`status` must be one of active, suspended, not `gone`"
        );
    }
}
