-- individual_hashes: The genome hash and run of individuals about to be queued.
SELECT individual.id, individual.genome_hash, individual.run_id
FROM individual
WHERE individual.id IN (:b_individual_ids);
