from mailsim.protocols.pop3 import Pop3Server, client
from tests.dialogue import play


def test_retrieval_dialogue_with_stls():
    server = Pop3Server("pop.home.example", [20_000, 500], password="builder")
    out, transcript = play(client("bob@home.example", "builder"), server)
    assert [sent for sent, _ in transcript] == [
        "connect:110", "CAPA", "STLS", "tls", "CAPA", "USER bob@home.example",
        "PASS ********", "STAT", "LIST", "RETR 1", "DELE 1", "RETR 2", "DELE 2", "QUIT",
    ]  # fmt: skip
    assert all(codes in (("+OK",), ("TLS",)) for _, codes in transcript)
    assert out.retrieved == [1, 2]
    assert out.committed
    assert server.state == "UPDATE"
    assert server.deleted == {1, 2}


def test_stat_and_list_report_sizes():
    server = Pop3Server("pop", [20_000, 500], password="pw", tls=None)
    server.handle("USER bob")
    server.handle("PASS pw")
    assert str(server.handle("STAT")) == "+OK 2 20500"
    listing = server.handle("LIST")
    assert listing.data == ("1 20000", "2 500")
    assert listing.wire().endswith("1 20000\r\n2 500\r\n.\r\n")
    retr = server.handle("RETR 1")
    assert retr.payload == 20_003  # the message and the terminating ".\r\n"


def test_no_stls_offered_means_plaintext_login():
    server = Pop3Server("pop", [], password="pw", tls=None)
    out, transcript = play(client("bob", "pw"), server)
    assert "STLS" not in [s for s, _ in transcript]
    assert out.tls is None
    assert out.retrieved == []


def test_wrong_password_is_err_and_nothing_is_retrieved():
    server = Pop3Server("pop", [100], password="pw", tls=None)
    out, _ = play(client("bob", "nope"), server)
    assert str(out.error) == "-ERR [AUTH] Authentication failed."
    assert out.retrieved == []
    assert server.deleted == set()


def test_messages_marked_deleted_are_hidden_and_rset_restores_them():
    server = Pop3Server("pop", [10, 20], password="pw", tls=None)
    server.handle("USER u")
    server.handle("PASS pw")
    server.handle("DELE 1")
    assert str(server.handle("RETR 1")) == "-ERR There's no message 1."
    assert str(server.handle("STAT")) == "+OK 1 20"
    server.handle("RSET")
    assert str(server.handle("STAT")) == "+OK 2 30"


def test_transaction_commands_need_login():
    server = Pop3Server("pop", [10], password="pw")
    assert server.handle("STAT").code == "-ERR"


def test_sizes_on_the_wire_are_those_of_the_replies_as_sent():
    server = Pop3Server("pop", [20_000, 500], password="pw", tls=None)
    replies = [server.greeting(), server.handle("CAPA"), server.handle("USER u")]
    replies += [server.handle(line) for line in ("PASS pw", "STAT", "LIST", "RETR 1", "QUIT")]
    for reply in replies:
        assert reply.size == len(reply.wire().encode()) + reply.payload, reply
    assert replies[5].size == len("+OK 2 messages (20500 octets)\r\n1 20000\r\n2 500\r\n.\r\n")
