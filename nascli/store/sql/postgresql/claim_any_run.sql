-- claim_any_run: Claim the next evaluation of any run: an expired lease, else the fair run's next pending row.
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
        WHERE evaluation.status = 'running' AND evaluation.lease_expires_at < CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)
        ORDER BY evaluation.lease_expires_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED), (SELECT evaluation.id
        FROM evaluation
        WHERE evaluation.status = 'pending' AND evaluation.run_id = (SELECT run.id
            FROM run
            WHERE run.status != 'finished' AND run.status != 'failed' AND run.status != 'cancelled' AND (SELECT run_pending.priority
                FROM evaluation AS run_pending
                WHERE run_pending.run_id = run.id AND run_pending.status = 'pending'
                ORDER BY run_pending.priority DESC
                LIMIT 1) IS NOT NULL
            ORDER BY (SELECT run_pending.priority
                FROM evaluation AS run_pending
                WHERE run_pending.run_id = run.id AND run_pending.status = 'pending'
                ORDER BY run_pending.priority DESC
                LIMIT 1) DESC, (SELECT count(*) AS count_1
                FROM evaluation AS run_running
                WHERE run_running.run_id = run.id AND run_running.status = 'running'), random()
            LIMIT 1)
        ORDER BY evaluation.priority DESC, evaluation.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED), (SELECT evaluation.id
        FROM evaluation
        WHERE evaluation.status = 'pending'
        ORDER BY evaluation.priority DESC, evaluation.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED)) AND (evaluation.status = 'pending' OR evaluation.status = 'running' AND evaluation.lease_expires_at < CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION))
RETURNING evaluation.id, evaluation.attempt, evaluation.task_json, evaluation.run_id, evaluation.lease_expires_at, evaluation.lease_expiries, evaluation.max_lease_expiries;
