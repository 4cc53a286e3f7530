-- The counters' buckets that counted a failed execution, per rule, newest first:
-- where a page of `?status=failed` lies (rules_store::db::executions::list_for_rule).
--
-- The history is partitioned by day (000012), and a rule's failures are sparse or
-- absent: a page of them read straight from the log starts a scan in every
-- partition (100 for 90 days) to find a handful of rows, or none. The counters are
-- written in the transaction that records the executions they count, so the newest
-- buckets with `failed > 0` say how far back the page reaches, and the log is read
-- over those days only (none, for a rule that never failed).
--
-- Additive: nothing reads them before this version. Building them reads each table
-- once and holds off its writers meanwhile (the recorder's minutes: seconds on a
-- week of minutes; the hourly roll-up's quarter hours).
CREATE INDEX rule_stats_minute_failed_idx ON rule_stats_minute (rule_id, bucket_start DESC) WHERE failed > 0;
CREATE INDEX rule_stats_quarter_failed_idx ON rule_stats_quarter (rule_id, bucket_start DESC) WHERE failed > 0;
