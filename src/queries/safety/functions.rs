//! Which SQL functions a query may call: an allow-list per dialect of functions that only
//! compute a value from their arguments (aggregates, window, string, date/time, math, JSON,
//! conditional, casts), extended by `[bot] allow_functions`.
//!
//! An allow-list, not a deny list: every engine has functions with lasting effects that a deny
//! list forgets (`pg_stat_reset`, session advisory locks, `MASTER_GTID_WAIT`, …), and a
//! function added by a server upgrade or an extension is refused until someone lists it.
//! Names are compared as the server resolves them: unquoted names case-folded, quoted names as
//! written (PostgreSQL) or case-insensitively (MySQL/MariaDB, SQLite, whose function names are
//! not case-sensitive), and only PostgreSQL's `pg_catalog.` qualifier is accepted on a built-in.

use sqlparser::ast::{Ident, ObjectName};

use crate::queries::file::Dialect;

/// A list by category: names separated by white space, lower case.
type List = &'static [(&'static str, &'static str)];

/// Functions in every dialect's list: the SQL standard's aggregates, window functions and the
/// common scalar ones.
const COMMON: List = &[
    ("aggregates", "count sum avg min max stddev stddev_pop stddev_samp variance var_pop var_samp"),
    ("window", "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value"),
    ("conditional", "coalesce nullif greatest least"),
    (
        "string",
        "lower upper length char_length character_length octet_length substring substr trim ltrim rtrim replace concat concat_ws position",
    ),
    ("date/time", "current_date current_time current_timestamp localtime localtimestamp extract"),
    ("math", "abs ceil ceiling floor round mod power sqrt exp ln log log10 sign pi"),
    ("casts", "cast"),
];

const POSTGRES: List = &[
    (
        "aggregates",
        "array_agg string_agg json_agg jsonb_agg json_object_agg jsonb_object_agg bool_and bool_or every bit_and bit_or bit_xor corr covar_pop covar_samp regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy percentile_cont percentile_disc mode any_value",
    ),
    (
        "string",
        "initcap bit_length btrim translate left right lpad rpad strpos split_part reverse repeat starts_with format quote_ident quote_literal quote_nullable regexp_replace regexp_match regexp_matches regexp_split_to_array regexp_split_to_table regexp_like regexp_count regexp_instr regexp_substr md5 sha224 sha256 sha384 sha512 encode decode to_hex ascii chr overlay normalize string_to_array array_to_string",
    ),
    (
        "date/time",
        "now clock_timestamp statement_timestamp transaction_timestamp date_trunc date_part date_bin age make_date make_time make_timestamp make_timestamptz make_interval justify_days justify_hours justify_interval to_char to_date to_timestamp to_number isfinite timezone",
    ),
    (
        "math",
        "trunc pow cbrt log2 degrees radians div gcd lcm width_bucket random sin cos tan asin acos atan atan2 factorial",
    ),
    (
        "JSON",
        "to_json to_jsonb row_to_json array_to_json json_build_object jsonb_build_object json_build_array jsonb_build_array json_object jsonb_object json_array_length jsonb_array_length json_each jsonb_each json_each_text jsonb_each_text json_extract_path jsonb_extract_path json_extract_path_text jsonb_extract_path_text json_object_keys jsonb_object_keys json_array_elements jsonb_array_elements json_array_elements_text jsonb_array_elements_text json_typeof jsonb_typeof jsonb_pretty json_strip_nulls jsonb_strip_nulls jsonb_path_query jsonb_path_query_array jsonb_path_query_first jsonb_path_exists jsonb_path_match jsonb_set jsonb_insert",
    ),
    (
        "arrays and sets",
        "array_length array_lower array_upper array_ndims array_dims array_position array_positions array_remove array_replace array_append array_prepend array_cat cardinality unnest generate_series generate_subscripts",
    ),
    ("other", "row num_nulls num_nonnulls pg_typeof gen_random_uuid"),
];

const MYSQL: List = &[
    ("aggregates", "group_concat bit_and bit_or bit_xor std json_arrayagg json_objectagg"),
    (
        "string",
        "lcase ucase bit_length mid substring_index left right lpad rpad locate instr reverse repeat space format field find_in_set elt strcmp ascii char hex unhex md5 sha sha1 sha2 to_base64 from_base64 quote regexp_replace regexp_substr regexp_instr insert soundex",
    ),
    (
        "date/time",
        "now curdate curtime sysdate utc_date utc_time utc_timestamp date time year month monthname day dayofmonth dayofweek dayofyear dayname week weekday weekofyear yearweek quarter hour minute second microsecond date_add date_sub adddate subdate addtime subtime datediff timediff timestampdiff timestampadd date_format time_format str_to_date unix_timestamp from_unixtime convert_tz last_day makedate maketime period_add period_diff to_days from_days to_seconds sec_to_time time_to_sec get_format",
    ),
    ("math", "truncate pow log2 degrees radians rand conv crc32 sin cos tan asin acos atan atan2 cot"),
    ("conditional", "if ifnull isnull interval"),
    (
        "JSON",
        "json_extract json_unquote json_value json_query json_object json_array json_length json_keys json_contains json_contains_path json_type json_valid json_search json_depth json_quote json_merge_patch json_merge_preserve json_set json_insert json_replace json_remove json_detailed json_pretty json_overlaps",
    ),
    ("other", "convert uuid inet_aton inet_ntoa inet6_aton inet6_ntoa"),
];

