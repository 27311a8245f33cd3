import numpy as np
import pytest

from mailsim.protocols.dns import Answer, Cache, ZoneData, lookup, mx_hosts

ZONES = {
    "home.example": ZoneData(
        ttl=3600,
        mx=((20, "backup.home.example"), (10, "mx.home.example")),
        a={"mx.home.example": "192.0.2.6", "backup.home.example": "192.0.2.7"},
    ),
    "tiny.example": ZoneData(ttl=300, a={"tiny.example": "192.0.2.9"}),
}


def test_mx_answer_sorted_by_preference():
    answer = lookup(ZONES, "home.example", "MX")
    assert answer.rcode == "NOERROR"
    assert answer.records == ((10, "mx.home.example"), (20, "backup.home.example"))
    assert mx_hosts(answer, "home.example", np.random.default_rng(0)) == [
        "mx.home.example",
        "backup.home.example",
    ]


def test_unknown_domain_is_nxdomain():
    assert lookup(ZONES, "nowhere.example", "MX").rcode == "NXDOMAIN"
    assert lookup(ZONES, "ghost.home.example", "A").rcode == "NXDOMAIN"
    assert (
        mx_hosts(
            lookup(ZONES, "nowhere.example", "MX"), "nowhere.example", np.random.default_rng(0)
        )
        == []
    )


def test_no_mx_means_the_implicit_mx_of_rfc_5321():
    answer = lookup(ZONES, "tiny.example", "MX")
    assert answer.rcode == "NOERROR"
    assert answer.records == ()
    assert mx_hosts(answer, "tiny.example", np.random.default_rng(0)) == ["tiny.example"]
    assert lookup(ZONES, "tiny.example", "A").records == ("192.0.2.9",)


def test_equal_preferences_are_shuffled_with_the_given_stream():
    answer = Answer("x.example", "MX", "NOERROR", tuple((10, f"mx{i}.x.example") for i in range(6)))
    orders = {tuple(mx_hosts(answer, "x.example", np.random.default_rng(s))) for s in range(20)}
    assert len(orders) > 1
    again = mx_hosts(answer, "x.example", np.random.default_rng(3))
    assert again == mx_hosts(answer, "x.example", np.random.default_rng(3))


def test_cache_keeps_an_answer_for_its_ttl():
    cache = Cache()
    answer = lookup(ZONES, "home.example", "MX")
    assert cache.get("home.example", "MX", 0.0) is None
    cache.put(answer, now=0.0)
    assert cache.get("home.example", "MX", 3599.0) is answer
    assert cache.get("HOME.example", "MX", 3599.0) is answer
    assert cache.get("home.example", "MX", 3600.0) is None
    assert (cache.hits, cache.misses) == (2, 2)


def test_servfail_is_not_cached():
    cache = Cache()
    cache.put(Answer("x.example", "MX", "SERVFAIL"), now=0.0)
    assert len(cache) == 0


@pytest.mark.parametrize(("name", "size"), [("home.example", 12 + 14 + 4 + 11)])
def test_query_sizes(name, size):
    from mailsim.protocols.dns import query_size

    assert query_size(name) == size


@pytest.mark.parametrize(
    ("name", "qtype", "records"),
    [
        ("home.example", "MX", ((10, "mx.home.example"),)),
        ("home.example", "MX", ((10, "mx.home.example"), (20, "backup.home.example"))),
        ("home.example", "MX", ((10, "mx1.provider.example"), (10, "mx2.provider.example"))),
        ("home.example", "MX", ((10, "home.example"),)),
        ("mx.home.example", "A", ("192.0.2.6",)),
        ("home.example", "MX", ()),
    ],
)
def test_answer_sizes_are_those_of_the_wire_form(name, qtype, records):
    """An answer weighs what dnspython, an independent encoder, makes of it."""
    import dns.message
    import dns.rrset

    from mailsim.protocols.dns import Answer

    query = dns.message.make_query(name, qtype, use_edns=0, payload=1232)
    response = dns.message.make_response(query)
    if records:
        texts = [f"{p} {h}." for p, h in records] if qtype == "MX" else list(records)
        response.answer.append(dns.rrset.from_text(f"{name}.", 3600, "IN", qtype, *texts))
    answer = Answer(name, qtype, "NOERROR", records, 3600)
    assert answer.wire_size() == len(response.to_wire())
