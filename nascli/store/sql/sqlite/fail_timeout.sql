-- fail_timeout: Fail an expired lease whose expiries are spent, as timeout (reap).
UPDATE evaluation
SET status='failed',
    lease_expiries=:b_lease_expiries,
    seq=:b_seq,
    lease_expires_at=NULL,
    finished_at=((julianday('now') - 2440587.5) * 86400.0),
    error_kind='timeout',
    error_message=:b_error_message
WHERE evaluation.id = :b_evaluation_id AND evaluation.status = 'running';
