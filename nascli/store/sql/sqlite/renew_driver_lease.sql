-- renew_driver_lease: Extend the search driver's lease; no row updated: another driver took the run over.
UPDATE run
SET driver_lease_expires_at=(((julianday('now') - 2440587.5) * 86400.0) + :b_seconds)
WHERE run.id = :b_run_id AND run.driver_owner = :b_owner;
