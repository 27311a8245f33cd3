from mailsim.protocols.policy import Greylist, lookup_failed, quota_exceeded


def test_greylist_refuses_a_new_triplet_until_the_delay_has_passed():
    grey = Greylist()
    first = grey.check("192.0.2.7", "a@s.example", "b@h.example", now=10.0, delay=300.0)
    assert first is not None
    assert str(first) == (
        "450 4.2.0 <b@h.example>: Recipient address rejected: Greylisted, see"
        " http://postgrey.schweikert.ch/help/h.example.html"
    )
    assert grey.check("192.0.2.7", "a@s.example", "b@h.example", now=309.0, delay=300.0)
    assert grey.check("192.0.2.7", "a@s.example", "b@h.example", now=310.0, delay=300.0) is None
    # postgrey keys on the /24: another host of the same network counts as the same client.
    assert grey.check("192.0.2.99", "a@s.example", "B@h.example", now=311.0, delay=300.0) is None
    assert grey.check("198.51.100.1", "a@s.example", "b@h.example", now=311.0, delay=300.0)


def test_greylist_counts_whole_seconds_as_postgrey_does():
    """postgrey compares time() values: first seen at 10.9 s is second 10, so a retry at
    309.9 s (299.0 s later) is a second short, and one at 310.0 s (299.1 s later) passes."""
    grey = Greylist()
    assert grey.check("192.0.2.7", "a@s.example", "b@h.example", now=10.9, delay=300.0)
    assert grey.check("192.0.2.7", "a@s.example", "b@h.example", now=309.9, delay=300.0)
    assert grey.check("192.0.2.7", "a@s.example", "b@h.example", now=310.0, delay=300.0) is None


def test_greylist_status_without_postfix_2_3_is_postfixs_default():
    reply = Greylist().check("192.0.2.7", "a@s.example", "b@h.example", 0.0, 300.0, "4.7.1")
    assert str(reply).startswith("450 4.7.1 <b@h.example>: Recipient address rejected: Greylisted")


def test_dns_failures_are_final_only_for_a_name_that_does_not_exist():
    assert lookup_failed("NXDOMAIN", "x.example", "u@x.example").code == "550"
    assert lookup_failed("SERVFAIL", "x.example", "u@x.example").code == "451"
    assert lookup_failed("TIMEOUT", "x.example", "u@x.example").code == "451"


def test_quota_codes():
    assert str(quota_exceeded("u@h.example", 452)).startswith(
        "452 4.2.2 <u@h.example> Quota exceeded"
    )
    assert str(quota_exceeded("u@h.example", 552)).startswith("552 5.2.2")
