-- stored_weight_ids: The evaluations of a run whose weights are stored.
SELECT weights.evaluation_id
FROM weights
WHERE weights.run_id = :b_run_id;
