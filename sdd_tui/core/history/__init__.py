"""The run history: the store, run folders, typed records, queries, grouping, doctor."""
