"""The bytes on the wire: each step's application data as a capture holds it.

SMTP, LMTP and POP3 steps are their text as sent (the recorder keeps multi-line replies
whole and secrets unmasked); the message after DATA, or after a RETR's ``+OK``, is the
copy as it stood on that hop (the Received lines of the hops before it, then filler text)
and weighs exactly what the simulation said it weighs. DNS messages are built by
dnspython. TLS records carry their real record header and length (RFC 8446 §5.1,
RFC 5246 §6.2): the hellos are real hello messages a dissector reads, and so are TLS 1.2's
certificates (X.509 in DER, by asn1crypto, with random keys and signatures); what is
encrypted is random bytes of the length the cipher makes of it (AES-GCM: RFC 8446 §5.2,
RFC 5288 §3).
"""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta
from email.policy import SMTP
from typing import Any

import numpy as np
from asn1crypto import core, keys, x509

from mailsim.message import Copy
from mailsim.protocols import tls

TLS12, TLS13 = 0x0303, 0x0304
HANDSHAKE, CHANGE_CIPHER_SPEC, ALERT, APPLICATION_DATA = 22, 20, 21, 23
MAX_RECORD = 16384  # bytes of plaintext a record may carry (RFC 8446 §5.1)
TAG = 16  # AES-GCM's authentication tag
# TLS 1.2 with AES-GCM sends an explicit 8-byte nonce in each record (RFC 5288 §3);
# TLS 1.3 hides the real content type in one byte of the ciphertext (RFC 8446 §5.2).
OVERHEAD = {"1.2": 8 + TAG, "1.3": 1 + TAG}
# TLS_AES_128_GCM_SHA256 for 1.3, ECDHE-RSA-AES128-GCM-SHA256 for 1.2: what both ends
# of the shipped scenarios agree on (OpenSSL's first choices).
SUITE = {"1.2": 0xC02F, "1.3": 0x1301}
FILLER = b"This line stands for the text of the message in the simulation.\r\n"


def record(kind: int, body: bytes, version: int = TLS12) -> bytes:
    """One TLS record: type, legacy version, length, body (RFC 8446 §5.1)."""
    return struct.pack("!BHH", kind, version, len(body)) + body


def _handshake(kind: int, body: bytes) -> bytes:
    return struct.pack("!B", kind) + len(body).to_bytes(3, "big") + body


