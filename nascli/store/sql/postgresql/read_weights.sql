-- read_weights: The stored weights of an evaluation (a donor, or the network `nas export` writes).
SELECT weights.data
FROM weights
WHERE weights.evaluation_id = :b_evaluation_id;
