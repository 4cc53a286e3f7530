ALTER FUNCTION rules_decided(uuid[], uuid[], date[]) RESET plan_cache_mode;
