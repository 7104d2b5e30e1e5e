"""The ``pii`` step: FineWeb's last step, e-mail and IP addresses replaced, with the replacements counted.

datatrove's ``PIIFormatter`` (huggingface/datatrove, used as-is: its e-mail and IPv4 patterns, its public-address
check, its replacement addresses used in turn) plus IPv6, which datatrove does not look for: the same
``PIIReplacer`` with an IPv6 candidate pattern, every candidate checked by ``ipaddress`` (a real address) and
replaced only when it is globally routable (``is_global``, like datatrove's IPv4 rule) and written with at least
two groups (``d::`` in ``std::`` is no address).

Stats (summed into the manifest's ``filters`` per source, ``StepCount.changed`` / ``replacements``; zeros
included): ``changed``, the documents whose text the step altered; ``replaced_email``, ``replaced_ipv4``,
``replaced_ipv6``, the addresses replaced.  A formatter: it never drops a document.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import Callable

from datatrove.pipeline.formatters import PIIFormatter
from datatrove.pipeline.formatters.pii import PIIReplacer, public_ip_validator

__all__ = ["PII_KINDS", "PIIStep"]

PII_KINDS = ("email", "ipv4", "ipv6")
REPLACED_PREFIX = "replaced_"

# a run of hex groups and colons standing alone (not inside a word, a longer hex run or a dotted number);
# ``ipaddress`` decides whether it is an address
_IPV6_CANDIDATE = r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:]|\.\d)"
# documentation prefix 2001:db8::/32 is not global, so examples in manuals stay as written
_IPV6_REPLACEMENT = ("2001:db8::1", "2001:db8::2")


def _global_ipv6(candidate: str, only_public: bool = True) -> bool:
    """A real IPv6 address with at least two written groups, public unless ``only_public`` is False."""
    if sum(1 for group in candidate.split(":") if group) < 2:
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return public_ip_validator(candidate, only_public)


@dataclass
class CountingValidator:
    """datatrove's replacer asks its validator about every match and replaces the ones it accepts: counting the
    accepted ones counts the replacements without re-implementing the replacer.  An object, not a closure, so that
    a deep copy of the step (datatrove copies the pipeline per task) counts into the copy's counter."""

    kind: str
    validator: Callable[[str], bool] | None
    found: Counter

    def __call__(self, candidate: str) -> bool:
        accepted = self.validator is None or self.validator(candidate)
        if accepted:
            self.found[self.kind] += 1
        return accepted


class PIIStep(PIIFormatter):
    """datatrove's ``PIIFormatter`` with IPv6 and per-kind counts (module docstring).

    Params (recipe ``params`` of the ``pii`` step): datatrove's ``remove_emails``, ``remove_ips`` (IPv4),
    ``only_remove_public_ips``, ``email_replacement``, ``ip_replacement`` (unset: datatrove's defaults), and
    ``remove_ipv6`` / ``ipv6_replacement`` (default ``2001:db8::1``, ``2001:db8::2``: the documentation prefix).
    """

    name = "📞 PII"

    def __init__(
        self,
        remove_emails: bool = True,
        remove_ips: bool = True,
        only_remove_public_ips: bool = True,
        email_replacement: tuple[str, ...] | str | None = None,
        ip_replacement: tuple[str, ...] | str | None = None,
        remove_ipv6: bool = True,
        ipv6_replacement: tuple[str, ...] | str = _IPV6_REPLACEMENT,
    ):
        replacements = {"email_replacement": email_replacement, "ip_replacement": ip_replacement}
        super().__init__(
            remove_emails=remove_emails,
            remove_ips=remove_ips,
            only_remove_public_ips=only_remove_public_ips,
            **{key: tuple(value) if isinstance(value, list) else value
               for key, value in replacements.items() if value is not None},
        )  # fmt: skip
        self.remove_ipv6 = remove_ipv6
        self.ipv6_replacer = PIIReplacer(
            _IPV6_CANDIDATE,
            tuple(ipv6_replacement) if isinstance(ipv6_replacement, list) else ipv6_replacement,
            validator=partial(_global_ipv6, only_public=only_remove_public_ips),
        )
        self._found: Counter = Counter()
        for kind, replacer in (("email", self.emails_replacer), ("ipv4", self.ip_replacer),
                               ("ipv6", self.ipv6_replacer)):
            replacer.validator = CountingValidator(kind, replacer.validator, self._found)

    def format(self, text: str) -> str:
        self._found.clear()
        fixed = super().format(text)
        if self.remove_ipv6:
            fixed = self.ipv6_replacer.replace(fixed)
        # every kind and `changed` on every document, zeros included: the manifest then lists all of them
        for kind in PII_KINDS:
            self.stat_update(REPLACED_PREFIX + kind, value=self._found[kind])
        self.stat_update("changed", value=int(fixed != text))
        return fixed
