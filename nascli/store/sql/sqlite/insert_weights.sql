-- insert_weights: Store an evaluation's weights, in the transaction of its fenced finish.
INSERT INTO weights (evaluation_id, run_id, size_bytes, data, created_at)
VALUES (:b_evaluation_id, :b_run_id, :b_size_bytes, :b_data, :b_created_at);
