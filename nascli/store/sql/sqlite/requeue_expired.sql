-- requeue_expired: An expired lease back to pending, counting one lease expiry (reap).
UPDATE evaluation
SET status='pending',
    lease_expiries=(evaluation.lease_expiries + 1),
    worker_id=NULL,
    lease_expires_at=NULL
WHERE evaluation.id = :b_evaluation_id AND evaluation.status = 'running';
