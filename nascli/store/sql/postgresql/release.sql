-- release: Give a claim back at once (SIGTERM): pending again, no attempt counted (fenced).
UPDATE evaluation
SET status='pending',
    releases=(evaluation.releases + 1),
    settled_attempt=:b_attempt,
    settled_by='release',
    worker_id=NULL,
    lease_expires_at=NULL
WHERE evaluation.id = :b_evaluation_id AND evaluation.attempt = :b_attempt AND evaluation.status = 'running'
RETURNING evaluation.run_id;
