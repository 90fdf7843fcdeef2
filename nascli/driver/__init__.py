"""The search driver: the only code that connects a strategy to the store.

- `session`: start or resume a run, local workers, stop signals, how the run ended
- `step`: the `Driver` and its step loop (fold finished results, propose, write one transaction)
- `strategy`: the run's strategy built from its configuration
- `events`: what the driver records besides rows (event kinds, migrant copies)
- `progress`: what a progress view shows
- `workers`: local workers to start and devices, live worker counts
"""
