-- claim_one_run: Claim the next evaluation of one run: an expired lease, else its next pending row.
UPDATE evaluation
SET status='running',
    attempt=(evaluation.attempt + 1),
    lease_expiries=(evaluation.lease_expiries + CASE WHEN (evaluation.status = 'running') THEN 1 ELSE 0 END),
    worker_id=:b_worker_id,
    claimed_at=CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION),
    heartbeat_at=CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION),
    lease_expires_at=(CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION) + :b_lease),
    started_at=coalesce(evaluation.started_at, CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION))
WHERE evaluation.id = coalesce((SELECT evaluation.id
        FROM evaluation
        WHERE evaluation.status = 'running' AND evaluation.lease_expires_at < CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION) AND evaluation.run_id = :b_run_id
        ORDER BY evaluation.lease_expires_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED), (SELECT evaluation.id
        FROM evaluation
        WHERE evaluation.status = 'pending' AND evaluation.run_id = :b_run_id
        ORDER BY evaluation.priority DESC, evaluation.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED)) AND (evaluation.status = 'pending' OR evaluation.status = 'running' AND evaluation.lease_expires_at < CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION))
RETURNING evaluation.id, evaluation.attempt, evaluation.task_json, evaluation.run_id, evaluation.lease_expires_at, evaluation.lease_expiries, evaluation.max_lease_expiries;
