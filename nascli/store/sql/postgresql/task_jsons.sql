-- task_jsons: The task descriptions of the cache hits, copied onto the new rows.
SELECT evaluation.id, evaluation.task_json
FROM evaluation
WHERE evaluation.id IN (:b_evaluation_ids);
