-- heartbeat: Extend a held claim's lease (fenced: no row updated means the claim is lost).
UPDATE evaluation
SET heartbeat_at=((julianday('now') - 2440587.5) * 86400.0),
    lease_expires_at=(((julianday('now') - 2440587.5) * 86400.0) + :b_lease)
WHERE evaluation.id = :b_evaluation_id AND evaluation.attempt = :b_attempt AND evaluation.status = 'running';
