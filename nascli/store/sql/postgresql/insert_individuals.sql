-- insert_individuals: Record children; their ids in the rows' order.
INSERT INTO individual (run_id, island, generation, slot, genome, genome_hash, parents_json, operator, age, alive, created_at)
VALUES (:b_run_id, :b_island, :b_generation, :b_slot, :b_genome, :b_genome_hash, :b_parents_json, :b_operator, :b_age, :b_alive, :b_created_at)
RETURNING individual.id;
