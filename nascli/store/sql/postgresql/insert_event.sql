-- insert_event: Append an event to the run's log.
INSERT INTO event (run_id, seq, kind, payload_json, created_at)
VALUES (:b_run_id, :b_seq, :b_kind, :b_payload_json, :b_created_at);
