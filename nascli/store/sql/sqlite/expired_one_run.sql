-- expired_one_run: Running rows of one run whose lease has expired (reap).
SELECT evaluation.id, evaluation.run_id, evaluation.lease_expiries, evaluation.max_lease_expiries
FROM evaluation
WHERE evaluation.status = 'running' AND evaluation.lease_expires_at < ((julianday('now') - 2440587.5) * 86400.0) AND evaluation.run_id = :b_run_id
ORDER BY evaluation.id;
