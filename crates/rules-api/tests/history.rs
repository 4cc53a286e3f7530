//! Executions and analytics, read from rows inserted directly (the worker writes them).

mod common;

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use common::*;
use rules_store::db::executions::{insert_new, ExecutionRow};
use rules_store::db::raw_json::RawJson;
use rules_store::db::record::{record_batch, Decided};
use rules_store::db::stats::{self, histogram_of, StatsRow};
use serde_json::{json, Value};
use uuid::Uuid;

fn execution(rule_id: Uuid, at: DateTime<Utc>, status: &str) -> ExecutionRow {
    ExecutionRow {
        id: Uuid::now_v7(),
        rule_id,
        event_id: Uuid::new_v4(),
        livestream_id: Uuid::parse_str(LS).expect("uuid"),
        executed_at: at,
        status: rules_core::Status::parse(status).expect("a status"),
        duration_ms: 12,
        result: RawJson::from_value(
            &json!({"actions": [{"type": "publish", "status": status, "duration_ms": 12}]}),
        ),
        event_day: at.date_naive(),
    }
}

/// Records executions as the worker does: with their counters, in one transaction.
async fn record(conn: &mut diesel_async::AsyncPgConnection, rows: &[ExecutionRow]) -> usize {
    let decided = Decided {
        executions: rows.to_vec(),
        ..Decided::default()
    };
    record_batch(conn, &decided)
        .await
        .expect("record")
        .executions
}

#[actix_web::test]
async fn executions_newest_first_filtered_and_paged() {
    let api = start().await;
    let rule = create(&api.service, rule_body("h")).await;
    let rule_id = Uuid::parse_str(rule["id"].as_str().expect("id")).expect("uuid");
    let base = Utc::now()
        .duration_trunc(TimeDelta::seconds(1))
        .expect("trunc")
        - Duration::hours(1);
    let rows: Vec<ExecutionRow> = (0..9)
        .map(|i| {
            execution(
                rule_id,
                base + Duration::minutes(i),
                if i % 3 == 0 { "failed" } else { "succeeded" },
            )
        })
        .collect();
    let mut conn = api.db.conn().await.expect("conn");
    assert_eq!(record(&mut conn, &rows).await, 9);
    assert_eq!(record(&mut conn, &rows[..2]).await, 0, "idempotent");

    let uri = format!("/api/rules/{rule_id}/executions");
    let (status, body) = get(&api.service, &format!("{uri}?limit=4")).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["id"], json!(rows[8].id), "newest first");
    assert_eq!(items[0]["result"]["actions"][0]["type"], "publish");
    let cursor = body["next_cursor"].as_str().expect("more pages");
    let (_, body) = get(&api.service, &format!("{uri}?limit=4&cursor={cursor}")).await;
    assert_eq!(body["items"][0]["id"], json!(rows[4].id));

    let (_, body) = get(&api.service, &format!("{uri}?status=failed")).await;
    assert_eq!(body["items"].as_array().expect("items").len(), 3);
    let from = (base + Duration::minutes(6)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, body) = get(&api.service, &format!("{uri}?from={from}")).await;
    assert_eq!(body["items"].as_array().expect("items").len(), 3);
    let (status, _) = get(&api.service, &format!("{uri}?status=maybe")).await;
    assert_eq!(status, 400);

    // A deleted rule's history stays readable.
    delete_rule(&api.service, rule_id).await;
    let (status, body) = get(&api.service, &uri).await;
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (200, Some(9))
    );
}

/// Every page of `uri` (`limit` 5), followed by its cursors: the ids in order.
async fn all_pages<S, B>(service: &S, uri: &str) -> Vec<Uuid>
where
    S: App<B>,
    B: actix_web::body::MessageBody,
{
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            Some(c) => format!("{uri}&limit=5&cursor={c}"),
            None => format!("{uri}&limit=5"),
        };
        let (status, body) = get(service, &page).await;
        assert_eq!(status, 200, "{body}");
        for item in body["items"].as_array().expect("items") {
            ids.push(Uuid::parse_str(item["id"].as_str().expect("id")).expect("uuid"));
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}

