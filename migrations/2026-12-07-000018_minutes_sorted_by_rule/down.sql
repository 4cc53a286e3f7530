DROP FUNCTION rules_sort_minutes(int, timestamptz);
DROP TABLE rule_stats_minute_sorted;
