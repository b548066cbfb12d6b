"""Queued runs on Procrastinate (PostgreSQL): ``kos worker``, ``kos run --queue``,
:meth:`knowledge_os.KnowledgeOS.enqueue`. Needs the ``production`` extra and
``queue.backend: procrastinate``; see :mod:`knowledge_os.queue.app`."""