/// A page of failures is read where the counters put it: over the days they count
/// a page in, then (short of a page) before the counters' horizon, where the log
/// alone remembers. Every failure comes once, in order, however the pages fall
/// across days, the counters' minutes and quarter hours, and `from` and `to`.
#[actix_web::test]
async fn failed_pages_are_read_where_the_counters_put_them() {
    use rules_store::config::RetentionSettings;
    use rules_store::db::retention::{make_days, roll_up_stats};
    let api = start().await;
    let rule = create(&api.service, rule_body("failing")).await;
    let rule_id = Uuid::parse_str(rule["id"].as_str().expect("id")).expect("uuid");
    let quiet = create(&api.service, rule_body("never fails")).await;
    let quiet_id = quiet["id"].as_str().expect("id").to_owned();
    let now = Utc::now()
        .duration_trunc(TimeDelta::seconds(1))
        .expect("trunc");
    // Three failures and two successes a day over twelve days (the older ones'
    // minutes rolled up into quarter hours below), two in one minute today.
    let mut rows = Vec::new();
    for day in 0..12 {
        for (i, status) in ["failed", "succeeded", "failed", "succeeded", "failed"]
            .into_iter()
            .enumerate()
        {
            let at =
                now - Duration::days(day) - Duration::hours(1) - Duration::minutes(7 * i as i64);
            rows.push(execution(rule_id, at, status));
        }
    }
    rows.push(execution(rule_id, now - Duration::seconds(20), "failed"));
    rows.push(execution(rule_id, now - Duration::seconds(10), "failed"));
    rows.push(execution(
        Uuid::parse_str(&quiet_id).expect("uuid"),
        now - Duration::hours(2),
        "succeeded",
    ));
    let mut conn = api.db.conn().await.expect("conn");
    let mut days: Vec<_> = rows.iter().map(|r| r.executed_at.date_naive()).collect();
    // One failure older than the counters remember (`retention.stats_days`, 400 by
    // default): recorded without its counter, as if the roll-up had expired it.
    let forgotten = execution(rule_id, now - Duration::days(402), "failed");
    days.push(forgotten.event_day);
    days.sort_unstable();
    days.dedup();
    make_days(&mut conn, &days).await.expect("days");
    assert_eq!(record(&mut conn, &rows).await, rows.len());
    assert_eq!(
        insert_new(&mut conn, std::slice::from_ref(&forgotten))
            .await
            .expect("insert")
            .len(),
        1
    );
    let settings = RetentionSettings {
        stats_minutes_days: 7,
        stats_days: 400,
        ..api.settings.retention
    };
    let rolled = roll_up_stats(&mut conn, settings, None)
        .await
        .expect("roll-up");
    assert!(
        rolled.minutes_rolled_up > 0,
        "some failures are in quarter hours"
    );

    let newest_first = |rows: &mut Vec<&ExecutionRow>| {
        rows.sort_by_key(|r| std::cmp::Reverse((r.executed_at, r.id)));
        rows.iter().map(|r| r.id).collect::<Vec<Uuid>>()
    };
    let failed = |r: &&ExecutionRow| r.status == rules_core::Status::Failed;
    let mut expected: Vec<&ExecutionRow> = rows.iter().filter(failed).collect();
    expected.push(&forgotten);
    let uri = format!("/api/rules/{rule_id}/executions?status=failed");
    assert_eq!(
        all_pages(&api.service, &uri).await,
        newest_first(&mut expected)
    );

    // Within a range: its failures only.
    let (from, to) = (now - Duration::days(5), now - Duration::days(2));
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut within: Vec<&ExecutionRow> = rows
        .iter()
        .filter(failed)
        .filter(|r| r.executed_at >= from && r.executed_at < to)
        .collect();
    assert_eq!(within.len(), 9);
    let ranged = format!("{uri}&from={}&to={}", stamp(from), stamp(to));
    assert_eq!(
        all_pages(&api.service, &ranged).await,
        newest_first(&mut within)
    );

    // A rule that never failed: no page, and none of its successes.
    let (status, body) = get(
        &api.service,
        &format!("/api/rules/{quiet_id}/executions?status=failed"),
    )
    .await;
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
}

