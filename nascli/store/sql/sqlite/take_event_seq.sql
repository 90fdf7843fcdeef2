-- take_event_seq: Take the run's next event seq (locks the run row: events commit in seq order).
UPDATE run
SET event_counter=(run.event_counter + 1)
WHERE run.id = :b_run_id
RETURNING event_counter;
