DROP FUNCTION histogram_add(BIGINT[], BIGINT[]);
DROP TABLE rule_stats_minute;
DROP TABLE rule_executions;
