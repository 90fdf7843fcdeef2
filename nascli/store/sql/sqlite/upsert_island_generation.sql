-- upsert_island_generation: Record how far an island has got.
INSERT INTO island (run_id, island, generation, updated_at)
VALUES (:b_run_id, :b_island, :b_generation, :b_updated_at)
ON CONFLICT (run_id, island) DO UPDATE
SET generation = excluded.generation,
    updated_at = excluded.updated_at;
