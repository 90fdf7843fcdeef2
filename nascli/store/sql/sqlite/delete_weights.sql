-- delete_weights: Drop an evaluation's stored weights before they are written (a retried write of the same claim).
DELETE
FROM weights
WHERE weights.evaluation_id = :b_evaluation_id;
