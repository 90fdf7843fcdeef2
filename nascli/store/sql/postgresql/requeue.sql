-- requeue: A retryable failure with attempts left: the row goes back to pending (fenced).
UPDATE evaluation
SET status='pending',
    failures=:b_failures,
    settled_attempt=:b_attempt,
    settled_by='result',
    worker_id=NULL,
    lease_expires_at=NULL,
    error_kind=:b_error_kind,
    error_message=:b_error_message
WHERE evaluation.id = :b_evaluation_id AND evaluation.attempt = :b_attempt AND evaluation.status = 'running';
