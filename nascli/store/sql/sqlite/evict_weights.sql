-- evict_weights: Delete weights that can no longer be a donor (the driver, in its step's transaction).
DELETE
FROM weights
WHERE weights.run_id = :b_run_id AND weights.evaluation_id IN (:b_evaluation_ids);
