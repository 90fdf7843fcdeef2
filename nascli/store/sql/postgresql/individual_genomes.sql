-- individual_genomes: The genomes of the run's individuals that receive cached results.
SELECT individual.id, individual.genome, individual.genome_hash
FROM individual
WHERE individual.id IN (:b_individual_ids) AND individual.run_id = :b_run_id;
