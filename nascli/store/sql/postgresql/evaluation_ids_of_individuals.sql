-- evaluation_ids_of_individuals: The evaluations individuals already have (enqueue is idempotent per individual).
SELECT evaluation.individual_id, evaluation.id
FROM evaluation
WHERE evaluation.individual_id IN (:b_individual_ids);
