//! Result cells as display values: whatever a column's type, a query's reply shows NULL, numbers,
//! exact decimals, text, booleans, dates and timestamps, JSON, bytes as hex and UUIDs, decided
//! by the type the driver reports. A value this module does not know is shown as text when it
//! is text and as hex when it is not, never dropped and never a panic.

use serde_json::Value;
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Row, TypeInfo, ValueRef};
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// Longer text is cut with an ellipsis, so one huge column cannot swell a reply.
const TEXT_MAX: usize = 1000;
/// Longer byte strings show their first bytes, then an ellipsis.
const BYTES_MAX: usize = 256;

fn text(s: &str) -> Value {
    match s.char_indices().nth(TEXT_MAX) {
        Some((at, _)) => Value::String(format!("{}…", &s[..at])),
        None => Value::String(s.to_string()),
    }
}

fn bytes(b: &[u8]) -> Value {
    let shown = &b[..b.len().min(BYTES_MAX)];
    let more = if b.len() > BYTES_MAX { "…" } else { "" };
    Value::String(format!("\\x{}{more}", hex::encode(shown)))
}

/// Text when it is printable UTF-8, else hex: for types without a decoder here.
fn unknown(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => text(s),
        _ => bytes(b),
    }
}

/// NaN and infinities have no JSON number; they are shown as their names.
fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or_else(|| Value::String(f.to_string()), Value::Number)
}

fn date(d: Date) -> Value {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Value::String(d.format(fmt).unwrap_or_else(|_| d.to_string()))
}

fn time_of_day(t: Time) -> Value {
    let text = if t.nanosecond() == 0 {
        t.format(time::macros::format_description!("[hour]:[minute]:[second]"))
    } else {
        t.format(time::macros::format_description!("[hour]:[minute]:[second].[subsecond digits:6]"))
    };
    Value::String(text.unwrap_or_else(|_| t.to_string()))
}

/// `2026-11-25 14:30:00`, the form all three engines print a timestamp without a zone in.
fn datetime(p: PrimitiveDateTime) -> Value {
    match (date(p.date()), time_of_day(p.time())) {
        (Value::String(d), Value::String(t)) => Value::String(format!("{d} {t}")),
        _ => Value::String(p.to_string()),
    }
}

/// RFC 3339 in UTC: `2026-11-25T14:30:00Z`.
fn datetime_tz(o: OffsetDateTime) -> Value {
    let utc = o.to_offset(time::UtcOffset::UTC);
    Value::String(utc.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| o.to_string()))
}

fn json(v: serde_json::Value) -> Value {
    Value::String(v.to_string())
}

/// PostgreSQL's binary NUMERIC: digit count, weight, sign, display scale, then base-10000
/// digits. Decoded to exact text, because a float would change the amounts people check.
fn pg_numeric(b: &[u8]) -> Option<String> {
    let word = |i: usize| b.get(i..i + 2).map(|w| u16::from_be_bytes([w[0], w[1]]));
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    let digits: Vec<u16> = (0..ndigits).map(|k| word(8 + 2 * k)).collect::<Option<_>>()?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => return None,
    }
    let digit = |k: i64| usize::try_from(k).ok().and_then(|k| digits.get(k)).copied().unwrap_or(0);
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&digit(0).to_string());
        for k in 1..=weight {
            out.push_str(&format!("{:04}", digit(k)));
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut k = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(k)));
            k += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

pub(crate) fn pg_row(row: &PgRow) -> Vec<Value> {
    (0..row.len()).map(|i| pg_cell(row, i)).collect()
}

fn pg_cell(row: &PgRow, i: usize) -> Value {
    use sqlx::postgres::types::{PgInterval, PgMoney};
    let Ok(raw) = row.try_get_raw(i) else { return Value::Null };
    if raw.is_null() {
        return Value::Null;
    }
    let name = raw.type_info().name().to_string();
    let raw_bytes = raw.as_bytes().ok();
    macro_rules! get {
        ($t:ty) => {
            row.try_get_unchecked::<$t, _>(i).ok()
        };
    }
    let shown = match name.as_str() {
        "BOOL" => get!(bool).map(Value::Bool),
        "INT2" => get!(i16).map(Value::from),
        "INT4" => get!(i32).map(Value::from),
        "INT8" => get!(i64).map(Value::from),
        "OID" => raw_bytes.and_then(|b| <[u8; 4]>::try_from(b).ok()).map(|b| Value::from(u32::from_be_bytes(b))),
        "FLOAT4" => get!(f32).map(|f| float(f64::from(f))),
        "FLOAT8" => get!(f64).map(float),
        "NUMERIC" => raw_bytes.and_then(pg_numeric).map(Value::String),
        "MONEY" => get!(PgMoney).map(|m| Value::String(format!("{}.{:02}", m.0 / 100, (m.0 % 100).abs()))),
        "DATE" => get!(Date).map(date),
        "TIME" => get!(Time).map(time_of_day),
        "TIMESTAMP" => get!(PrimitiveDateTime).map(datetime),
        "TIMESTAMPTZ" => get!(OffsetDateTime).map(datetime_tz),
        "INTERVAL" => get!(PgInterval).map(|v| {
            let t = time::Duration::microseconds(v.microseconds);
            let clock = format!("{:02}:{:02}:{:02}", t.whole_hours(), t.whole_minutes() % 60, t.whole_seconds() % 60);
            Value::String(format!("{} mons {} days {clock}", v.months, v.days))
        }),
        "JSON" | "JSONB" => get!(serde_json::Value).map(json),
        "BYTEA" => raw_bytes.map(bytes),
        "UUID" => raw_bytes.and_then(|b| uuid::Uuid::from_slice(b).ok()).map(|u| Value::String(u.to_string())),
        "INT2[]" => get!(Vec<i16>).map(|v| Value::String(serde_json::json!(v).to_string())),
        "INT4[]" => get!(Vec<i32>).map(|v| Value::String(serde_json::json!(v).to_string())),
        "INT8[]" => get!(Vec<i64>).map(|v| Value::String(serde_json::json!(v).to_string())),
        "TEXT[]" | "VARCHAR[]" => get!(Vec<String>).map(|v| Value::String(serde_json::json!(v).to_string())),
        _ => None,
    };
    shown.or_else(|| raw_bytes.map(unknown)).unwrap_or(Value::Null)
}

