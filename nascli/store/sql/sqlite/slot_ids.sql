-- slot_ids: The individuals already recorded in these generations (add_individuals is idempotent per slot).
SELECT individual.id, individual.island, individual.generation, individual.slot
FROM individual
WHERE individual.run_id = :b_run_id AND individual.generation IN (:b_generations);
