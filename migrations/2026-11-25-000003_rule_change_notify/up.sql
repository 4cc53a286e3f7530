-- Rule changes reach running workers through NOTIFY on channel `rule_changes`,
-- sent by the database itself on commit, whoever wrote the row (the API, a script,
-- an operator in psql). Payload: {"id": "<uuid>", "version": <int>, "op": "INSERT"|"UPDATE"|"DELETE"}.
-- Workers LISTEN, reload that one rule, and reconcile periodically as a backstop.
CREATE FUNCTION notify_rule_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed rules%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    PERFORM pg_notify('rule_changes', json_build_object(
        'id', changed.id, 'version', changed.version, 'op', TG_OP)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER rules_notify_change
AFTER INSERT OR UPDATE OR DELETE ON rules
FOR EACH ROW EXECUTE FUNCTION notify_rule_change();
