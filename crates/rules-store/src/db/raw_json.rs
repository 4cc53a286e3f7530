//! A JSONB column read and written as raw JSON text.
//!
//! The API returns rules' `trigger_config` and `actions` as stored; holding them as
//! `Box<RawValue>` skips building and re-serializing a `serde_json::Value` tree per
//! row, which is most of the cost of listing rules.

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Jsonb;
use serde_json::value::RawValue;
use serde_json::Value;
use std::io::Write;

/// PostgreSQL's binary JSONB format: a version byte, then the JSON text.
const JSONB_VERSION: u8 = 1;

#[derive(Debug, Clone, FromSqlRow, AsExpression)]
#[diesel(sql_type = Jsonb)]
pub struct RawJson(pub Box<RawValue>);

impl RawJson {
    pub fn from_value(value: &Value) -> Self {
        // Serializing a Value cannot fail, and its text is valid JSON.
        Self::of(value).unwrap_or_else(|_| Self(RawValue::NULL.to_owned()))
    }

    /// `value`'s JSON text, written straight from it (no `Value` tree between).
    pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parses the text into a `Value` (validation and compilation need the tree).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.to_value() == other.to_value()
    }
}

impl serde::Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl FromSql<Jsonb, Pg> for RawJson {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let bytes = value.as_bytes();
        match bytes.split_first() {
            Some((&JSONB_VERSION, text)) => {
                let text = std::str::from_utf8(text)?;
                Ok(RawJson(RawValue::from_string(text.to_owned())?))
            }
            _ => Err("unsupported JSONB format version".into()),
        }
    }
}

impl ToSql<Jsonb, Pg> for RawJson {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(&[JSONB_VERSION])?;
        out.write_all(self.0.get().as_bytes())?;
        Ok(IsNull::No)
    }
}
