"""`nas report`: gather a run's results from the store into plain dataclasses, render them as
tables/JSON/CSV/Markdown, and draw plots. Read-only: nothing here writes to the database."""