def _extension(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def _vector(body: bytes, width: int = 2) -> bytes:
    return len(body).to_bytes(width, "big") + body


def client_hello(server_name: str, rng: np.random.Generator, alpn: tuple[str, ...] = ()) -> bytes:
    """A ClientHello record offering TLS 1.3 and 1.2, padded to 517 bytes as OpenSSL and
    browsers pad it (RFC 7685), with the server's name (SNI, RFC 6066 §3) and an X25519
    key share; a browser's also names the protocols it speaks inside (ALPN, RFC 7301)."""
    name = server_name.encode()
    extensions = [
        _extension(0, _vector(b"\x00" + _vector(name))),  # server_name
        _extension(10, _vector(struct.pack("!HHH", 0x001D, 0x0017, 0x0018))),  # groups
        _extension(11, b"\x01\x00"),  # ec_point_formats: uncompressed
        _extension(13, _vector(struct.pack("!4H", 0x0403, 0x0804, 0x0401, 0x0503))),
        _extension(23, b""),  # extended_master_secret
        _extension(43, b"\x04" + struct.pack("!HH", TLS13, TLS12)),  # supported_versions
        _extension(45, b"\x01\x01"),  # psk_key_exchange_modes: psk_dhe_ke
        _extension(51, _vector(struct.pack("!HH", 0x001D, 32) + _random(rng, 32))),
    ]
    if alpn:  # application_layer_protocol_negotiation
        extensions.append(_extension(16, _vector(b"".join(_vector(p.encode(), 1) for p in alpn))))
    suites = struct.pack("!5H", 0x1301, 0x1302, 0x1303, 0xC02F, 0xC030)
    head = struct.pack("!H", TLS12) + _random(rng, 32) + _vector(_random(rng, 32), 1)
    head += _vector(suites) + b"\x01\x00"
    used = 5 + 4 + len(head) + 2 + sum(map(len, extensions))
    pad = tls.CLIENT_HELLO - used - 4
    if pad >= 0:
        extensions.append(_extension(21, bytes(pad)))  # padding (RFC 7685)
    body = head + _vector(b"".join(extensions))
    return record(HANDSHAKE, _handshake(1, body), 0x0301)


def _server_hello(version: str, rng: np.random.Generator) -> bytes:
    if version == "1.3":
        extensions = _extension(43, struct.pack("!H", TLS13))
        extensions += _extension(51, struct.pack("!HH", 0x001D, 32) + _random(rng, 32))
    else:
        extensions = _extension(65281, b"\x00") + _extension(11, b"\x01\x00")
        extensions += _extension(23, b"")
    body = struct.pack("!H", TLS12) + _random(rng, 32) + _vector(_random(rng, 32), 1)
    body += struct.pack("!HB", SUITE[version], 0) + _vector(extensions)
    return record(HANDSHAKE, _handshake(2, body))


def server_flight(
    version: str,
    size: int,
    rng: np.random.Generator,
    host: str = "",
    issued: datetime | None = None,
) -> bytes:
    """The server's first flight, ``size`` bytes in all. TLS 1.3: ServerHello, a
    ChangeCipherSpec for middleboxes (RFC 8446 §D.4), then the encrypted
    EncryptedExtensions, Certificate, CertificateVerify and Finished. TLS 1.2: ServerHello,
    Certificate, ServerKeyExchange and ServerHelloDone, all readable; the Certificate
    carries ``host``'s certificate, issued around ``issued`` (the run's start)."""
    hello = _server_hello(version, rng)
    if version == "1.3":
        head = hello + record(CHANGE_CIPHER_SPEC, b"\x01")
        # Encrypted: EncryptedExtensions (6 bytes), CertificateVerify with an RSA-2048
        # signature (264), Finished (36), each with a content type byte and a tag.
        tail = [sealed(n, "1.3", rng) for n in (6, 264, 36)]
        certificate = size - len(head) - sum(map(len, tail)) - 5
        return (
            head
            + tail[0]
            + record(APPLICATION_DATA, _random(rng, certificate))
            + b"".join(tail[1:])
        )
    key = _handshake(12, b"\x03\x00\x1d\x20" + _random(rng, 32) + b"\x08\x04" + _vector(
        _random(rng, 256)
    ))  # fmt: skip
    done = _handshake(14, b"")
    rest = size - len(hello) - 3 * 5 - len(key) - len(done)
    chain = _certificates(rest - 4 - 3, rng, host, issued)
    return (
        hello
        + record(HANDSHAKE, _handshake(11, _vector(chain, 3)))
        + record(HANDSHAKE, key)
        + record(HANDSHAKE, done)
    )


WINDOW_START = datetime(2026, 1, 1, tzinfo=UTC)  # when a run has no start date
CA_NAME = "mailsim Documentation CA"  # fictional: no such authority exists
COMMENT = "This certificate stands for a real one in the simulation."
# Netscape's comment extension (OID 2.16.840.1.113730.1.13, an IA5String): harmless, shown
# by dissectors as text, and the one part of the certificate free to grow to a given size.
NETSCAPE_COMMENT = "2.16.840.1.113730.1.13"


def _certificates(
    size: int, rng: np.random.Generator, host: str = "", issued: datetime | None = None
) -> bytes:
    """The TLS 1.2 Certificate message's chain, ``size`` bytes in all: the server's
    certificate for ``host``, then the fictional CA that signed it, each a 3-byte length
    and a real X.509 certificate a dissector reads. Their keys and signatures are random
    bytes from ``rng`` (nothing verifies them); a comment extension pads each to its
    share of ``size``."""
    start = (issued or WINDOW_START).astimezone(UTC)  # naive: local time, as the capture
    name = host or "mail.example"
    leaf = _draw(rng), _leaf(name, start)
    authority = _draw(rng), _authority(start)
    least = [3 + len(_certificate(*cert, 0)) for cert in (leaf, authority)]
    if size < sum(least):
        raise ValueError(f"two certificates need {sum(least)} bytes, not {size}")
    first = least[0] + (size - sum(least)) // 2  # each its least and half what is left
    # Some sizes are out of a certificate's reach (a DER length growing by two bytes as its
    # content grows by one); moving the split by a byte or two finds one within reach.
    for shift in sorted(range(-8, 9), key=abs):
        ours, theirs = _fit(*leaf, first + shift), _fit(*authority, size - first - shift)
        if ours and theirs:
            return ours + theirs
    raise ValueError(f"no two certificates fill exactly {size} bytes")


def _draw(rng: np.random.Generator) -> dict[str, Any]:
    """A certificate's random parts: serial number, RSA-2048 modulus (odd, top bit set,
    e = 65537) and a 256-byte signature value."""
    modulus = int.from_bytes(_random(rng, 256), "big") | (1 << 2047) | 1
    serial = int.from_bytes(_random(rng, 16), "big") >> 1  # positive, at most 20 bytes
    return {"serial": serial, "modulus": modulus, "signature": _random(rng, 256)}


def _leaf(host: str, start: datetime) -> dict[str, Any]:
    """The server's certificate: issued a month before the start, valid for a year."""
    extensions = [
        ("basic_constraints", True, {"ca": False}),
        ("key_usage", True, {"digital_signature", "key_encipherment"}),
        ("extended_key_usage", False, ["server_auth"]),
        ("subject_alt_name", False, [x509.GeneralName("dns_name", host)]),
    ]
    return {
        "subject": host,
        "issuer": CA_NAME,
        "from": start - timedelta(days=30),
        "until": start + timedelta(days=335),
        "extensions": extensions,
    }


def _authority(start: datetime) -> dict[str, Any]:
    """The intermediate CA that signed the server's certificate, valid for five years."""
    extensions = [
        ("basic_constraints", True, {"ca": True, "path_len_constraint": 0}),
        ("key_usage", True, {"key_cert_sign", "crl_sign"}),
    ]
    return {
        "subject": CA_NAME,
        "issuer": "mailsim Documentation Root CA",
        "from": start - timedelta(days=365),
        "until": start + timedelta(days=4 * 365),
        "extensions": extensions,
    }


def _fit(drawn: dict[str, Any], fields: dict[str, Any], size: int) -> bytes | None:
    """The certificate with its 3-byte length in exactly ``size`` bytes, or None when the
    DER lengths step over that size."""
    pad = 0
    for _ in range(8):
        der = _certificate(drawn, fields, pad)
        missing = size - 3 - len(der)
        if missing == 0:
            return len(der).to_bytes(3, "big") + der
        pad += missing
        if pad < 0:
            return None
    return None


def _certificate(drawn: dict[str, Any], fields: dict[str, Any], pad: int) -> bytes:
    """One DER certificate, sha256WithRSAEncryption, its comment padded with ``pad`` dots."""
    comment = core.IA5String(COMMENT + "." * pad)
    extensions = [
        {"extn_id": kind, "critical": critical, "extn_value": value}
        for kind, critical, value in fields["extensions"]
    ]
    extensions.append(
        {"extn_id": NETSCAPE_COMMENT, "critical": False, "extn_value": comment.dump()}
    )
    rsa = {"algorithm": "rsa", "parameters": core.Null()}
    public = keys.RSAPublicKey({"modulus": drawn["modulus"], "public_exponent": 65537})
    signed = {"algorithm": "sha256_rsa", "parameters": core.Null()}
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": drawn["serial"],
            "signature": signed,
            "issuer": _name(fields["issuer"]),
            "validity": {
                "not_before": x509.Time({"utc_time": fields["from"]}),
                "not_after": x509.Time({"utc_time": fields["until"]}),
            },
            "subject": _name(fields["subject"]),
            "subject_public_key_info": {"algorithm": rsa, "public_key": public},
            "extensions": extensions,
        }
    )
    return x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": signed,
            "signature_value": drawn["signature"],
        }
    ).dump()


