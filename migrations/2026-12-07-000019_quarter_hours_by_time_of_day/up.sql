-- The quarter hours' counts by rule and UTC time of day (rules_store::db::stats::
-- sum_by_day). An answer in a time zone's days corrects each day's UTC day row by
-- the quarter hours between the zone's midnight and UTC's: the same hours of
-- every day (22:00-24:00 for Berlin in summer). Read from the primary key, a
-- window a day, a rule's 90 windows fell on ~50 leaf pages (its quarter hours in
-- time order, a page a day or two) and took ~90 descents; here they lie together
-- (rule, time of day, day), one range scan a distinct window reads them from a few
-- pages. On issue 17's 50M log: 89 pages read from the OS for a rule not in cache
-- (3-14 ms) against 7-8 (0.4-0.6 ms).
--
-- The counts are carried (INCLUDE), as in the primary key (000017), so the scan is
-- index-only. UTC, the time zone the roll-up's quarter hours are cut in, so the
-- expression is immutable.
CREATE INDEX rule_stats_quarter_time_of_day_idx ON rule_stats_quarter
  (rule_id, ((bucket_start AT TIME ZONE 'UTC')::time), bucket_start)
  INCLUDE (matched, executed, suppressed_by_cooldown, skipped, succeeded, failed);
