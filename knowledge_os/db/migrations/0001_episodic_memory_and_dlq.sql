-- Episodic memory and the dead-letter queue (PostgreSQL).
-- depends:

CREATE TABLE kos_episodic_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- recent(): newest first, optionally per entity; errors(): newest errors; purge(): by age.
CREATE INDEX kos_episodic_events_created ON kos_episodic_events (created_at DESC, id DESC);
CREATE INDEX kos_episodic_events_entity ON kos_episodic_events (entity_type, entity_id, created_at DESC);
CREATE INDEX kos_episodic_events_type ON kos_episodic_events (type, created_at DESC);

CREATE TABLE kos_dead_letters (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    checkpoint_id TEXT,
    payload JSONB NOT NULL DEFAULT '{}'::jsonb,
    error TEXT NOT NULL CHECK (char_length(error) <= 1000),
    stack TEXT NOT NULL DEFAULT '' CHECK (char_length(stack) <= 5000),
    attempts INTEGER NOT NULL DEFAULT 1 CHECK (attempts >= 0),
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'reprocessed', 'permanent_failure')),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- claim_due(): pending letters by due time.
CREATE INDEX kos_dead_letters_due ON kos_dead_letters (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX kos_dead_letters_status ON kos_dead_letters (status, id DESC);