fn minute(
    rule_id: Uuid,
    at: DateTime<Utc>,
    executed: i64,
    failed: i64,
    suppressed: i64,
    ms: u32,
) -> StatsRow {
    let mut histogram = Vec::new();
    for _ in 0..executed {
        stats::histogram_add(&mut histogram, &histogram_of(ms));
    }
    StatsRow {
        rule_id,
        bucket_start: at,
        matched: executed + suppressed,
        executed,
        suppressed_by_cooldown: suppressed,
        succeeded: executed - failed,
        failed,
        duration_ms_sum: executed * i64::from(ms),
        duration_histogram: histogram,
        last_executed_at: (executed > 0).then_some(at + Duration::seconds(30)),
        skipped: 0,
    }
}

/// A new rule of `service`'s, and the hour that began three hours ago.
async fn rule_and_an_hour_three_hours_back<S, B>(service: &S) -> (Uuid, DateTime<Utc>)
where
    S: App<B>,
    B: actix_web::body::MessageBody,
{
    let rule = create(service, rule_body("a")).await;
    let rule_id = Uuid::parse_str(rule["id"].as_str().expect("id")).expect("uuid");
    let hour = Utc::now()
        .duration_trunc(TimeDelta::hours(1))
        .expect("trunc")
        - Duration::hours(3);
    (rule_id, hour)
}

