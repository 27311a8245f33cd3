"""Play a pure client dialogue against a pure server, with no network and no SimPy."""

from __future__ import annotations

from mailsim.protocols import Commands, Connect, Content, Idle, Reply, TlsHandshake


def play(dialogue, server, tls_version: str = "1.3", arrivals: tuple[int, ...] = ()):
    """Run to the end; return (result, transcript of (sent, reply codes) per step).

    ``arrivals``: the sizes of messages delivered, one per IMAP ``Idle`` step, while the
    client idles; once they are used up an ``Idle`` times out (no replies)."""
    transcript: list[tuple[str, tuple[str, ...]]] = []
    arriving = list(arrivals)
    try:
        step = next(dialogue)
        while True:
            if isinstance(step, Connect):
                if step.tls:  # implicit TLS (RFC 8314): the handshake, then the greeting
                    server.tls_started(tls_version)
                replies = [server.greeting()]
                if step.tls:
                    replies.insert(0, Reply("TLS", (tls_version,)))
                sent = f"connect:{step.port}"
            elif isinstance(step, Commands):
                replies = [server.handle(line) for line in step.lines]
                sent = " | ".join(step.shown or step.lines)
            elif isinstance(step, TlsHandshake):
                server.tls_started(tls_version)
                replies = [Reply("TLS", (tls_version,))]
                sent = "tls"
            elif isinstance(step, Idle):
                pushed = server.deliver(arriving.pop(0)) if arriving else None
                replies = [pushed] if pushed is not None else []
                sent = "idle"
            else:
                assert isinstance(step, Content)
                replies = server.end_of_data()
                sent = "content"
            transcript.append((sent, tuple(r.code for r in replies)))
            step = dialogue.send(replies)
    except StopIteration as stop:
        return stop.value, transcript
