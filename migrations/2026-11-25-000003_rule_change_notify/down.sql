DROP TRIGGER rules_notify_change ON rules;
DROP FUNCTION notify_rule_change();
