import mailsim
from tests.conftest import SCENARIOS


def test_steps_come_one_event_at_a_time_with_the_state(classroom):
    stepper = mailsim.Stepper(classroom)
    first = stepper.next_event()
    assert first is not None
    assert (first.index, first.event["step"], first.event["src"]) == (0, "SYN", "bob-pc")
    assert first.sessions == {1: "bob-pc → pop-home (pop3)"}
    seen = [first]
    while (snap := stepper.next_event()) is not None:
        seen.append(snap)
        if snap.event["protocol"] == "dns":
            break
    # While the school's server looks up the MX, the message waits in its queue.
    assert snap is not None
    assert snap.queues["msa-school"] == ["m1"]
    assert snap.event["detail"] == "MX? home.example"
    times = [s.event["arrive"] for s in seen]
    assert times == sorted(times)


def test_filter_by_protocol(classroom):
    stepper = mailsim.Stepper(classroom)
    dns = [s.event["detail"] for s in iter(lambda: stepper.next_event("dns"), None)]
    assert dns == [
        "MX? home.example",
        "home.example MX 10 mx.home.example (cache miss)",
        "A? mx.home.example",
        "mx.home.example A 192.0.2.6 (cache miss)",
    ]


def test_stepping_to_the_end_gives_the_same_result_as_run(classroom, classroom_result):
    stepper = mailsim.Stepper(classroom)
    events = list(stepper)
    assert len(events) == len(classroom_result.events)
    assert stepper.result().to_json() == classroom_result.to_json()


def test_mailbox_holds_the_message_between_delivery_and_poll():
    stepper = mailsim.Stepper(mailsim.load(SCENARIOS / "same-domain.yaml"))
    for snap in stepper:
        if snap.event["step"] == "250" and "Saved" in snap.event["detail"]:
            assert snap.mailboxes["carol@school.example"] == ["m1"]
            break
    else:
        raise AssertionError("no LMTP delivery seen")


def test_a_phone_idling_on_imap_is_listed_as_an_idle_session():
    """While dan's phone idles, its connection is open with nothing under way: the step
    view lists it as idle, and as under way again when the push comes."""
    stepper = mailsim.Stepper(SCENARIOS / "pop-imap-push.yaml")
    labels = []
    for snap in stepper:
        labels.append(set(snap.sessions.values()))
        if snap.event["step"] == "*":  # the push: * n EXISTS
            pushed = snap
            break
    idle = "dan-phone → pop-home (imap), idle"
    assert any(idle in seen for seen in labels)
    # The push has woken the session: under way again, no longer idle.
    assert "dan-phone → pop-home (imap)" in pushed.sessions.values()
    assert idle not in pushed.sessions.values()
