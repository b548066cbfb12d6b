"""Offline eval suites (``kos eval``): suites, metrics, reports, and their ground truth
(:mod:`knowledge_os.evals.truth`)."""
