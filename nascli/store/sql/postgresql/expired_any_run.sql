-- expired_any_run: Running rows whose lease has expired, of any run (reap).
SELECT evaluation.id, evaluation.run_id, evaluation.lease_expiries, evaluation.max_lease_expiries
FROM evaluation
WHERE evaluation.status = 'running' AND evaluation.lease_expires_at < CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)
ORDER BY evaluation.id
FOR UPDATE SKIP LOCKED;
