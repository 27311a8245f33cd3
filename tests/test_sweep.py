"""What-if sweeps: the grid × replications, common random numbers, confidence intervals,
the same table from any number of workers, and the files the CLI writes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mailsim
from mailsim.cli import main
from mailsim.network import Topology
from mailsim.sweep import TerminalProgress, confidence, grid, seeds
from tests.conftest import SCENARIOS
from tests.test_timing import RELAY_RTTS

CLASSROOM = SCENARIOS / "classroom.yaml"
BACKBONE = "links.r-school/r-home.latency"
# The relay hop is the only one crossing the backbone; it ends when mx-home sends its 250
# for the message (all its round trips, less the 250's way back; QUIT goes with the "."
# and its 221 is not awaited): 2 × 8.5 s per second of latency.
SLOPE = 2 * (RELAY_RTTS - 0.5)


def test_seeds_come_from_one_seed_sequence_and_grids_are_complete():
    expected = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(7).spawn(3)]
    assert seeds(7, 3) == expected
    assert len(set(seeds(7, 20))) == 20
    assert grid({"a": ["1", "2"], "b": ["x", "y", "z"]}) == [
        {"a": "1", "b": "x"}, {"a": "1", "b": "y"}, {"a": "1", "b": "z"},
        {"a": "2", "b": "x"}, {"a": "2", "b": "y"}, {"a": "2", "b": "z"},
    ]  # fmt: skip


def test_confidence_interval_is_students_t():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    mean, lo, hi = confidence(values)
    half = 3.182 * values.std(ddof=1) / 2  # t(0.975, 3 df) · s / √4
    assert (mean, lo, hi) == pytest.approx((2.5, 2.5 - half, 2.5 + half))
    assert np.isnan(confidence(np.array([5.0]))[1])


def test_latency_slope_is_the_round_trips_and_jitter_cancels_between_points():
    """With 20 ms of jitter on the backbone every run differs, but replication r draws
    the same jitter at every grid point: the difference is exactly the round trips'."""
    runs: list[dict] = []
    table = mailsim.sweep(
        CLASSROOM, {BACKBONE: ["10ms", "100ms", "300ms"]}, replications=5, seed=1,
        overrides=["links.r-school/r-home.jitter=20ms"], workers=1, runs=runs,
    )  # fmt: skip
    assert list(table[BACKBONE]) == ["10ms", "100ms", "300ms"]
    assert list(table["runs"]) == [5, 5, 5]
    frame = pd.DataFrame(runs)
    wide = frame.pivot(index="seed", columns=BACKBONE, values="transfer_mean")
    assert wide["10ms"].std() > 1e-3  # the jitter is there …
    # … and cancels: each replication's difference is the protocol's alone.
    diff = (wide["300ms"] - wide["10ms"]).to_numpy()
    assert diff == pytest.approx(np.full(5, SLOPE * 0.290), abs=1e-9)
    # The table's slope, from its means, lies within the points' confidence intervals.
    low, high = table.iloc[0], table.iloc[2]
    assert (high["transfer_mean"] - low["transfer_mean"]) / 0.290 == pytest.approx(SLOPE)
    assert low["transfer_mean_lo"] < low["transfer_mean"] < low["transfer_mean_hi"]
    assert table["delivery_ratio"].tolist() == [1.0, 1.0, 1.0]


def test_one_worker_and_two_give_the_same_table():
    vary = {BACKBONE: ["20ms", "80ms"]}
    fixed = ["links.r-school/r-home.jitter=5ms"]
    one = mailsim.sweep(CLASSROOM, vary, 3, seed=4, overrides=fixed, workers=1)
    two = mailsim.sweep(CLASSROOM, vary, 3, seed=4, overrides=fixed, workers=2)
    pd.testing.assert_frame_equal(one, two)


