"""Site policies and the replies a mail server gives when it cannot go on, as pure logic:
greylisting (postgrey), quota (Dovecot), and Postfix's wording for routing failures.
Agents supply the time and the facts; the decisions and the texts live here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mailsim.protocols import Reply

HOPCOUNT_LIMIT = 50  # Postfix hopcount_limit (RFC 5321 §6.3 asks for at least 100)


# postgrey's --greylist-text default (postgrey 1.37, %r: the recipient's domain).
GREYLIST_TEXT = "Greylisted, see http://postgrey.schweikert.ch/help/{domain}.html"


@dataclass
class Greylist:
    """postgrey: a (client network, sender, recipient) triplet seen for the first time is
    refused until ``delay`` seconds (default 300) have passed; after that it passes.
    Clients are keyed by their /24 network, as postgrey does by default.

    postgrey answers Postfix ``DEFER_IF_PERMIT 4.2.0 Greylisted, see …`` (the 4.2.0
    because Postfix 2.3 and later send etrn_domain; without it the text has no code and
    Postfix puts its default 4.7.1), and Postfix turns that into its reply with
    access_map_defer_code 450 (smtpd_check.c, check_table_result):
    ``450 4.2.0 <rcpt>: Recipient address rejected: Greylisted, see …``. Time is
    postgrey's clock, whole seconds."""

    first_seen: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def check(
        self, client_ip: str, sender: str, rcpt: str, now: float, delay: float,
        status: str = "4.2.0",
    ) -> Reply | None:  # fmt: skip
        network = client_ip.rsplit(".", 1)[0]
        first = self.first_seen.setdefault((network, sender, rcpt.lower()), math.floor(now))
        if math.floor(now) - first >= delay:
            return None
        domain = rcpt.rsplit("@", 1)[-1]
        text = GREYLIST_TEXT.format(domain=domain)
        return Reply("450", (f"{status} <{rcpt}>: Recipient address rejected: {text}",))


def quota_exceeded(rcpt: str, code: int) -> Reply:
    """Dovecot's answer at RCPT for a full mailbox: 452 (try later) or 552 (final)."""
    enhanced = "5.2.2" if code == 552 else "4.2.2"
    return Reply(str(code), (f"{enhanced} <{rcpt}> Quota exceeded (mailbox for user is full)",))


def lookup_failed(rcode: str, domain: str, rcpt: str, qtype: str = "MX") -> Reply:
    """What Postfix concludes from DNS (RFC 5321 §5.1): a name that does not exist is
    final; a server that cannot answer, or no answer at all, is temporary."""
    # Concluded by the sending MTA itself (local=True): no server said 451 or 550, so the
    # hop shows the enhanced status Postfix logs (dsn=4.4.3, dsn=5.4.4).
    if rcode == "NXDOMAIN":
        return Reply("550", (f"5.4.4 <{rcpt}>: Host or domain name not found",), local=True)
    return Reply(
        "451",
        (f"4.4.3 Name service error for name={domain} type={qtype}: Host not found, try again",),
        local=True,
    )


def no_usable_mx(rcpt: str) -> Reply:
    return Reply("550", (f"5.4.4 <{rcpt}>: MX host has no usable address",), local=True)


def loops_back(domain: str) -> Reply:
    """This server is the best MX of a domain it is not the final destination for
    (Postfix: "mail for … loops back to myself", 5.4.6; RFC 5321 §5.1)."""
    return Reply("554", (f"5.4.6 mail for {domain} loops back to myself",), local=True)


def unknown_local_user() -> Reply:
    return Reply("550", ("5.1.1 User unknown in local recipient table",))


def too_many_hops() -> Reply:
    """A message that has passed HOPCOUNT_LIMIT servers is in a loop (RFC 5321 §6.3)."""
    return Reply("554", ("5.4.6 Too many hops: mail forwarding loop",))
