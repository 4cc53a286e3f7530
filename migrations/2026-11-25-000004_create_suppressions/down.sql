DROP TABLE rule_suppressions;
