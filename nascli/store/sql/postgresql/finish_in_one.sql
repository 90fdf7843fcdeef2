-- finish_in_one: Fence, take the run's next completion seq, finish the row and notify the driver, in one statement.
WITH held AS (SELECT evaluation.id AS id, evaluation.run_id AS run_id
    FROM evaluation
    WHERE evaluation.id = :b_evaluation_id AND evaluation.attempt = :b_attempt AND evaluation.status = 'running'
    FOR UPDATE), next_seq AS (UPDATE run
    SET completion_counter=(run.completion_counter + 1)
    WHERE run.id = (SELECT held.run_id
        FROM held)
    RETURNING run.completion_counter), finished AS (UPDATE evaluation
    SET status=:b_status,
        failures=(evaluation.failures + :b_failed),
        settled_attempt=:b_attempt,
        settled_by='result',
        seq=(SELECT next_seq.completion_counter
        FROM next_seq),
        lease_expires_at=NULL,
        finished_at=CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION),
        error_kind=:b_v_error_kind,
        error_message=:b_v_error_message,
        val_accuracy=:b_v_val_accuracy,
        val_loss=:b_v_val_loss,
        test_accuracy=:b_v_test_accuracy,
        test_loss=:b_v_test_loss,
        train_accuracy=:b_v_train_accuracy,
        train_loss=:b_v_train_loss,
        params=:b_v_params,
        flops=:b_v_flops,
        epochs_run=:b_v_epochs_run,
        best_epoch=:b_v_best_epoch,
        train_seconds=:b_v_train_seconds,
        latency_ms=:b_v_latency_ms,
        peak_memory_bytes=:b_v_peak_memory_bytes,
        extra_json=:b_v_extra_json
    WHERE evaluation.id = :b_evaluation_id AND evaluation.attempt = :b_attempt AND evaluation.status = 'running' AND evaluation.id = (SELECT held.id
        FROM held)
    RETURNING evaluation.run_id)
SELECT finished.run_id, pg_notify('nascli_result', finished.run_id) AS pg_notify_1
FROM finished;
