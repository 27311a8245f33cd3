"""Figures of a Result: ``route``, ``sequence``, ``timeline``, ``delays``, ``load``,
``servers`` (a timeline per server), ``overheard`` (what an eavesdropper read),
``verdicts`` (SPF, DKIM, DMARC), ``animate``.

Each takes a :class:`mailsim.Result` (and a message id where it fits) and an optional
matplotlib ``Axes``, draws on it and returns it; it never calls ``plt.show()`` and never
changes rcParams. matplotlib is imported only here and below.
"""

from mailsim.plot.animate import animate
from mailsim.plot.delays import delays
from mailsim.plot.load import load
from mailsim.plot.route import route
from mailsim.plot.security import overheard, verdicts
from mailsim.plot.sequence import sequence
from mailsim.plot.servers import servers
from mailsim.plot.timeline import timeline

__all__ = [
    "animate", "delays", "load", "overheard", "route", "sequence", "servers", "timeline",
    "verdicts",
]  # fmt: skip
