-- run_exists: Whether the run exists (before children are recorded).
SELECT run.id
FROM run
WHERE run.id = :b_run_id;
