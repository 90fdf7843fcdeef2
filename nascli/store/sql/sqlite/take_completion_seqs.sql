-- take_completion_seqs: Take `count` completion seqs of the run at once (locks the run row, as one completion does).
UPDATE run
SET completion_counter=(run.completion_counter + :b_count)
WHERE run.id = :b_run_id
RETURNING completion_counter;
