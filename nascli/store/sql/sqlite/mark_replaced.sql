-- mark_replaced: Individuals replaced in a generation are no longer alive.
UPDATE individual
SET alive=False,
    replaced_generation=:b_generation
WHERE individual.id IN (:b_individual_ids) AND individual.alive IS 1;
