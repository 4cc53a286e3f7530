-- The execution log keeps one B-tree on random keys fewer per execution: the index
-- on `id` alone goes. `id` is derived from (rule_id, event_id)
-- (rules_core::execution_id), which stays UNIQUE, so ids stay unique; every write
-- (ON CONFLICT) and every lookup goes by the pair or by (rule_id, executed_at, id).
-- Dropping a constraint is instant on any size of table; the unique index on the
-- pair identifies rows for logical replication.
ALTER TABLE rule_executions DROP CONSTRAINT rule_executions_pkey;
ALTER TABLE rule_executions REPLICA IDENTITY USING INDEX rule_executions_rule_event_key;
