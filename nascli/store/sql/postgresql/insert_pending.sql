-- insert_pending: Queue evaluations as pending; their ids in the rows' order.
INSERT INTO evaluation (run_id, individual_id, status, priority, attempt, failures, lease_expiries, releases, max_attempts, max_lease_expiries, task_json, genome, genome_hash, config_hash, created_at, extra_json)
VALUES (:b_run_id, :b_individual_id, :b_status, :b_priority, 0, 0, 0, 0, :b_max_attempts, :b_max_lease_expiries, :b_task_json, :b_genome, :b_genome_hash, :b_config_hash, :b_created_at, :b_extra_json)
RETURNING evaluation.id;