def _name(common: str) -> x509.Name:
    return x509.Name.build({"common_name": common, "organization_name": "mailsim"})


def client_finish(version: str, size: int, rng: np.random.Generator) -> bytes:
    """The client's last handshake flight. TLS 1.3: ChangeCipherSpec and the encrypted
    Finished, sent ahead of the first command (``size`` 64). TLS 1.2: ClientKeyExchange
    (an X25519 key), ChangeCipherSpec and the encrypted Finished."""
    ccs = record(CHANGE_CIPHER_SPEC, b"\x01")
    if version == "1.3":
        return ccs + sealed(size - len(ccs) - 5 - OVERHEAD["1.3"], "1.3", rng)
    key = record(HANDSHAKE, _handshake(16, _vector(_random(rng, 32), 1)))
    return key + ccs + record(HANDSHAKE, _random(rng, size - len(key) - len(ccs) - 5))


def server_finish(size: int, rng: np.random.Generator) -> bytes:
    """TLS 1.2's server ChangeCipherSpec and encrypted Finished."""
    ccs = record(CHANGE_CIPHER_SPEC, b"\x01")
    return ccs + record(HANDSHAKE, _random(rng, size - len(ccs) - 5))


def alert(size: int) -> bytes:
    """A fatal handshake_failure alert (RFC 8446 §6.2), ``size`` − 40 bytes of it the
    record: the rest is the segment's headers, which a capture builds itself."""
    return record(ALERT, b"\x02\x28")[: max(0, size - 40)]


