-- settled: Who settled a row last: tells a retried write of our own from a lost claim.
SELECT evaluation.settled_attempt, evaluation.settled_by, evaluation.attempt, evaluation.status
FROM evaluation
WHERE evaluation.id = :b_evaluation_id;