pub(crate) fn mysql_row(row: &MySqlRow) -> Vec<Value> {
    (0..row.len()).map(|i| mysql_cell(row, i)).collect()
}

fn mysql_cell(row: &MySqlRow, i: usize) -> Value {
    use sqlx::mysql::types::MySqlTime;
    let Ok(raw) = row.try_get_raw(i) else { return Value::Null };
    if raw.is_null() {
        return Value::Null;
    }
    let name = raw.type_info().name().to_string();
    macro_rules! get {
        ($t:ty) => {
            row.try_get_unchecked::<$t, _>(i).ok()
        };
    }
    let shown = match name.as_str() {
        // TINYINT(1) is how MySQL spells a boolean; other values stay numbers.
        "BOOLEAN" => get!(i64).map(|n| if n == 0 || n == 1 { Value::Bool(n == 1) } else { Value::from(n) }),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => get!(i64).map(Value::from),
        n if n.ends_with(" UNSIGNED") => get!(u64).map(Value::from),
        "FLOAT" => get!(f32).map(|f| float(f64::from(f))),
        "DOUBLE" => get!(f64).map(float),
        "DECIMAL" => get!(String).map(Value::String),
        "DATE" => get!(Date).map(date),
        "TIME" => get!(MySqlTime).map(|t| Value::String(t.to_string())),
        "DATETIME" | "TIMESTAMP" => get!(PrimitiveDateTime).map(datetime),
        "BIT" => get!(u64).map(Value::from),
        "JSON" => get!(String).map(|s| text(&s)),
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" | "GEOMETRY" => {
            get!(Vec<u8>).map(|b| bytes(&b))
        }
        _ => None,
    };
    shown.or_else(|| get!(Vec<u8>).map(|b| unknown(&b))).unwrap_or(Value::Null)
}

pub(crate) fn sqlite_row(row: &SqliteRow) -> Vec<Value> {
    (0..row.len()).map(|i| sqlite_cell(row, i)).collect()
}

/// SQLite types values, not columns: the value's own storage class decides, and a column
/// declared BOOLEAN shows its 0/1 as false/true.
fn sqlite_cell(row: &SqliteRow, i: usize) -> Value {
    let Ok(raw) = row.try_get_raw(i) else { return Value::Null };
    if raw.is_null() {
        return Value::Null;
    }
    let storage = raw.type_info().name().to_string();
    let declared = row.column(i).type_info().name().to_ascii_uppercase();
    macro_rules! get {
        ($t:ty) => {
            row.try_get_unchecked::<$t, _>(i).ok()
        };
    }
    let shown = match storage.as_str() {
        "INTEGER" if declared == "BOOLEAN" => {
            get!(i64).map(|n| if n == 0 || n == 1 { Value::Bool(n == 1) } else { Value::from(n) })
        }
        "INTEGER" => get!(i64).map(Value::from),
        "REAL" => get!(f64).map(float),
        "BLOB" => get!(Vec<u8>).map(|b| bytes(&b)),
        _ => get!(String).map(|s| text(&s)),
    };
    shown.unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale].iter().chain(digits) {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b
    }

    fn check(bytes: Vec<u8>, expected: &str) {
        assert_eq!(pg_numeric(&bytes).as_deref(), Some(expected));
    }

    #[test]
    fn postgres_numerics_decode_to_exact_text() {
        check(numeric(2, 0, 0, 2, &[12, 5000]), "12.50");
        check(numeric(2, 1, 0x4000, 0, &[1, 2345]), "-12345");
        check(numeric(1, -1, 0, 4, &[5]), "0.0005");
        check(numeric(1, -2, 0, 8, &[7]), "0.00000007");
        check(numeric(0, 0, 0, 0, &[]), "0");
        check(numeric(0, 0, 0, 2, &[]), "0.00");
        check(numeric(1, 2, 0, 0, &[3]), "300000000");
        check(numeric(0, 0, 0xC000, 0, &[]), "NaN");
        assert_eq!(pg_numeric(&[0, 1]), None);
    }

    #[test]
    fn long_text_and_bytes_are_cut_and_unknown_bytes_are_hex() {
        let long = "é".repeat(TEXT_MAX + 5);
        let Value::String(s) = text(&long) else { panic!() };
        assert_eq!(s.chars().count(), TEXT_MAX + 1);
        assert!(s.ends_with('…'));
        assert_eq!(bytes(&[0xde, 0xad]), Value::String("\\xdead".into()));
        assert_eq!(unknown(b"happy"), Value::String("happy".into()));
        assert_eq!(unknown(&[0, 1, 255]), Value::String("\\x0001ff".into()));
    }

    #[test]
    fn times_print_the_way_databases_do() {
        let t = time::macros::datetime!(2026-11-25 14:30:00);
        assert_eq!(datetime(t), Value::String("2026-11-25 14:30:00".into()));
        assert_eq!(datetime_tz(t.assume_utc()), Value::String("2026-11-25T14:30:00Z".into()));
        assert_eq!(float(f64::NAN), Value::String("NaN".into()));
    }
}