def sealed(plaintext: int, version: str, rng: np.random.Generator) -> bytes:
    """An application data record holding ``plaintext`` bytes: what an eavesdropper gets."""
    return record(APPLICATION_DATA, _random(rng, plaintext + OVERHEAD[version]))


def encrypt(data: bytes, version: str, rng: np.random.Generator) -> bytes:
    """``data`` as the records a TLS connection sends it in (at most 16 KB each)."""
    return b"".join(
        sealed(len(data[i : i + MAX_RECORD]), version, rng)
        for i in range(0, max(len(data), 1), MAX_RECORD)
    )


def content(copy: Copy | None, size: int, sent: float, epoch: datetime) -> bytes:
    """The message as it travels at ``sent``: ``size`` bytes, its header as it stood then
    (the Received lines of the hops before), then filler lines. Without the copy (a run
    that kept only outcomes), filler alone."""
    head = header(copy, sent, epoch)[:size] if copy is not None else b""
    lines = FILLER * ((size - len(head)) // len(FILLER) + 1)
    body = lines[: size - len(head)]
    if body.endswith(b"\r"):  # a line ends where the message ends: no lone CR
        body = body[:-1] + b"."
    return head + body


_HEADERS: dict[int, tuple[Copy, list[bytes]]] = {}


def header(copy: Copy, sent: float, epoch: datetime) -> bytes:
    """The copy's header as it stood at ``sent``: its header at the end of the run
    (:meth:`Copy.to_email`, made once a copy) without the Received lines added since,
    the Authentication-Results above them, and the Return-Path until it was delivered;
    ends with the empty line."""
    kept = _HEADERS.get(id(copy))
    if kept is None or kept[0] is not copy:
        text = copy.to_email(epoch).as_bytes(policy=SMTP).split(b"\r\n\r\n", 1)[0]
        fields = re.split(rb"\r\n(?![ \t])", text)
        kept = _HEADERS[id(copy)] = (copy, fields)
        if len(_HEADERS) > 4096:
            _HEADERS.pop(next(iter(_HEADERS)))
    later = sum(1 for stamp in copy.stamps if stamp.time >= sent)
    delivered = copy.delivered_at is not None and copy.delivered_at < sent
    out: list[bytes] = []
    for field in kept[1]:
        name = field.split(b":", 1)[0].lower()
        if name == b"return-path" and not delivered:
            continue
        if later and name == b"authentication-results":
            continue
        if later and name == b"received":
            later -= 1
            continue
        out.append(field)
    return b"\r\n".join(out) + b"\r\n\r\n"


def terminated(text: bytes) -> bytes:
    """Content as DATA sends it: a dot doubled at the start of a line (RFC 5321
    §4.5.2), then <CRLF>.<CRLF>."""
    return text.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n"


def _random(rng: np.random.Generator, n: int) -> bytes:
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


def dns_query(qname: str, qtype: str, txid: int) -> bytes:
    """A stub resolver's query: recursion desired, EDNS with a 1232-byte buffer (the
    size DNS Flag Day 2020 settled on)."""
    import dns.message

    return dns.message.make_query(qname, qtype, use_edns=0, payload=1232, id=txid).to_wire()


def dns_answer(qname: str, qtype: str, txid: int, rcode: str, said: str, ttl: float) -> bytes:
    """The resolver's answer, from what the events say it answered (``said``: "MX 10
    mx.home.example, MX 20 …", "A 192.0.2.6", "NOERROR (no records)" or the rcode)."""
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rrset

    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232, id=txid)
    answer = dns.message.make_response(query)
    answer.flags |= dns.flags.RA
    answer.set_rcode(dns.rcode.from_text(rcode))
    records = [] if rcode != "NOERROR" or said.startswith("NOERROR") else said.split(", ")
    if records:
        data = [r.split(" ", 1)[1] + ("." if qtype == "MX" else "") for r in records]
        answer.answer.append(dns.rrset.from_text(f"{qname}.", int(ttl), "IN", qtype, *data))
    return answer.to_wire(want_shuffle=False)  # in the order the events say, every time