/// An id is 404 on both history endpoints only with neither rule nor history,
/// whether or not anything lies in the range asked: a rule without history, or a
/// deleted one whose counters remain outside the range, is answered (empty).
#[actix_web::test]
async fn history_of_an_unknown_id_is_404_and_of_a_known_one_is_answered() {
    let api = start().await;
    let (rule_id, hour) = rule_and_an_hour_three_hours_back(&api.service).await;
    let day_back = (hour - Duration::days(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let requests = |id: Uuid| {
        [
            format!("/api/rules/{id}/executions"),
            format!("/api/rules/{id}/executions?status=failed"),
            format!("/api/rules/{id}/analytics"),
            format!("/api/rules/{id}/analytics?bucket=day&tz=Europe/Berlin&to={day_back}"),
        ]
    };
    let statuses = |uris: [String; 4]| {
        let service = &api.service;
        async move {
            let mut statuses = Vec::new();
            for uri in uris {
                let (status, body) = get(service, &uri).await;
                if status == 404 {
                    assert_eq!(body["error"]["code"], "not_found", "{uri}: {body}");
                }
                statuses.push(status);
            }
            statuses
        }
    };
    assert_eq!(statuses(requests(Uuid::new_v4())).await, [404; 4]);
    assert_eq!(
        statuses(requests(rule_id)).await,
        [200; 4],
        "a rule with no history"
    );

    // Deleted, with counters in the last hours only: every request is answered,
    // those whose range holds none of them as well.
    let mut conn = api.db.conn().await.expect("conn");
    stats::add(&mut conn, &[minute(rule_id, hour, 3, 1, 0, 5)])
        .await
        .expect("add");
    delete_rule(&api.service, rule_id).await;
    assert_eq!(statuses(requests(rule_id)).await, [200; 4], "history kept");
}

#[actix_web::test]
async fn analytics_from_counters() {
    let api = start().await;
    let (rule_id, hour) = rule_and_an_hour_three_hours_back(&api.service).await;
    let mut conn = api.db.conn().await.expect("conn");
    stats::add(
        &mut conn,
        &[
            minute(rule_id, hour, 10, 1, 2, 5),
            minute(rule_id, hour + Duration::minutes(59), 5, 0, 0, 40),
            minute(rule_id, hour + Duration::hours(2), 5, 2, 3, 400),
        ],
    )
    .await
    .expect("add");
    // Adding to an existing minute accumulates.
    stats::add(&mut conn, &[minute(rule_id, hour, 10, 0, 0, 5)])
        .await
        .expect("add");

    let from = hour.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (hour + Duration::hours(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, a) = get(
        &api.service,
        &format!("/api/rules/{rule_id}/analytics?from={from}&to={to}&bucket=hour"),
    )
    .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        (
            a["matched"].as_i64(),
            a["executed"].as_i64(),
            a["suppressed_by_cooldown"].as_i64()
        ),
        (Some(35), Some(30), Some(5))
    );
    assert_eq!(
        (a["succeeded"].as_i64(), a["failed"].as_i64()),
        (Some(27), Some(3))
    );
    assert_eq!(a["success_rate"], json!(0.9));
    assert_eq!(
        a["avg_duration_ms"],
        json!((20.0 * 5.0 + 5.0 * 40.0 + 5.0 * 400.0) / 30.0)
    );
    assert_eq!(a["p95_duration_ms"], json!(500.0));
    let series = a["series"].as_array().expect("series");
    assert_eq!(series.len(), 3, "{series:?}");
    assert_eq!(
        series
            .iter()
            .map(|p| p["executed"].as_i64().unwrap_or(-1))
            .collect::<Vec<_>>(),
        vec![25, 0, 5]
    );
    for p in series {
        assert_eq!(
            p["matched"].as_i64(),
            Some(
                p["executed"].as_i64().unwrap_or(0)
                    + p["suppressed_by_cooldown"].as_i64().unwrap_or(0)
            )
        );
    }
    let (_, a) = get(
        &api.service,
        &format!("/api/rules/{rule_id}/analytics?from={from}&to={to}&bucket=minute"),
    )
    .await;
    assert_eq!(a["series"].as_array().map(Vec::len), Some(180));
    // Default range: the last 24 hours, hourly.
    let (_, a) = get(&api.service, &format!("/api/rules/{rule_id}/analytics")).await;
    assert_eq!(a["executed"].as_i64(), Some(30));
    assert!(a["series"].as_array().map(Vec::len).unwrap_or(0) >= 24);
    for bad in [
        "bucket=week",
        &format!("from={to}&to={from}"),
        "from=yesterday",
    ] {
        let (status, body) = get(
            &api.service,
            &format!("/api/rules/{rule_id}/analytics?{bad}"),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let _: Value = a;
}

#[actix_web::test]
async fn analytics_days_follow_the_streamers_time_zone() {
    let api = start().await;
    let rule = create(&api.service, rule_body("tz")).await;
    let rule_id = Uuid::parse_str(rule["id"].as_str().expect("id")).expect("uuid");
    let at = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    };
    let mut conn = api.db.conn().await.expect("conn");
    // Around Berlin's midnight on the night the clocks go back (a 25-hour day).
    stats::add(
        &mut conn,
        &[
            minute(rule_id, at("2026-10-24T21:59:00Z"), 1, 0, 0, 5), // 23:59 on the 24th
            minute(rule_id, at("2026-10-24T22:00:00Z"), 2, 0, 0, 5), // 00:00 on the 25th
            minute(rule_id, at("2026-10-25T22:59:00Z"), 4, 0, 0, 5), // 23:59 on the 25th
        ],
    )
    .await
    .expect("add");
    let uri = format!(
        "/api/rules/{rule_id}/analytics?from=2026-10-24T00:00:00%2B02:00&to=2026-10-26T00:00:00%2B01:00&bucket=day&tz=Europe/Berlin"
    );
    let (status, a) = get(&api.service, &uri).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["tz"], "Europe/Berlin");
    let series: Vec<(String, i64)> = a["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|p| {
            (
                p["bucket_start"].as_str().unwrap_or("").to_owned(),
                p["executed"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        series,
        vec![
            ("2026-10-24T00:00:00+02:00".to_owned(), 1),
            ("2026-10-25T00:00:00+02:00".to_owned(), 6),
        ]
    );
    let (status, body) = get(
        &api.service,
        &format!("/api/rules/{rule_id}/analytics?tz=Europe/Atlantis"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("tz"));
}

#[actix_web::test]
async fn rolled_up_counters_answer_as_the_minutes_did() {
    use rules_store::config::RetentionSettings;
    use rules_store::db::retention::roll_up_stats;
    let api = start().await;
    let rule = create(&api.service, rule_body("rollup")).await;
    let rule_id = Uuid::parse_str(rule["id"].as_str().expect("id")).expect("uuid");
    let analytics = |query: &str| format!("/api/rules/{rule_id}/analytics?{query}");
    let settings = RetentionSettings {
        stats_minutes_days: 7,
        stats_days: 400,
        ..api.settings.retention
    };
    // Two days of minutes, ten to nine days ago, every 7 minutes (so minutes fall
    // on both sides of every quarter, half hour and hour), with durations spread
    // over the histogram.
    let first = Utc::now()
        .duration_trunc(TimeDelta::days(1))
        .expect("trunc")
        - Duration::days(10);
    let rows: Vec<StatsRow> = (0..2 * 24 * 60 / 7)
        .map(|i| {
            let executed = 1 + i % 4;
            let ms = [1, 4, 30, 700][usize::try_from(i % 4).expect("index")];
            minute(
                rule_id,
                first + Duration::minutes(7 * i),
                executed,
                i % 2,
                i % 3,
                ms,
            )
        })
        .collect();
    let mut conn = api.db.conn().await.expect("conn");
    stats::add(&mut conn, &rows).await.expect("add");
    let from = (first - Duration::hours(12)).format("%Y-%m-%dT%H:%M:%SZ");
    let to = (first + Duration::days(3)).format("%Y-%m-%dT%H:%M:%SZ");
    // Hour and day buckets in time zones a whole hour, a half and three quarters
    // off UTC, and totals over a range whose ends are inside UTC hours.
    let queries: Vec<String> = ["UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu"]
        .iter()
        .flat_map(|tz| {
            ["hour", "day"].map(|bucket| format!("from={from}&to={to}&bucket={bucket}&tz={tz}"))
        })
        .chain([format!(
            "from={}&to={}&bucket=day",
            (first + Duration::minutes(45)).format("%Y-%m-%dT%H:%M:%SZ"),
            (first + Duration::hours(30) + Duration::minutes(15)).format("%Y-%m-%dT%H:%M:%SZ")
        )])
        .collect();
    let mut before = Vec::new();
    for q in &queries {
        let (status, body) = get(&api.service, &analytics(q)).await;
        assert_eq!(status, 200, "{q}: {body}");
        assert!(body["executed"].as_i64().unwrap_or(0) > 0, "{q}: {body}");
        before.push(body);
    }
    // Minute buckets that far back are refused, saying why (whether rolled up yet
    // or not: the answer does not depend on when the roll-up ran).
    let minute_query = format!("from={from}&to={to}&bucket=minute");
    let (status, body) = get(&api.service, &analytics(&minute_query)).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("retention.stats_minutes_days"),
        "{message}"
    );
    let recent = format!("from={}&bucket=minute", since_days(6));
    assert_eq!(get(&api.service, &analytics(&recent)).await.0, 200);

    let done = roll_up_stats(&mut conn, settings, None)
        .await
        .expect("roll up");
    assert_eq!(done.minutes_rolled_up, rows.len() as i64);
    assert_eq!(done.quarters_expired, 0);
    let (minutes_left, quarters) = table_sizes(&mut conn, rule_id).await;
    assert_eq!(minutes_left, 0);
    assert!(quarters > 0 && quarters < rows.len() as i64, "{quarters}");

    for (q, expected) in queries.iter().zip(&before) {
        let (status, body) = get(&api.service, &analytics(q)).await;
        assert_eq!(status, 200, "{q}: {body}");
        assert_eq!(&body, expected, "{q}: the answer changed with the roll-up");
    }
    // A minute written late, into a quarter already rolled up, is added to it.
    stats::add(
        &mut conn,
        &[minute(rule_id, first + Duration::minutes(1), 5, 0, 0, 1)],
    )
    .await
    .expect("add");
    let q = &queries[0];
    let expected = before[0]["executed"].as_i64().unwrap_or(0) + 5;
    assert_eq!(
        get(&api.service, &analytics(q)).await.1["executed"],
        expected
    );
    let done = roll_up_stats(&mut conn, settings, None)
        .await
        .expect("roll up");
    assert_eq!(done.minutes_rolled_up, 1);
    assert_eq!(
        get(&api.service, &analytics(q)).await.1["executed"],
        expected
    );
    assert_eq!(table_sizes(&mut conn, rule_id).await, (0, quarters));

    // 400 days on, the quarters are gone.
    let later = Utc::now() + Duration::days(400);
    let done = roll_up_stats(&mut conn, settings, Some(later))
        .await
        .expect("roll up");
    assert_eq!(done.quarters_expired, quarters);
    assert_eq!(table_sizes(&mut conn, rule_id).await, (0, 0));
}

/// Day buckets are read from the day rows, corrected at both ends by the quarter
/// hours between each end and its nearest UTC midnight; every answer equals the
/// one summed from the quarter hours and minutes themselves, in zones whole,
/// half and three quarters of an hour off UTC on either side, over ranges whose
/// ends fall anywhere, with minutes rolled up, not yet rolled up, and written
/// late into days already rolled up.
#[actix_web::test]
async fn day_buckets_from_day_rows_answer_as_the_quarter_hours_do() {
    use rules_api::analytics::{aggregate, range, starts, time_zone, Bucket};
    use rules_store::config::RetentionSettings;
    use rules_store::db::retention::roll_up_stats;
    let api = start().await;
    let rule_id = Uuid::new_v4();
    let settings = RetentionSettings {
        stats_minutes_days: 7,
        stats_days: 400,
        ..api.settings.retention
    };
    let now = Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .expect("trunc");
    // Every 37 minutes over the last 12 days, with varying outcomes and durations.
    let rows: Vec<StatsRow> = (0..12 * 24 * 60 / 37)
        .map(|i| {
            let ms = [1, 4, 30, 700, 9_000][usize::try_from(i % 5).expect("index")];
            minute(
                rule_id,
                now - Duration::minutes(37 * i + 3),
                1 + i % 3,
                i % 2,
                i % 4,
                ms,
            )
        })
        .collect();
    let mut conn = api.db.conn().await.expect("conn");
    stats::add(&mut conn, &rows).await.expect("add");
    let done = roll_up_stats(&mut conn, settings, None)
        .await
        .expect("roll up");
    assert!(done.minutes_rolled_up > 0);
    // Written late: into a day already rolled up, and not rolled up yet.
    stats::add(
        &mut conn,
        &[minute(
            rule_id,
            now - Duration::days(10) - Duration::minutes(1),
            7,
            1,
            2,
            40,
        )],
    )
    .await
    .expect("add");

    let midnight = now.duration_trunc(TimeDelta::days(1)).expect("trunc");
    let ranges = [
        (now - Duration::days(12) + Duration::minutes(17), now),
        (
            now - Duration::days(11) - Duration::hours(5) - Duration::minutes(3),
            now - Duration::days(8) + Duration::hours(7),
        ),
        (midnight - Duration::days(11), midnight - Duration::days(2)),
        (
            midnight - Duration::days(9) + Duration::hours(12),
            midnight - Duration::days(9) + Duration::hours(13),
        ),
    ];
    let zones = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Asia/Kathmandu",
        "America/St_Johns",
        "Pacific/Chatham",
        "Australia/Lord_Howe",
    ];
    for (from, to) in ranges {
        for zone in zones {
            let tz = time_zone(Some(zone)).expect("tz");
            let (from, to) = range(Some(from), Some(to), Utc::now()).expect("range");
            let starts = starts(from, to, Bucket::Day, tz).expect("starts");
            let answer = |sums| {
                aggregate(rule_id, (from, to), Bucket::Day, (tz, &starts), sums).expect("aggregate")
            };
            let by_day = stats::sum_by_day(&mut conn, rule_id, (from, to), &starts)
                .await
                .expect("by day");
            let by_bucket = stats::sum_by_bucket(&mut conn, rule_id, (from, to), &starts)
                .await
                .expect("by bucket");
            let (by_day, by_bucket) = (answer(&by_day), answer(&by_bucket));
            assert_eq!(by_day, by_bucket, "{zone}, {from} to {to}");
            assert!(by_day.executed > 0, "{zone}, {from} to {to}");
        }
    }
}

/// The roll-up moves whole UTC days, each in one statement ordered by rule: run
/// hourly, as the workers run it, it moves nothing until a day has ended
/// `stats_minutes_days` ago, then the day, and a rule's quarter hours of that day
/// lie together in the table (a multi-day answer reads a few pages per day, not
/// one per hour). Run hour by hour, 000008's roll-up interleaved the two rules'
/// hours.
#[actix_web::test]
async fn the_roll_up_writes_a_rules_day_together() {
    use rules_store::config::RetentionSettings;
    use rules_store::db::retention::roll_up_stats;
    let api = start().await;
    let settings = RetentionSettings {
        stats_minutes_days: 7,
        stats_days: 400,
        ..api.settings.retention
    };
    let rules: Vec<Uuid> = (0..2).map(|_| Uuid::new_v4()).collect();
    let day = Utc::now()
        .duration_trunc(TimeDelta::days(1))
        .expect("trunc")
        - Duration::days(10);
    // Every rule active at the start and the middle of every hour of the day.
    let rows: Vec<StatsRow> = (0..48)
        .flat_map(|half_hour| {
            let at = day + Duration::minutes(30 * half_hour);
            rules.iter().map(move |rule| minute(*rule, at, 1, 0, 0, 5))
        })
        .collect();
    let mut conn = api.db.conn().await.expect("conn");
    stats::add(&mut conn, &rows).await.expect("add");
    let ended = day + Duration::days(1 + 7);
    for hour in (1..=24).rev() {
        let done = roll_up_stats(&mut conn, settings, Some(ended - Duration::hours(hour)))
            .await
            .expect("roll up");
        assert_eq!(
            done.minutes_rolled_up, 0,
            "{hour} h before the day ended seven days ago: nothing moves"
        );
    }
    let done = roll_up_stats(&mut conn, settings, Some(ended))
        .await
        .expect("roll up");
    assert_eq!(done.minutes_rolled_up, rows.len() as i64);

    let order = rules_in_table_order(&mut conn, "rule_stats_quarter", &rules).await;
    assert_eq!(order.len(), 2 * 48);
    let changes = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(changes, 1, "each rule's day in one run of rows: {order:?}");
}

/// An hour after a UTC day has ended, the roll-up writes that day's minutes again
/// in key order (migration 000018), so a rule's minutes of the day lie together
/// (an answer over a week read a heap page per minute); the answers are the same
/// before and after, and a day is sorted once.
#[actix_web::test]
async fn the_roll_up_sorts_an_ended_days_minutes_by_rule() {
    use rules_api::analytics::{aggregate, starts, Bucket};
    use rules_store::db::retention::roll_up_stats;
    let api = start().await;
    let settings = api.settings.retention;
    let rules: Vec<Uuid> = (0..2).map(|_| Uuid::new_v4()).collect();
    let today = Utc::now()
        .duration_trunc(TimeDelta::days(1))
        .expect("trunc");
    let yesterday = today - Duration::days(1);
    // Both rules active every half hour of yesterday, written as they came.
    let rows: Vec<StatsRow> = (0..48)
        .flat_map(|half_hour| {
            let at = yesterday + Duration::minutes(30 * half_hour + 7);
            rules
                .iter()
                .map(move |rule| minute(*rule, at, 1 + half_hour % 3, 0, 1, 40))
        })
        .collect();
    let mut conn = api.db.conn().await.expect("conn");
    stats::add(&mut conn, &rows).await.expect("add");
    let range = (yesterday, today);
    let hours = starts(range.0, range.1, Bucket::Hour, chrono_tz::UTC).expect("starts");
    let mut answers = Vec::new();
    for &rule in &rules {
        let sums = stats::sum_by_bucket(&mut conn, rule, range, &hours)
            .await
            .expect("sums");
        answers.push(aggregate(
            rule,
            range,
            Bucket::Hour,
            (chrono_tz::UTC, &hours),
            &sums,
        ));
    }
    let interleaved = rules_in_table_order(&mut conn, "rule_stats_minute", &rules).await;
    assert_eq!(interleaved.windows(2).filter(|w| w[0] != w[1]).count(), 95);

    // Half an hour after midnight the day has not ended an hour ago.
    let done = roll_up_stats(&mut conn, settings, Some(today + Duration::minutes(30)))
        .await
        .expect("roll up");
    assert_eq!(done.minutes_sorted, 0);
    let done = roll_up_stats(&mut conn, settings, Some(today + Duration::hours(1)))
        .await
        .expect("roll up");
    assert_eq!(done.minutes_sorted, rows.len() as i64);
    assert_eq!(done.minutes_rolled_up, 0);
    let order = rules_in_table_order(&mut conn, "rule_stats_minute", &rules).await;
    assert_eq!(order.len(), rows.len());
    let changes = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(
        changes, 1,
        "each rule's minutes of the day together: {order:?}"
    );
    for (&rule, before) in rules.iter().zip(&answers) {
        let sums = stats::sum_by_bucket(&mut conn, rule, range, &hours)
            .await
            .expect("sums");
        let after = aggregate(rule, range, Bucket::Hour, (chrono_tz::UTC, &hours), &sums);
        assert_eq!(&after.expect("after"), before.as_ref().expect("before"));
    }
    let done = roll_up_stats(&mut conn, settings, Some(today + Duration::hours(2)))
        .await
        .expect("roll up");
    assert_eq!(done.minutes_sorted, 0, "a day is sorted once");
}

/// The rules of `rules`' rows of `table`, in the order the rows lie in the table.
async fn rules_in_table_order(
    conn: &mut diesel_async::AsyncPgConnection,
    table: &str,
    rules: &[Uuid],
) -> Vec<Uuid> {
    use diesel::sql_types::Uuid as SqlUuid;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = SqlUuid)]
        rule_id: Uuid,
    }
    diesel::sql_query(format!(
        "SELECT rule_id FROM {table} WHERE rule_id = ANY($1) ORDER BY ctid"
    ))
    .bind::<diesel::sql_types::Array<SqlUuid>, _>(rules)
    .load::<Row>(conn)
    .await
    .expect("rows")
    .into_iter()
    .map(|r| r.rule_id)
    .collect()
}

