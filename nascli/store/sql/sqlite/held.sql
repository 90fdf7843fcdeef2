-- held: Lock a held claim's row before its result is written (fenced).
SELECT evaluation.run_id, evaluation.failures, evaluation.max_attempts
FROM evaluation
WHERE evaluation.id = :b_evaluation_id AND evaluation.attempt = :b_attempt AND evaluation.status = 'running';
