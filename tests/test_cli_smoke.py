import json

import mailsim
from mailsim.cli import main
from tests.conftest import SCENARIOS


def test_classroom_message_is_retrieved_over_four_hops(capsys):
    assert main(["run", str(SCENARIOS / "classroom.yaml"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (message,) = doc["messages"]
    assert message["status"] == "retrieved"
    hops = [(h["src"], h["dst"], h["protocol"]) for h in message["hops"]]
    assert hops == [
        ("alice-pc", "msa-school", "submission"),
        ("msa-school", "mx-home", "smtp"),
        ("mx-home", "pop-home", "lmtp"),
        ("pop-home", "bob-pc", "pop3"),
    ]
    submission = message["hops"][0]
    assert submission["tls"] == "1.3"
    assert submission["auth"] is True
    assert message["hops"][1]["auth"] is False


def test_readme_shows_what_make_run_prints(capsys):
    """The quickstart's sample output is the real output of the classroom scenario."""
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    start = readme.index("m1  alice@school.example → bob@home.example")
    shown = readme[start : readme.index("```", start)].strip().splitlines()
    assert main(["run", str(SCENARIOS / "classroom.yaml")]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[2:] == shown


def test_a_long_run_can_show_its_progress_in_a_notebook(capsys):
    """progress=True: a tqdm bar of simulated time (text here, a widget in Jupyter)."""
    mailsim.run(mailsim.load(SCENARIOS / "classroom.yaml"), progress=True)
    assert "3600/3600" in capsys.readouterr().err
