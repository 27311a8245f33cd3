"""The TLS 1.2 server flight in the captures: its exact size and its certificates.

The flight must weigh what the model says it weighs (tls.SERVER_FLIGHT), and its
Certificate message must hold two real X.509 certificates a dissector reads: the
server's, for the host name the client asked for, and the CA that signed it.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import numpy as np
import pytest
from asn1crypto import core, x509

from mailsim import wire
from mailsim.protocols import tls

HOSTS = ["mx.tls12.example", "a.io", "smtp.relay-with-a-long-name.mail.example.org"]
SIZES = [tls.SERVER_FLIGHT, 3000, 4097, 6000]
START = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def flight(size: int = tls.SERVER_FLIGHT, host: str = HOSTS[0], seed: int = 7) -> bytes:
    return wire.server_flight("1.2", size, np.random.default_rng(seed), host, START)


def records(data: bytes) -> list[tuple[int, bytes]]:
    """The records, read by their headers to the last byte (none may be left over)."""
    out = []
    while data:
        kind, _, length = struct.unpack("!BHH", data[:5])
        out.append((kind, data[5 : 5 + length]))
        data = data[5 + length :]
        assert length == len(out[-1][1])
    return out


def chain(data: bytes) -> list[x509.Certificate]:
    """The certificates of the Certificate message (handshake type 11)."""
    (body,) = [b for kind, b in records(data) if kind == wire.HANDSHAKE and b[0] == 11]
    assert int.from_bytes(body[1:4], "big") == len(body) - 4
    listed = body[7:]
    assert int.from_bytes(body[4:7], "big") == len(listed)
    out = []
    while listed:
        n = int.from_bytes(listed[:3], "big")
        der = listed[3 : 3 + n]
        out.append(x509.Certificate.load(der, strict=True))
        assert out[-1].dump(force=True) == der  # DER: encoding it anew changes nothing
        listed = listed[3 + n :]
    return out


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("host", HOSTS)
def test_the_flight_weighs_exactly_its_size(size: int, host: str) -> None:
    data = flight(size, host)
    assert len(data) == size
    kinds = [(kind, body[0]) for kind, body in records(data)]
    assert kinds == [(wire.HANDSHAKE, 2), (wire.HANDSHAKE, 11), (wire.HANDSHAKE, 12),
                     (wire.HANDSHAKE, 14)]  # fmt: skip


def test_every_size_in_a_stretch_is_reached() -> None:
    """Near their least size the certificates' DER lengths pass 127 and 255 and grow by
    two bytes at some sizes (1824, 1830, 1905, 1933, 1991...); the chain lands on each."""
    rng = np.random.default_rng(3)
    for size in range(1800, 2000):
        assert len(wire._certificates(size, rng, HOSTS[0], START)) == size


def test_the_flight_is_the_seeds() -> None:
    assert flight(seed=11) == flight(seed=11)
    assert flight(seed=11) != flight(seed=12)


@pytest.mark.parametrize("host", HOSTS)
def test_the_server_certificate_names_the_host(host: str) -> None:
    leaf, authority = chain(flight(host=host))
    assert leaf.subject.native["common_name"] == host
    assert leaf.subject_alt_name_value.native == [host]
    assert leaf.issuer == authority.subject
    assert authority.subject.native["common_name"] == wire.CA_NAME
    assert leaf.ca is False
    assert authority.ca is True
    assert authority.issuer.native["common_name"] == "mailsim Documentation Root CA"


@pytest.mark.parametrize("which", [0, 1])
def test_each_certificate_is_rsa_2048_signed_with_sha256(which: int) -> None:
    cert = chain(flight())[which]
    key = cert.public_key["public_key"].parsed
    assert cert.public_key.algorithm == "rsa"
    assert key["modulus"].native.bit_length() == 2048
    assert key["modulus"].native % 2 == 1
    assert key["public_exponent"].native == 65537
    assert cert.signature_algo == "rsassa_pkcs1v15"
    assert cert.hash_algo == "sha256"
    assert len(cert.signature) == 256
    # sha256WithRSAEncryption with NULL parameters, as RFC 4055 §5 asks, in both places
    sha256_rsa = bytes.fromhex("300d06092a864886f70d01010b0500")
    assert cert["tbs_certificate"]["signature"].dump() == sha256_rsa
    assert cert["signature_algorithm"].dump() == sha256_rsa


@pytest.mark.parametrize("which", [0, 1])
def test_each_certificate_is_valid_at_the_start(which: int) -> None:
    validity = chain(flight())[which]["tbs_certificate"]["validity"].native
    assert validity["not_before"] < START < validity["not_after"]


def test_the_padding_is_a_comment_that_says_so() -> None:
    for cert in chain(flight()):
        (comment,) = [
            e["extn_value"].parsed
            for e in cert["tbs_certificate"]["extensions"]
            if e["extn_id"].dotted == wire.NETSCAPE_COMMENT
        ]
        text = core.IA5String.load(comment.dump()).native
        assert text.startswith(wire.COMMENT)
        assert set(text[len(wire.COMMENT) :]) <= {"."}


def test_a_flight_too_small_for_two_certificates_is_refused() -> None:
    with pytest.raises(ValueError, match="two certificates need"):
        flight(size=1500)
