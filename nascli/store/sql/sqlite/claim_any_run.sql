-- claim_any_run: Claim the next evaluation of any run: an expired lease, else the fair run's next pending row.
UPDATE evaluation
SET status='running',
    attempt=(evaluation.attempt + 1),
    lease_expiries=(evaluation.lease_expiries + CASE WHEN (evaluation.status = 'running') THEN 1 ELSE 0 END),
    worker_id=:b_worker_id,
    claimed_at=((julianday('now') - 2440587.5) * 86400.0),
    heartbeat_at=((julianday('now') - 2440587.5) * 86400.0),
    lease_expires_at=(((julianday('now') - 2440587.5) * 86400.0) + :b_lease),
    started_at=coalesce(evaluation.started_at, ((julianday('now') - 2440587.5) * 86400.0))
WHERE evaluation.id = coalesce((SELECT evaluation.id
        FROM evaluation
        WHERE evaluation.status = 'running' AND evaluation.lease_expires_at < ((julianday('now') - 2440587.5) * 86400.0)
        ORDER BY evaluation.lease_expires_at
        LIMIT 1 OFFSET 0), (SELECT evaluation.id
        FROM evaluation
        WHERE evaluation.status = 'pending' AND evaluation.run_id = (SELECT run.id
            FROM run
            WHERE run.status != 'finished' AND run.status != 'failed' AND run.status != 'cancelled' AND (SELECT run_pending.priority
                FROM evaluation AS run_pending
                WHERE run_pending.run_id = run.id AND run_pending.status = 'pending'
                ORDER BY run_pending.priority DESC
                LIMIT 1 OFFSET 0) IS NOT NULL
            ORDER BY (SELECT run_pending.priority
                FROM evaluation AS run_pending
                WHERE run_pending.run_id = run.id AND run_pending.status = 'pending'
                ORDER BY run_pending.priority DESC
                LIMIT 1 OFFSET 0) DESC, (SELECT count(*) AS count_1
                FROM evaluation AS run_running
                WHERE run_running.run_id = run.id AND run_running.status = 'running'), random()
            LIMIT 1 OFFSET 0)
        ORDER BY evaluation.priority DESC, evaluation.id
        LIMIT 1 OFFSET 0), (SELECT evaluation.id
        FROM evaluation
        WHERE evaluation.status = 'pending'
        ORDER BY evaluation.priority DESC, evaluation.id
        LIMIT 1 OFFSET 0)) AND (evaluation.status = 'pending' OR evaluation.status = 'running' AND evaluation.lease_expires_at < ((julianday('now') - 2440587.5) * 86400.0))
RETURNING id, attempt, task_json, run_id, lease_expires_at, lease_expiries, max_lease_expiries;
