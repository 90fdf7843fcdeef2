-- heartbeat: Extend a held claim's lease (fenced: no row updated means the claim is lost).
UPDATE evaluation
SET heartbeat_at=CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION),
    lease_expires_at=(CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION) + :b_lease)
WHERE evaluation.id = :b_evaluation_id AND evaluation.attempt = :b_attempt AND evaluation.status = 'running';
