DROP FUNCTION rules_decided(uuid[], uuid[], date[]);
CREATE UNIQUE INDEX rule_executions_rule_key ON rule_executions (rule_id, event_id, event_day);
DROP INDEX rule_executions_key;
ALTER INDEX rule_executions_rule_key RENAME TO rule_executions_key;
