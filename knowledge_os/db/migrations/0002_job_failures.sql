-- The last error of each failed attempt of a queued run (a Procrastinate job), read by
-- `kos dlq list`; Procrastinate itself keeps the job's status and attempts, not the error.
-- depends: 0001_episodic_memory_and_dlq

CREATE TABLE kos_job_failures (
    job_id BIGINT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    run_id TEXT,
    checkpoint_id TEXT,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    stack TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
