"""Pure search core: genomes, operators, selection, strategies. Standard library only."""
