-- repository_size: How many weights a run's repository holds and their bytes.
SELECT count(*) AS count_1, coalesce(sum(weights.size_bytes), 0) AS coalesce_1
FROM weights
WHERE weights.run_id = :b_run_id;
