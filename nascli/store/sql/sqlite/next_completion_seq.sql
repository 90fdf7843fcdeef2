-- next_completion_seq: Take the run's next completion seq; locks the run row, so completions commit in seq order.
UPDATE run
SET completion_counter=(run.completion_counter + 1)
WHERE run.id = :b_run_id
RETURNING completion_counter;
