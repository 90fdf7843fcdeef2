-- expired_any_run: Running rows whose lease has expired, of any run (reap).
SELECT evaluation.id, evaluation.run_id, evaluation.lease_expiries, evaluation.max_lease_expiries
FROM evaluation
WHERE evaluation.status = 'running' AND evaluation.lease_expires_at < ((julianday('now') - 2440587.5) * 86400.0)
ORDER BY evaluation.id;
