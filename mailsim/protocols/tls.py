"""TLS handshakes as round trips and bytes, per version.

Full handshakes (no resumption): TLS 1.2 needs two round trips before application data
(RFC 5246 §7.3), TLS 1.3 one (RFC 8446 §2): the client's key share rides in its
ClientHello, and its Finished travels with the first command that follows.

Sizes are typical, not fixed by the RFCs: a ClientHello padded to 517 bytes (the size
browsers and OpenSSL-based clients send), a server flight of about 4 kB carrying a
two-certificate RSA-2048 chain. The short flights are exact for X25519 and AES-GCM
(the records :mod:`mailsim.wire` builds): TLS 1.2's ClientKeyExchange (42 bytes),
ChangeCipherSpec (6) and encrypted Finished (45) make 93, the server's ChangeCipherSpec
and Finished 51; TLS 1.3's client ChangeCipherSpec and Finished 64.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flight:
    """One round trip of a handshake: what the client sends, what the server answers."""

    client_bytes: int
    server_bytes: int
    client_label: str
    server_label: str


CLIENT_HELLO = 517
SERVER_FLIGHT = 4096

HANDSHAKES: dict[str, tuple[Flight, ...]] = {
    "1.2": (
        Flight(
            CLIENT_HELLO, SERVER_FLIGHT, "ClientHello", "ServerHello, Certificate, ServerHelloDone"
        ),
        Flight(
            93, 51, "ClientKeyExchange, ChangeCipherSpec, Finished", "ChangeCipherSpec, Finished"
        ),
    ),
    "1.3": (
        Flight(
            CLIENT_HELLO,
            SERVER_FLIGHT,
            "ClientHello (key share)",
            "ServerHello, Certificate, Finished",
        ),
    ),
}

# TLS 1.3: the client's Finished (with a compatibility ChangeCipherSpec) is sent ahead of
# its next command and adds these bytes to that flight.
TRAILING_CLIENT_BYTES: dict[str, int] = {"1.2": 0, "1.3": 64}


def negotiate(client_max: str, server: str | None) -> str | None:
    """The version both ends speak: the lower of the two (None if the server has no TLS)."""
    if server is None:
        return None
    return min(client_max, server, key=float)
