"""Throughput of mailsim against a bare SimPy model of the same shape, in one process.

    python benchmarks/throughput.py --messages 10000

builds a large world (``--domains`` × ``--users`` mail users, Poisson traffic between all
of them, STARTTLS and AUTH, a caching resolver, POP3 polling every 10 minutes), runs it,
and prints messages/s, protocol events/s and peak memory. It then runs a bare SimPy
model with the same sessions — one process per session, one resource request per
session, one timeout per exchange, with the durations mailsim measured — and prints
the ratio: how much mailsim's protocol logic, recording and bookkeeping cost on top of
SimPy's own event loop. Last, the same sessions with each one a single wait: the least
any run of this world can cost while every session is a SimPy process.

    python benchmarks/throughput.py --messages 1000000 --detail outcomes --only-time

times one run and prints its peak RSS, without the slower memory-traced runs and
baselines (a million messages take about half an hour).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from typing import Any

import simpy

import mailsim
from mailsim.scenario import validate


def world(domains: int, users: int, messages: int, rate_per_hour: float = 2.0) -> dict[str, Any]:
    """A scenario dict: ``domains`` domains of ``users`` users each, sending about
    ``messages`` messages in all."""
    n_users = domains * users
    hours = messages / (n_users * rate_per_hour)
    nodes: dict[str, Any] = {"core": {"role": "router"}, "dns": {"role": "dns"}}
    links: list[dict[str, Any]] = [{"between": ["core", "dns"], "latency": "2ms"}]
    zones: dict[str, Any] = {}
    people: dict[str, Any] = {}
    everyone = [f"u{u}@d{d}.example" for d in range(domains) for u in range(users)]
    for d in range(domains):
        domain = f"d{d}.example"
        nodes[f"mta{d}"] = {"role": "smtp", "host": f"mail.{domain}", "domains": [domain]}
        nodes[f"pop{d}"] = {"role": "pop", "host": f"pop.{domain}"}
        nodes[f"r{d}"] = {"role": "router"}
        links += [
            {
                "between": [f"r{d}", "core"],
                "latency": f"{5 + (d * 7) % 40}ms",
                "bandwidth": "1Gbps",
            },
            {"between": [f"mta{d}", f"r{d}"], "latency": "0.5ms"},
            {"between": [f"pop{d}", f"mta{d}"], "latency": "0.2ms"},
            {"between": [f"pop{d}", f"r{d}"], "latency": "0.5ms"},
        ]
        zones[domain] = {
            "mx": [{"preference": 10, "host": f"mail.{domain}"}],
            "a": {f"mail.{domain}": f"mta{d}"},
        }
        for u in range(users):
            client = f"c{d}.{u}"
            nodes[client] = {"role": "client"}
            links.append({"between": [client, f"r{d}"], "latency": "3ms", "bandwidth": "100Mbps"})
            people[f"u{u}@{domain}"] = {
                "client": client,
                "smtp": f"mta{d}",
                "mailbox": f"pop{d}",
                "poll": "10min",
                "poll_start": round(600 * ((d * users + u) / n_users), 3),
            }
    senders = [{"from": [f"u{u}@d{d}.example" for u in range(users)], "to": everyone,
                "rate": f"{rate_per_hour}/h", "size": "20KB", "stop": f"{hours * 3600:.0f}"}
               for d in range(domains)]  # fmt: skip
    return {
        "name": "throughput", "duration": f"{hours * 3600 + 1200:.0f}", "nodes": nodes,
        "links": links, "dns": {"zones": zones}, "users": people, "traffic": senders,
    }  # fmt: skip


def baseline(shape: list[tuple[float, int, list[float]]], servers: int) -> tuple[float, int]:
    """Bare SimPy: each session a process, one resource request, one timeout per exchange."""
    env = simpy.Environment()
    slots = [simpy.Resource(env, capacity=100) for _ in range(servers)]

    def session(start: float, server: int, waits: list[float]) -> Any:
        yield env.timeout(start)
        with slots[server].request() as request:
            yield request
            for wait in waits:
                yield env.timeout(wait)

    for start, server, waits in shape:
        env.process(session(start, server, waits))
    began = time.perf_counter()
    env.run()
    return time.perf_counter() - began, sum(len(w) for _, _, w in shape)


def session_floor(shape: list[tuple[float, int, list[float]]], servers: int) -> float:
    """Bare SimPy with each session as a single wait (one process, one resource request,
    one timeout of the session's whole length): what a run that keeps only outcomes
    cannot beat while every session is a SimPy process."""
    env = simpy.Environment()
    slots = [simpy.Resource(env, capacity=100) for _ in range(servers)]

    def session(start: float, server: int, length: float) -> Any:
        yield env.timeout(start)
        with slots[server].request() as request:
            yield request
            yield env.timeout(length)

    for start, server, waits in shape:
        env.process(session(start, server, sum(waits)))
    began = time.perf_counter()
    env.run()
    return time.perf_counter() - began


def events_bytes(recorder: Any) -> tuple[int, int]:
    """Bytes of the recorder's packed events (as allocated) and of its vocabulary of
    texts (the strings, their list and their index), counted object by object."""
    arrays = sys.getsizeof(recorder.packed)
    words = recorder.words
    vocabulary = sys.getsizeof(words) + sys.getsizeof(recorder._code_of)
    vocabulary += sum(sys.getsizeof(word) for word in words)
    return arrays, vocabulary


def shape_of(result: mailsim.Result) -> list[tuple[float, int, list[float]]]:
    """Each session's start, server and exchange durations, as mailsim measured them."""
    events = result.events
    servers: dict[str, int] = {}
    out = []
    for _, rows in events.groupby("session", sort=False):
        first = rows.iloc[0]
        server = servers.setdefault(str(first["dst"]), len(servers))
        arrive = rows["arrive"].to_numpy()
        start = float(rows["time"].iloc[0])
        waits = [float(b - a) for a, b in zip([start, *arrive[:-1]], arrive, strict=True)]
        out.append((start, server, [max(w, 0.0) for w in waits]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument("--users", type=int, default=20, help="per domain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detail", choices=("full", "hops", "outcomes"), default="full")
    parser.add_argument(
        "--only-time",
        action="store_true",
        help="one timed run, peak RSS only: no tracemalloc runs, no baseline (large runs)",
    )
    args = parser.parse_args()

    scenario = validate(world(args.domains, args.users, args.messages))
    gc.collect()
    began = time.perf_counter()
    result = mailsim.run(scenario, seed=args.seed, detail=args.detail, progress=_progress)
    took = time.perf_counter() - began
    print(file=sys.stderr)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux
    print(f"world: {args.domains} domains × {args.users} users, {len(scenario.nodes)} nodes")
    n_messages = result.n_messages
    summary = result.summary()
    print(f"mailsim --detail {args.detail}: {n_messages} messages in {took:.2f} s,"
          f" {n_messages / took:,.0f} messages/s, peak RSS {rss:,.0f} MiB")  # fmt: skip
    print(f"  retrieved {summary['retrieved']}, delivered {summary['delivered']},"
          f" in flight {summary['in_flight']}")  # fmt: skip
    if args.only_time:
        return
    # Memory in a second run: tracemalloc slows Python down, so it is not timed.
    del result
    gc.collect()
    tracemalloc.start()
    result = mailsim.run(scenario, seed=args.seed, detail=args.detail)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # What the recorded rows cost: the peak above that of the same run keeping only
    # outcomes (the world and the messages are the same in both; the finished copies,
    # kept whole at full and hops, are counted with the rows: what those levels keep).
    floor = peak
    if args.detail != "outcomes":
        del result
        gc.collect()
        tracemalloc.start()
        result_floor = mailsim.run(scenario, seed=args.seed, detail="outcomes")
        _, floor = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del result_floor
        gc.collect()
        result = mailsim.run(scenario, seed=args.seed, detail=args.detail)
    # The baseline needs every session's exchanges: take them from a full-detail run.
    full = result if args.detail == "full" else mailsim.run(scenario, seed=args.seed)
    n_events = full.recorder.n_events  # protocol events simulated (recorded or not)
    shape = shape_of(full)
    servers = len({s for _, s, _ in shape})
    base_took, base_events = baseline(shape, servers)
    floor_took = session_floor(shape, servers)
    print(f"  {n_events} protocol events, {len(shape)} sessions:"
          f" {n_events / took:,.0f} events/s,"
          f" traced peak {peak / 2**20:.0f} MiB ({peak / max(n_events, 1):.0f} B per event)")  # fmt: skip
    if args.detail != "outcomes":
        recorded = full.recorder.n_events if args.detail == "full" else len(result.hops)
        print(f"  recorded rows cost {(peak - floor) / max(recorded, 1):.0f} B each (peak"
              f" {peak / 2**20:.0f} MiB − {floor / 2**20:.0f} MiB keeping outcomes only)")  # fmt: skip
    if args.detail == "full":
        arrays, vocabulary = events_bytes(full.recorder)
        print(f"  the events table itself: {(arrays + vocabulary) / max(n_events, 1):.0f} B per"
              f" event ({arrays / max(n_events, 1):.0f} B of columns,"
              f" {vocabulary / max(n_events, 1):.0f} B of vocabulary: {len(full.recorder.words):,}"
              " distinct texts)")  # fmt: skip
    print(f"bare SimPy, same sessions: {base_events} timeouts in {base_took:.2f} s,"
          f" {base_events / base_took:,.0f} events/s")  # fmt: skip
    print(f"ratio mailsim/baseline events/s: {(n_events / took) / (base_events / base_took):.2f}")
    per_session = floor_took / len(shape)
    print(f"bare SimPy, each session one wait: {len(shape)} sessions in {floor_took:.2f} s"
          f" ({per_session * 1e6:.1f} µs each, {len(shape) / n_messages:.1f} per message):"
          f" 1,000,000 messages of this world ≥ {per_session * len(shape) / n_messages * 1e6:,.0f} s")  # fmt: skip


def _progress(now: float, limit: float) -> None:
    """Simulated time on stderr, so that a long run shows it is moving."""
    print(f"\r  simulated {now:,.0f} of {limit:,.0f} s", end="", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