const SQLITE: List = &[
    ("aggregates", "total group_concat string_agg json_group_array json_group_object"),
    ("string", "instr printf format char unicode hex unhex quote like glob"),
    ("date/time", "date time datetime julianday unixepoch strftime timediff"),
    ("math", "trunc pow log2 degrees radians random sin cos tan"),
    ("conditional", "ifnull iif likely unlikely likelihood typeof"),
    (
        "JSON",
        "json jsonb json_extract json_object json_array json_array_length json_type json_valid json_quote json_each json_tree json_set json_insert json_replace json_remove json_patch",
    ),
];

/// The functions one dialect may call: the built-in list plus the config's additions, minus
/// the config's denials (a denial always wins).
#[derive(Clone, Copy, Debug)]
pub struct Functions<'a> {
    /// `[bot] allow_functions`: names as the server resolves them; `schema.name` for a
    /// function in a schema.
    pub allow: &'a [String],
    /// `[bot] deny_functions`: names refused even when listed.
    pub deny: &'a [String],
}

/// Why a call is refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// Listed in `[bot] deny_functions`.
    Denied,
    /// Not on the allow-list.
    NotAllowed,
}

impl Functions<'_> {
    pub const NONE: Functions<'static> = Functions { allow: &[], deny: &[] };

    /// Whether `name`, called in `dialect`, may run; `Err` carries the name as the server
    /// resolves it, for the message.
    pub fn check(&self, name: &ObjectName, dialect: Dialect) -> Result<(), (String, Refusal)> {
        let parts: Option<Vec<String>> = name.0.iter().map(|p| p.as_ident().map(|i| resolve(i, dialect))).collect();
        let Some(parts) = parts else {
            return Err((name.to_string(), Refusal::NotAllowed));
        };
        let full = parts.join(".");
        let same = |listed: &String| match dialect {
            Dialect::Postgres => *listed == full,
            Dialect::Mysql | Dialect::Sqlite => listed.eq_ignore_ascii_case(&full),
        };
        let last = parts.last().map(String::as_str).unwrap_or_default();
        if self.deny.iter().any(same) || self.deny.iter().any(|d| d.eq_ignore_ascii_case(last)) {
            return Err((full, Refusal::Denied));
        }
        if self.allow.iter().any(same) {
            return Ok(());
        }
        let builtin = match parts.as_slice() {
            [name] => Some(name.as_str()),
            [schema, name] if dialect == Dialect::Postgres && schema == "pg_catalog" => Some(name.as_str()),
            _ => None,
        };
        match builtin {
            Some(name) if builtin_list(dialect).any(|listed| listed == name) => Ok(()),
            _ => Err((full, Refusal::NotAllowed)),
        }
    }
}

fn builtin_list(dialect: Dialect) -> impl Iterator<Item = &'static str> {
    let own = match dialect {
        Dialect::Postgres => POSTGRES,
        Dialect::Mysql => MYSQL,
        Dialect::Sqlite => SQLITE,
    };
    COMMON.iter().chain(own).flat_map(|(_, names)| names.split_whitespace())
}

/// A name as the server resolves it: PostgreSQL folds unquoted names to lower case and keeps
/// quoted ones as written; the others compare function names case-insensitively, so lower case.
fn resolve(ident: &Ident, dialect: Dialect) -> String {
    match (dialect, ident.quote_style) {
        (Dialect::Postgres, Some(_)) => ident.value.clone(),
        _ => ident.value.to_lowercase(),
    }
}

/// The built-in allow-list of a dialect, for documentation and `help`.
pub fn builtin(dialect: Dialect) -> Vec<&'static str> {
    let mut names: Vec<&str> = builtin_list(dialect).collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_function_with_lasting_effects_is_on_any_list() {
        // Not a deny list: a sample of what must never be added to the built-in lists.
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let names = builtin(dialect);
            for bad in [
                "pg_sleep",
                "pg_stat_reset",
                "pg_try_advisory_lock_shared",
                "pg_log_backend_memory_contexts",
                "set_config",
                "current_setting",
                "nextval",
                "txid_current",
                "master_gtid_wait",
                "sleep",
                "benchmark",
                "get_lock",
                "load_file",
                "last_insert_id",
                "load_extension",
                "readfile",
                "writefile",
            ] {
                assert!(!names.contains(&bad), "{bad} is allowed in {dialect:?}");
            }
        }
    }

    #[test]
    fn lists_hold_lower_case_names_only() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            for name in builtin(dialect) {
                assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{name}");
            }
        }
    }
}
