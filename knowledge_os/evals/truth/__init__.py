"""Independent ground truth for the eval suites.

The facts come from the Debian changelogs parsed here with python-debian, never through
the project's retrieval or domains, so a suite measures the pipeline and not itself.

* :func:`load_corpus` -> :class:`TruthCorpus` (every entry, with lookup tables);
* :data:`BUILDERS` / :func:`build_cases` -> case sets computed from the corpus
  (CVE and bug lookups, package/period digests, trend kinds and rankings, free text);
* :func:`check_answer` -> which versions, packages, ids, dates, counts and people an
  answer names that the changelogs do not bear out.

The truth is parsed from the doc folder as it is at eval time; a home ingested before a
package was installed holds fewer entries. Compare :func:`fingerprint` of the changelogs
at ingest and at eval time, or pass the ingested files to ``load_corpus(paths=...)``.
"""

from knowledge_os.evals.truth.builders import BUILDERS, build_cases, cached_corpus
from knowledge_os.evals.truth.checker import check_answer, extract_claims
from knowledge_os.evals.truth.corpus import TruthCorpus, TruthEntry, fingerprint, load_corpus

__all__ = [
    "BUILDERS",
    "TruthCorpus",
    "TruthEntry",
    "build_cases",
    "cached_corpus",
    "check_answer",
    "extract_claims",
    "fingerprint",
    "load_corpus",
]
