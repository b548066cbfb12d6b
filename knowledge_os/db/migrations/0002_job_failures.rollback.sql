DROP TABLE IF EXISTS kos_job_failures;
