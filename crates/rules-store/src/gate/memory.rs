//! The decision memory alone: a rule with neither threshold nor cooldown has no
//! state but the memory, so its pair is decided by one native command instead of
//! the script. `SET <memory> <decision> NX PX <ttl> GET` (Redis ≥ 7.0) remembers a
//! fresh decision and answers nothing, or changes nothing and answers the decision
//! remembered before: exactly what `gate.lua` does with its `GET` and `SET`, with
//! the same value, so the two read each other's memory (a rule edited between a
//! delivery and its redelivery changes path, not answer).

use redis::{Cmd, Value};

use super::Decision;
use crate::redis::RedisError;

/// `<entry>|<code>|<detail>|<progress>`: the memory's value, as `gate.lua` writes it.
/// Written by hand: every gated pair writes one, and `format!` spent ~1,400
/// instructions on it.
pub fn value(token: &str, decision: Decision, progress: i64) -> String {
    let (code, detail) = decision.code();
    // Three numbers of at most 20 characters each, and their separators.
    let mut value = String::with_capacity(token.len() + 3 * 21);
    value.push_str(token);
    for number in [code, detail, progress] {
        value.push('|');
        value.push_str(itoa::Buffer::new().format(number));
    }
    value
}

/// The command deciding a pair whose fresh decision is `fresh`: a dry run only
/// reads the memory.
pub fn command(key: String, token: &str, fresh: Decision, ttl_ms: u64, dry: bool) -> Cmd {
    if dry {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        return cmd;
    }
    let mut cmd = redis::cmd("SET");
    cmd.arg(key)
        .arg(value(token, fresh, 0))
        .arg("NX")
        .arg("PX")
        .arg(ttl_ms)
        .arg("GET");
    cmd
}

/// The decision a reply to [`command`] gives, with its threshold progress (always
/// 0: such a rule has no threshold). As in `gate.lua`: nothing remembered, the fresh
/// decision; remembered for this entry, that decision again; remembered for another
/// entry (or read by a dry run), a duplicate.
pub fn answer(
    reply: Value,
    token: &str,
    fresh: Decision,
    dry: bool,
) -> Result<(Decision, i64), RedisError> {
    let remembered = match reply {
        Value::Nil => return Ok((fresh, 0)),
        Value::BulkString(bytes) => bytes,
        Value::SimpleString(text) => text.into_bytes(),
        other => return Err(unexpected(format!("{other:?}"))),
    };
    let remembered = std::str::from_utf8(&remembered)
        .map_err(|_| unexpected("a decision memory that is not UTF-8".into()))?;
    let (entry, code, detail, progress) = parse(remembered)
        .ok_or_else(|| unexpected(format!("a decision memory of {remembered:?}")))?;
    if dry || entry != token {
        return Ok((Decision::Duplicate, 0));
    }
    let decision = Decision::from_code(code, detail)
        .ok_or_else(|| unexpected(format!("unknown decision code {code}")))?;
    Ok((decision, progress))
}

/// Splits a memory value from its end (the entry may hold `|`).
fn parse(value: &str) -> Option<(&str, i64, i64, i64)> {
    let mut fields = value.rsplitn(4, '|');
    let progress = fields.next()?.parse().ok()?;
    let detail = fields.next()?.parse().ok()?;
    let code = fields.next()?.parse().ok()?;
    Some((fields.next()?, code, detail, progress))
}

fn unexpected(detail: String) -> RedisError {
    RedisError::Reply {
        command: "decision memory",
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_reads_back_with_an_entry_that_holds_the_separator() {
        let token = "events|odd/1-0";
        let written = value(token, Decision::Suppressed { remaining_ms: 42 }, 3);
        assert_eq!(written, "events|odd/1-0|1|42|3");
        assert_eq!(parse(&written), Some((token, 1, 42, 3)));
        let extremes = value("t", Decision::BelowThreshold { count: -5 }, i64::MIN);
        assert_eq!(extremes, format!("t|2|-5|{}", i64::MIN));
    }

    #[test]
    fn the_entry_that_decided_gets_its_decision_and_another_a_duplicate() {
        let remembered = Value::BulkString(value("s/1-0", Decision::Skip, 0).into_bytes());
        let again = answer(remembered.clone(), "s/1-0", Decision::Execute, false);
        assert_eq!(again.ok(), Some((Decision::Skip, 0)));
        let other = answer(remembered.clone(), "s/2-0", Decision::Execute, false);
        assert_eq!(other.ok(), Some((Decision::Duplicate, 0)));
        let dry = answer(remembered, "s/1-0", Decision::Execute, true);
        assert_eq!(dry.ok(), Some((Decision::Duplicate, 0)));
        let fresh = answer(Value::Nil, "s/1-0", Decision::Skip, false);
        assert_eq!(fresh.ok(), Some((Decision::Skip, 0)));
    }

    #[test]
    fn a_memory_that_is_not_a_decision_is_an_error_of_its_pair() {
        for bad in [
            b"garbage".to_vec(),
            b"s/1-0|9|0|0".to_vec(),
            vec![0xff, b'|'],
        ] {
            let answered = answer(Value::BulkString(bad), "s/1-0", Decision::Execute, false);
            assert!(matches!(answered, Err(RedisError::Reply { .. })));
        }
        let answered = answer(Value::Int(1), "s/1-0", Decision::Execute, false);
        assert!(matches!(answered, Err(RedisError::Reply { .. })));
    }
}
