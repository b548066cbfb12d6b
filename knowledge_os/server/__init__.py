"""The HTTP service: ``kos serve`` (FastAPI on uvicorn) over one :class:`KnowledgeOS`.

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``):

- ``POST /v1/runs``: answer a question; 200 with the ``kos run --json`` object, or 202
  with the thread id when ``"background": true``.
- ``POST /v1/runs/stream``: the same run as server-sent events: one ``node`` event per
  finished node, ``token`` events with the summary as the model writes it, then
  ``result`` (or ``error``); the format is in :mod:`knowledge_os.server.app`.
- ``GET /v1/threads/{thread_id}``: the thread's latest finished run (202 while a
  background run of it is still going, 404 when unknown).
- ``POST /v1/threads/{thread_id}/resume``: finish an interrupted run from its checkpoint.
- ``GET /healthz`` (the process answers), ``GET /readyz`` (every configured backend
  reachable, else 503 naming it), ``GET /metrics`` (Prometheus text format).
"""

from knowledge_os.server.app import create_app, serve

__all__ = ["create_app", "serve"]