/// `days` days ago, as a query parameter.
fn since_days(days: i64) -> String {
    (Utc::now() - Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A rule's minute rows and quarter-hour rows.
async fn table_sizes(conn: &mut diesel_async::AsyncPgConnection, rule_id: Uuid) -> (i64, i64) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use rules_store::db::schema::{rule_stats_minute as m, rule_stats_quarter as q};
    let minutes = m::table
        .filter(m::rule_id.eq(rule_id))
        .count()
        .get_result(conn)
        .await
        .expect("count");
    let quarters = q::table
        .filter(q::rule_id.eq(rule_id))
        .count()
        .get_result(conn)
        .await
        .expect("count");
    (minutes, quarters)
}

/// A range whose counters hold suppressions only (no execution, so no duration in
/// any histogram) answers zeros and no percentile, by hour and by day: the sums of
/// histogram buckets no row has are 0, not null (migration 000014's `rules_sum`
/// starts at 0; a null would not decode).
#[actix_web::test]
async fn a_range_of_suppressions_only_sums_its_empty_histograms_to_zero() {
    let api = start().await;
    let (rule_id, hour) = rule_and_an_hour_three_hours_back(&api.service).await;
    let mut conn = api.db.conn().await.expect("conn");
    stats::add(
        &mut conn,
        &[
            minute(rule_id, hour, 0, 0, 3, 0),
            minute(rule_id, hour + Duration::minutes(70), 0, 0, 2, 0),
        ],
    )
    .await
    .expect("add");
    let from = (hour - Duration::days(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for bucket in ["hour", "day"] {
        let (status, a) = get(
            &api.service,
            &format!("/api/rules/{rule_id}/analytics?from={from}&bucket={bucket}&tz=Europe/Berlin"),
        )
        .await;
        assert_eq!(status, 200, "{bucket}: {a}");
        assert_eq!(
            (
                a["matched"].as_i64(),
                a["executed"].as_i64(),
                a["suppressed_by_cooldown"].as_i64(),
                a["p95_duration_ms"].is_null(),
                a["avg_duration_ms"].is_null(),
            ),
            (Some(5), Some(0), Some(5), true, true),
            "{bucket}: {a}"
        );
    }
}
