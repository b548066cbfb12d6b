"""The names a domain YAML may use: steps, checklist rules and prompt placeholders.

Data only, no behaviour: the schema (:mod:`knowledge_os.domains.spec`) validates against
these names, and the libraries that implement them (``steps.STEPS``, ``checks.CHECKS``,
the prompt fields built in ``steps`` and ``nodes/correct.py``) must offer exactly these;
``tests/unit/test_domains.py`` pins that. Adding a step, a rule or a prompt field means
adding its name here too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHECK_RULES", "PROMPT_EXTRA_FIELDS", "PROMPT_FIELDS", "STEP_NAMES", "RuleValue", "prompt_fields"]

#: Steps of the shared step library (``knowledge_os/domains/steps.py``).
STEP_NAMES: frozenset[str] = frozenset({"retrieve", "expand", "group", "stats", "summarise"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleValue:
    """What a checklist rule's ``value`` may be.

    Attributes:
        takes_int: The value is an integer (bools are not); False: the rule takes no value.
        minimum: Smallest allowed integer.
        required: The rule has no default, so the YAML must give a value.
    """

    takes_int: bool = False
    minimum: int = 0
    required: bool = False


#: Checklist rules of ``knowledge_os/domains/checks.py`` and the value each takes.
CHECK_RULES: dict[str, RuleValue] = {
    "citations_valid": RuleValue(),
    "claims_grounded": RuleValue(),  # always on, blocking (checks.ALWAYS_ON)
    "language_matches": RuleValue(),  # always on, blocking
    "min_citations": RuleValue(takes_int=True, minimum=1),  # default 1
    "summary_present": RuleValue(takes_int=True, minimum=0),  # default 8 words
    "max_words": RuleValue(takes_int=True, minimum=1, required=True),
    "names_packages": RuleValue(),
    "cites_named_ids": RuleValue(),
    "within_period": RuleValue(),
    "numbers_from_data": RuleValue(),
}

#: ``str.format`` placeholders every prompt template (``system``, ``summarise``,
#: ``correct``) may use: the fields the summarise step and the correct node both pass.
PROMPT_FIELDS: frozenset[str] = frozenset(
    {"query", "context", "stats", "persona", "today", "period", "issues", "language", "kinds"}
)

#: Placeholders only one template sees: ``correct`` also gets the draft and ``n``, the
#: number of entries it may cite.
PROMPT_EXTRA_FIELDS: dict[str, frozenset[str]] = {"correct": frozenset({"draft", "n"})}


def prompt_fields(template: str) -> frozenset[str]:
    """The placeholders allowed in the prompt template named ``template``."""
    return PROMPT_FIELDS | PROMPT_EXTRA_FIELDS.get(template, frozenset())
