DROP TABLE IF EXISTS kos_dead_letters;
DROP TABLE IF EXISTS kos_episodic_events;
