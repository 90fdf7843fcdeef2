-- fail_exhausted: Fail a just-claimed row whose lease expiries are spent, as timeout (fenced).
UPDATE evaluation
SET status='failed',
    settled_attempt=:b_attempt,
    settled_by='result',
    seq=:b_seq,
    lease_expires_at=NULL,
    finished_at=((julianday('now') - 2440587.5) * 86400.0),
    error_kind='timeout',
    error_message=:b_error_message
WHERE evaluation.id = :b_evaluation_id AND evaluation.attempt = :b_attempt AND evaluation.status = 'running';
