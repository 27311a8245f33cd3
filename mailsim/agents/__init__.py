"""SimPy agents: mail programs, mail servers, the DNS resolver and the mailbox server.

Agents decide *what* to do from the pure protocol logic and scenario settings, and use
:class:`mailsim.session.Session` to spend the time it takes. :mod:`mailsim.world` is the
only place that creates them.
"""