def test_cli_writes_the_table_the_runs_the_curve_and_what_reproduces_them(tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["sweep", str(CLASSROOM), "--vary", f"{BACKBONE}=10ms,50ms", "--replications", "2",
            "--seed", "3", "--workers", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "to the mailbox" in printed
    names = sorted(p.name for p in out.iterdir())
    assert names in (
        ["run.json", "runs.csv", "sweep.csv", "sweep.png"],
        ["run.json", "runs.csv", "sweep.parquet", "sweep.png"],
    )
    record = json.loads((out / "run.json").read_text())
    assert record["seeds"] == seeds(3, 2)
    assert record["vary"] == {BACKBONE: ["10ms", "50ms"]}
    assert set(record["versions"]) >= {"python", "mailsim", "simpy"}
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 4
    # Every number is reproduced by a plain run with the recorded seed and value.
    first = runs.iloc[0]
    again = mailsim.run(mailsim.load(CLASSROOM, [f"{BACKBONE}={first[BACKBONE]}"]),
                        seed=int(first["seed"]), detail="outcomes")  # fmt: skip
    delivered = again.messages.iloc[0]
    assert delivered["delivered_at"] - delivered["submitted_at"] == pytest.approx(
        first["transfer_mean"], abs=1e-9
    )


@pytest.mark.parametrize(
    ("vary", "line"),
    [
        (f"{BACKBONE}=10ms,fast",
         "--vary: links.3.latency: 'fast' is not a duration; write it like \"20ms\", \"5min\" or \"2h\""),
        (BACKBONE, f"--vary: {BACKBONE}: expected KEY=V1,V2,…, e.g. "
         "links.r-school/r-home.latency=10ms,100ms"),
        ("links.r-school/x.latency=1ms", "--vary: links.r-school/x.latency: no link between "
         "r-school and x (links: alice-pc/msa-school, msa-school/dns, msa-school/r-school, "
         "r-school/r-home, r-home/mx-home, mx-home/pop-home, r-home/bob-pc)"),
    ],
)  # fmt: skip
def test_bad_vary_exits_2_with_one_line_naming_the_key(tmp_path, capsys, vary, line):
    argv = ["sweep", str(CLASSROOM), "--vary", vary, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"mailsim: {line}\n"


TRANSATLANTIC = SCENARIOS / "transatlantic.yaml"
MX_LINK = "links.r-london/r-newyork.latency"


def test_transatlantic_delivery_rises_with_the_slope_the_round_trips_predict():
    """The acceptance study: the MX link from 10 ms to 300 ms, 20 replications. The line
    through the means has the protocol's slope, and the slope the round trips predict
    lies within what the confidence intervals allow."""
    latencies = ["10ms", "45ms", "80ms", "150ms", "300ms"]
    table = mailsim.sweep(TRANSATLANTIC, {MX_LINK: latencies}, replications=20, seed=0,
                          workers=1)  # fmt: skip
    x = np.array([0.010, 0.045, 0.080, 0.150, 0.300])
    y = table["transfer_mean"].to_numpy()
    fitted = np.polyfit(x, y, 1)[0]
    assert fitted == pytest.approx(SLOPE, abs=1e-6)
    first, last = table.iloc[0], table.iloc[-1]
    steepest = (last["transfer_mean_hi"] - first["transfer_mean_lo"]) / 0.290
    flattest = (last["transfer_mean_lo"] - first["transfer_mean_hi"]) / 0.290
    assert flattest <= SLOPE <= steepest
    assert steepest - flattest > 0  # the jitter makes an interval, not a point
    assert (table["delivery_ratio"] == 1.0).all()


@pytest.mark.parametrize(
    ("override", "round_trips"),
    [
        ("nodes.mx-college.pipelining=false", RELAY_RTTS - 0.5 + 2),  # MAIL, RCPT, DATA apart
        ("nodes.mx-college.tls=1.2", RELAY_RTTS - 0.5 + 1),  # a two-round-trip handshake
        ("nodes.mx-college.tls=none", RELAY_RTTS - 0.5 - 3),  # no STARTTLS, TLS, 2nd EHLO
    ],
)
def test_the_round_trip_count_is_the_lever(override, round_trips):
    table = mailsim.sweep(TRANSATLANTIC, {MX_LINK: ["10ms", "300ms"]}, replications=3,
                          overrides=[override], workers=1)  # fmt: skip
    slope = (table["transfer_mean"].iloc[1] - table["transfer_mean"].iloc[0]) / 0.290
    assert slope == pytest.approx(2 * round_trips, abs=1e-6)


def test_a_grid_point_listed_twice_or_an_empty_grid_is_refused():
    with pytest.raises(mailsim.InputError) as caught:
        mailsim.sweep(CLASSROOM, {BACKBONE: ["10ms", "10ms"]}, replications=2, workers=1)
    assert (
        str(caught.value)
        == f"--vary: {BACKBONE}: '10ms' is listed twice: each grid point is run once"
    )
    with pytest.raises(ValueError, match="at least one key"):
        mailsim.sweep(CLASSROOM, {}, replications=2)
    with pytest.raises(ValueError, match="at least one key"):
        mailsim.sweep(CLASSROOM, {BACKBONE: []}, replications=2)


def test_one_value_under_two_spellings_is_varied_once(tmp_path, capsys):
    """links.3 and links.r-home/r-school are the same link: a grid over both would run
    points where one spelling overrides the other, and a --set of it would be lost."""
    argv = ["sweep", str(CLASSROOM), "--vary", f"{BACKBONE}=10ms,20ms",
            "--vary", "links.r-home/r-school.latency=30ms", "--vary", "links.3.jitter=1ms",
            "--set", "links.3.latency=5ms", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        "mailsim: --vary: links.r-home/r-school.latency: is links.3.latency, already varied"
        f" as {BACKBONE}: vary it once",
        f"mailsim: --set: links.3.latency: is links.3.latency, also varied as {BACKBONE}: drop one",
    ]
    assert not (tmp_path / "o").exists()


def test_a_bad_fixed_value_is_blamed_on_set_not_on_vary(tmp_path, capsys):
    argv = ["sweep", str(CLASSROOM), "--vary", f"{BACKBONE}=10ms",
            "--set", "links.r-home/mx-home.latency=fast", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("mailsim: --set: links.4.latency: 'fast'")
    assert not (tmp_path / "o").exists()  # nothing made for a study that cannot run


def test_failed_attempts_need_the_hop_table():
    mx_down = SCENARIOS / "mx-down.yaml"
    hops = mailsim.sweep(mx_down, {"duration": ["6h"]}, replications=1, workers=1)
    outcomes = mailsim.sweep(mx_down, {"duration": ["6h"]}, replications=1, workers=1,
                             detail="outcomes")  # fmt: skip
    assert hops["retries"].iloc[0] == 5.0  # refused at 0, 10, 20, 40, 80 min
    assert np.isnan(outcomes["retries"].iloc[0])
    assert hops["transfer_mean"].iloc[0] == outcomes["transfer_mean"].iloc[0]


def test_a_dask_cluster_gives_the_same_table_as_local_processes():
    distributed = pytest.importorskip("distributed")
    vary = {BACKBONE: ["20ms", "80ms"]}
    fixed = ["links.r-school/r-home.jitter=5ms"]
    local = mailsim.sweep(CLASSROOM, vary, 3, seed=9, overrides=fixed, workers=2)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        seen: list[tuple[int, int]] = []
        on_dask = mailsim.sweep(CLASSROOM, vary, 3, seed=9, overrides=fixed, client=client,
                                progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    pd.testing.assert_frame_equal(local, on_dask)
    assert seen == [(k, 6) for k in range(1, 7)]


def test_an_unreachable_dask_scheduler_is_one_line(tmp_path, capsys):
    pytest.importorskip("distributed")
    argv = ["sweep", str(CLASSROOM), "--vary", f"{BACKBONE}=10ms", "--dask",
            "tcp://127.0.0.1:9", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mailsim: --dask: tcp://127.0.0.1:9: cannot reach the scheduler")
    assert err.count("\n") == 1


def test_tls_versions_the_round_trips_are_the_lever():
    """tls-versions.yaml: one message to four equally distant MX hosts. Against TLS 1.3
    with PIPELINING: TLS 1.2 costs one round trip (and one more handshake flight of
    server work), no PIPELINING two round trips, no STARTTLS saves three round trips and
    the work of STARTTLS, the second EHLO and the handshake."""
    # Links so fast that sending takes no time: only round trips and server work remain.
    fast = [f"links.{i}.bandwidth=1000000000Gbps" for i in range(10)]
    scenario = mailsim.load(SCENARIOS / "tls-versions.yaml", fast)
    result = mailsim.run(scenario)
    rtt = Topology(scenario, 0).rtt("msa-school", "mx-modern")
    assert rtt == pytest.approx(0.090)
    work = scenario.nodes["mx-modern"].processing
    hops = result.hops[result.hops["protocol"] == "smtp"]
    took = {str(d): e - s for d, s, e in zip(hops["dst"], hops["start"], hops["end"], strict=True)}
    base = took["mx-modern"]
    assert took["mx-tls12"] - base == pytest.approx(rtt + work.tls, abs=1e-9)
    assert took["mx-nopipe"] - base == pytest.approx(2 * rtt, abs=1e-9)
    assert took["mx-plain"] - base == pytest.approx(
        -(3 * rtt + work.tls + 2 * work.command), abs=1e-9
    )
    assert (result.messages["status"] == "delivered").all()


def test_slow_server_waiting_grows_faster_than_the_scan_and_a_second_process_cures_it():
    """slow-server.yaml: one session at a time, a scan at the end of DATA. Doubling the
    scan more than doubles the waiting in the listen queue (the server is busy more of
    the time, and each wait is longer); a second process removes most of it."""
    slow = SCENARIOS / "slow-server.yaml"
    vary = {"nodes.mx-home.concurrency": ["1", "2"], "nodes.mx-home.processing.data": ["2s", "4s"]}
    table = mailsim.sweep(slow, vary, replications=3, workers=1).set_index(list(vary))
    queue = table["queue_mean"]
    # M/D/1 (Pollaczek–Khinchine), 600 messages an hour, a session of 2.3 s or 4.3 s:
    # 0.71 s and 5.4 s of waiting; three runs of 30 minutes give 0.70 s and 4.4 s.
    assert queue[("1", "4s")] > 4 * queue[("1", "2s")] > 0
    assert queue[("2", "2s")] < queue[("1", "2s")] / 5
    assert queue[("2", "4s")] < queue[("1", "4s")] / 5
    # The scan is in every delivery: 2 s more scan, at least 2 s more delivery time.
    transfer = table["transfer_mean"]
    assert transfer[("2", "4s")] - transfer[("2", "2s")] > 2.0
    assert (table["delivery_ratio"] == 1.0).all()


def test_progress_bars_count_the_runs(capsys):
    mailsim.sweep(CLASSROOM, {BACKBONE: ["10ms", "20ms"]}, 2, workers=1, progress=True)
    assert "4/4" in capsys.readouterr().err  # tqdm: a notebook widget, or text here
    with TerminalProgress(delay=0) as bar:  # rich, for the command line
        bar(1, 2)
        bar(2, 2)
    assert "2/2" in capsys.readouterr().err
    with TerminalProgress() as bar:  # work done within a second shows no bar at all
        bar(1, 2)
        bar(2, 2)
    assert capsys.readouterr().err == ""


def test_vary_values_may_hold_commas_inside_brackets(tmp_path, capsys):
    argv = ["sweep", str(CLASSROOM), "--vary", "nodes.bob-pc.pos=[5, 1],[6, 0]",
            "--replications", "1", "--workers", "1", "--quiet", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 0
    runs = pd.read_csv(tmp_path / "o" / "runs.csv")
    assert list(runs["nodes.bob-pc.pos"]) == ["[5, 1]", "[6, 0]"]
