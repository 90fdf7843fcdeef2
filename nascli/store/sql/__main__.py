"""`python -m nascli.store.sql`: rewrite the statement files from their builders."""

from nascli.store.sql import HERE, write_all

for path in write_all():
    print(path.relative_to(HERE.parent.parent.parent))
