//! Raw SQL statements kept prepared on the connection, as diesel keeps its
//! statically typed queries.
//!
//! diesel prepares a `sql_query` afresh on every call: it cannot know that the text
//! never varies, so `SqlQuery` marks itself unsafe to cache, and PostgreSQL parses
//! and plans it every time (0.9 ms of planning for the analytics' day sums, against
//! 1.6 ms of executing them). A [`Statement`]'s text is a `&'static str`, the same
//! for every call: diesel keeps it in the connection's statement cache (keyed by
//! text and bind types) and PostgreSQL keeps its plan, as for a statically typed
//! query. Its parameters are bound in order, `$1`, `$2`, ...; a parameter named
//! twice in the text is sent twice.
//!
//! Only texts fixed for the life of the process belong here (each distinct text
//! is one cached statement per connection): a text built per call stays a
//! `sql_query`.

use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::QueryResult;

/// A raw statement whose text never varies, with its parameters.
pub struct Statement<'a> {
    /// The text between placeholders, each followed by the index (0-based) of the
    /// parameter in its place, if any.
    pieces: Vec<(&'static str, Option<usize>)>,
    binds: Vec<Box<dyn Bind + Send + 'a>>,
}

/// A statement with the text `sql` (`$1`, `$2`, ... for its parameters).
pub fn statement<'a>(sql: &'static str) -> Statement<'a> {
    Statement {
        pieces: pieces(sql),
        binds: Vec::new(),
    }
}

impl<'a> Statement<'a> {
    /// Binds the next parameter (`$1` first), of SQL type `ST`.
    pub fn bind<ST, T>(mut self, value: T) -> Self
    where
        Pg: HasSqlType<ST>,
        T: ToSql<ST, Pg> + Send + 'a,
        ST: 'a,
    {
        self.binds.push(Box::new(Value {
            value,
            sql_type: PhantomData,
        }));
        self
    }
}

/// `sql` cut at its placeholders (`$` and digits).
fn pieces(sql: &'static str) -> Vec<(&'static str, Option<usize>)> {
    let mut pieces = Vec::new();
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        let digits = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - at - 1);
        match rest[at + 1..at + 1 + digits].parse::<usize>() {
            Ok(n) if n >= 1 => {
                pieces.push((&rest[..at], Some(n - 1)));
                rest = &rest[at + 1 + digits..];
            }
            // A `$` that is not a placeholder (none of ours has one) stays text.
            _ => {
                pieces.push((&rest[..=at], None));
                rest = &rest[at + 1..];
            }
        }
    }
    pieces.push((rest, None));
    pieces
}

/// One bound parameter, whatever its types.
trait Bind {
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

struct Value<ST, T> {
    value: T,
    sql_type: PhantomData<fn() -> ST>,
}

impl<ST, T> Bind for Value<ST, T>
where
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg>,
{
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.value)
    }
}

impl QueryFragment<Pg> for Statement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for (text, parameter) in &self.pieces {
            out.push_sql(text);
            if let Some(i) = parameter {
                let bind = self.binds.get(*i).ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!(
                            "the statement names ${} but has {} bound",
                            i + 1,
                            self.binds.len()
                        )
                        .into(),
                    )
                })?;
                bind.push(&mut out)?;
            }
        }
        Ok(())
    }
}

impl QueryId for Statement<'_> {
    type QueryId = ();
    // Not a type: diesel caches it by its text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement<'_> {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_cut_out_in_order() {
        assert_eq!(
            pieces("SELECT $1, $2 WHERE x = $1 AND y = $10"),
            vec![
                ("SELECT ", Some(0)),
                (", ", Some(1)),
                (" WHERE x = ", Some(0)),
                (" AND y = ", Some(9)),
                ("", None),
            ]
        );
        assert_eq!(
            pieces("SELECT '$' || $1"),
            vec![("SELECT '$", None), ("' || ", Some(0)), ("", None)]
        );
        assert_eq!(pieces("SELECT 1"), vec![("SELECT 1", None)]);
    }
}
