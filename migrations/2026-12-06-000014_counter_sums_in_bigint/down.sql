DROP AGGREGATE rules_sum(bigint);
