"""Reference loops for benchmarks/queue_throughput.py: the raw-SQL ceiling and the Optuna peer.

Each `*_process` function runs in its own process, waits at a start barrier, works until the
queue (or trial budget) is exhausted and puts (worker index, completed count) on a result queue.
The raw loops do what our store does per task with none of its care: claim one row with a
lease and an attempt bump, then complete it guarded by the attempt.
"""

from __future__ import annotations

import sqlite3
import time

RAW_TABLE = "raw_queue"


# --------------------------------------------------------------------------- PostgreSQL, psycopg

def pg_prepare(dsn: str, tasks: int) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        conn.execute(f"""CREATE TABLE {RAW_TABLE} (
            id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'pending', priority int NOT NULL DEFAULT 0,
            attempt int NOT NULL DEFAULT 0, worker_id text, lease_expires_at timestamptz,
            task_json text NOT NULL, result_json text, finished_at timestamptz)""")
        conn.execute(f"CREATE INDEX ON {RAW_TABLE} (status, priority DESC, id)")
        conn.execute(f"INSERT INTO {RAW_TABLE} (task_json) SELECT '{{\"genome\": \"In_8_8:D_10\"}}' "
                     f"FROM generate_series(1, {tasks})")


def pg_process(dsn: str, index: int, barrier, results) -> None:
    import psycopg

    done = 0
    with psycopg.connect(dsn) as conn:
        barrier.wait()
        while True:
            with conn.transaction():
                row = conn.execute(
                    f"""UPDATE {RAW_TABLE} SET status='running', attempt=attempt+1, worker_id=%s,
                        lease_expires_at=now() + interval '120 seconds'
                        WHERE id = (SELECT id FROM {RAW_TABLE} WHERE status='pending'
                                    ORDER BY priority DESC, id FOR UPDATE SKIP LOCKED LIMIT 1)
                        RETURNING id, attempt, task_json""", (f"raw-{index}",)).fetchone()
            if row is None:
                break
            with conn.transaction():
                conn.execute(f"""UPDATE {RAW_TABLE} SET status='done', result_json='{{}}', finished_at=now()
                                 WHERE id=%s AND attempt=%s AND status='running'""", (row[0], row[1]))
            done += 1
    results.put((index, done))


# ------------------------------------------------------------------------- SQLite, stdlib sqlite3

def sqlite_prepare(path: str, tasks: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
    conn.execute(f"""CREATE TABLE {RAW_TABLE} (
        id integer PRIMARY KEY, status text NOT NULL DEFAULT 'pending', priority int NOT NULL DEFAULT 0,
        attempt int NOT NULL DEFAULT 0, worker_id text, lease_expires_at real, task_json text NOT NULL,
        result_json text, finished_at real)""")
    conn.execute(f"CREATE INDEX raw_claim ON {RAW_TABLE} (status, priority DESC, id)")
    conn.executemany(f"INSERT INTO {RAW_TABLE} (task_json) VALUES (?)",
                     [('{"genome": "In_8_8:D_10"}',)] * tasks)
    conn.close()


def sqlite_process(path: str, index: int, barrier, results) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA synchronous=FULL")
    done = 0
    barrier.wait()
    while True:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            f"""UPDATE {RAW_TABLE} SET status='running', attempt=attempt+1, worker_id=?,
                lease_expires_at=unixepoch('subsec') + 120
                WHERE id = (SELECT id FROM {RAW_TABLE} WHERE status='pending' ORDER BY priority DESC, id LIMIT 1)
                RETURNING id, attempt, task_json""", (f"raw-{index}",)).fetchone()
        conn.execute("COMMIT")
        if row is None:
            break
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"""UPDATE {RAW_TABLE} SET status='done', result_json='{{}}', finished_at=unixepoch('subsec')
                         WHERE id=? AND attempt=? AND status='running'""", (row[0], row[1]))
        conn.execute("COMMIT")
        done += 1
    conn.close()
    results.put((index, done))


# ------------------------------------------------------------------------------ Optuna RDB storage

def optuna_process(storage_url: str, study_name: str, trials: int, index: int, barrier, results) -> None:
    import logging

    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=storage_url,
                              sampler=optuna.samplers.RandomSampler(seed=index))
    barrier.wait()
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=trials)
    results.put((index, trials))


def optuna_prepare(storage_url: str, study_name: str) -> None:
    import logging

    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    optuna.create_study(study_name=study_name, storage=storage_url)


def timed_processes(target, args_for, count: int, timeout: float = 600.0) -> tuple[float, list[int]]:
    """Start `count` processes of `target(*args_for(i), barrier, results)`, release them together and
    return (wall seconds from the barrier to the last finish, completed count per process)."""
    import multiprocessing as mp

    context = mp.get_context("spawn")  # no inherited connections or locks
    barrier = context.Barrier(count + 1)
    results = context.Queue()
    processes = [context.Process(target=target, args=(*args_for(i), barrier, results)) for i in range(count)]
    for process in processes:
        process.start()
    barrier.wait(timeout=timeout)
    started = time.perf_counter()
    counts = dict(results.get(timeout=timeout) for _ in processes)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join(timeout=30)
    return elapsed, [counts[i] for i in range(count)]
