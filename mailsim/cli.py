"""The ``mailsim`` command: run, step, plot, sweep, validate, schema. No simulation logic lives here.

Exit codes: 0 ok, 2 bad input (scenario file, option) with one line per problem on
standard error and never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mailsim.errors import InputError, Problem
from mailsim.files import WriteError

if TYPE_CHECKING:
    from mailsim.sweep import TerminalProgress

PROTOCOLS = ("tcp", "tls", "dns", "smtp", "lmtp", "pop3", "imap", "https")
PLOTS = (
    "route", "sequence", "timeline", "servers", "delays", "load", "overheard", "verdicts",
    "animate",
)  # fmt: skip


class _Parser(argparse.ArgumentParser):
    """Option errors as one line, like every other bad input, pointing at the help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"mailsim: error: {message} (see: {self.prog} --help)\n")


def _whole(minimum: int, name: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""
    prefix = f"{name} " if name else ""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{prefix}takes a whole number, not {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{prefix}must be {minimum} or more, not {value}")
        return value

    return parse


_count = _whole(1)
_seed = _whole(0, "--seed")


def _add_set(
    parser: argparse.ArgumentParser,
    help: str = "change a scenario value, e.g. links.msa-school/r-school.latency=150ms (repeatable)",
) -> None:
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides", help=help
    )


def _add_max_messages(parser: argparse.ArgumentParser, per: str = "") -> None:
    from mailsim.budget import MAX_MESSAGES

    parser.add_argument(
        "--max-messages",
        type=_whole(1, "--max-messages"),
        default=MAX_MESSAGES,
        metavar="N",
        help=f"refuse a run estimated to send more (default {MAX_MESSAGES:,}){per}",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mailsim",
        description="Simulate how an e-mail travels: SMTP, DNS and POP3 over a network.",
    )
    from mailsim import __version__

    parser.add_argument("--version", action="version", version=f"mailsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="simulate a scenario and report each message's journey")
    run.add_argument("scenario", help="scenario file (YAML)")
    run.add_argument("--seed", type=_seed, default=0, help="random seed")
    _add_set(run)
    run.add_argument("--json", action="store_true", help="print one JSON document instead")
    run.add_argument(
        "--detail",
        choices=("full", "hops", "outcomes"),
        default="full",
        help="keep every protocol step (full), one row per hop, or outcomes only",
    )
    run.add_argument(
        "--out", metavar="DIR", help="write events.csv, sessions.csv, hops.csv, messages.csv"
    )
    run.add_argument(
        "--limit", type=_whole(0, "--limit"), default=20, metavar="N",
        help="messages shown in detail",
    )  # fmt: skip
    run.add_argument(
        "--plots",
        metavar="DIR",
        help="write route.png, sequence.png, timeline.png, servers.png, delays.png"
        " (load.png: many messages)",
    )
    run.add_argument("--eml", metavar="DIR", help="write each delivered copy as an .eml file")
    run.add_argument(
        "--pcap", metavar="FILE", help="write every packet to a capture file Wireshark opens"
    )
    run.add_argument(
        "--pcap-on",
        metavar="WHERE",
        help="capture on one link ('r-school,r-home') or an eavesdropper's (its name)"
        " instead of each packet as it leaves its sender",
    )
    run.add_argument("--pcap-links", metavar="DIR", help="write one capture file per link")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_max_messages(run)

    plot = sub.add_parser(
        "plot", help="draw one figure of a run (PNG, SVG, PDF; animate: GIF, MP4 or HTML)"
    )
    plot.add_argument(
        "kind", choices=PLOTS, metavar="KIND", help=f"which figure: {', '.join(PLOTS)}"
    )
    plot.add_argument("scenario", help="scenario file (YAML)")
    plot.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    plot.add_argument("--message", metavar="ID", help="message to draw (default: the first)")
    plot.add_argument("--seed", type=_seed, default=0, help="random seed")
    _add_set(plot)
    plot.add_argument(
        "--page",
        type=_whole(1, "--page"),
        metavar="N",
        help="sequence: only page N, at 1280×720 (a projector)",
    )
    plot.add_argument(
        "--frame", type=_whole(1, "--frame"), metavar="N",
        help="animate: only frame N, as a still picture (PNG, SVG, PDF) for slides",
    )  # fmt: skip
    _add_max_messages(plot)

    step = sub.add_parser(
        "step", help="step through a run one protocol event at a time (Enter = next)"
    )
    step.add_argument("scenario", help="scenario file (YAML)")
    step.add_argument("--seed", type=_seed, default=0, help="random seed")
    _add_set(step)
    step.add_argument(
        "--filter", choices=(*PROTOCOLS, "submission"), metavar="PROTOCOL",
        help=f"show only this protocol: {', '.join((*PROTOCOLS, 'submission'))}"
        " (or type `f smtp` while stepping)",
    )  # fmt: skip
    step.add_argument(
        "--message", metavar="ID",
        help="start at this message's first event (default: the first message sent)",
    )  # fmt: skip

    sweep = sub.add_parser(
        "sweep", help="run a scenario over a grid of values × replications (a what-if study)"
    )
    sweep.add_argument("scenario", help="scenario file (YAML)")
    sweep.add_argument(
        "--vary", action="append", required=True, metavar="KEY=V1,V2,…",
        help="a key (as for --set) and the values to try, e.g. links.a/b.latency=10ms,100ms",
    )  # fmt: skip
    sweep.add_argument("--replications", type=_count, default=10, metavar="R",
                       help="runs per grid point, each with its own seed")  # fmt: skip
    sweep.add_argument("--seed", type=_seed, default=0, help="seed of the seeds")
    sweep.add_argument("--workers", type=_count, metavar="N",
                       help="processes running the runs (default: all cores)")  # fmt: skip
    sweep.add_argument("--dask", metavar="ADDRESS",
                       help="run on a Dask cluster, e.g. tcp://scheduler:8786 (mailsim[dask])")  # fmt: skip
    sweep.add_argument("--detail", choices=("full", "hops", "outcomes"), default="hops",
                       help="what each run keeps (outcomes is faster but cannot count"
                            " failed attempts)")  # fmt: skip
    sweep.add_argument("--out", required=True, metavar="DIR",
                       help="write sweep.csv, runs.csv, sweep.png and run.json here")  # fmt: skip
    sweep.add_argument("--quiet", action="store_true", help="no progress line")
    _add_max_messages(sweep, " (per run; a sweep may send ten times as many in all)")
    _add_set(sweep, "change a scenario value at every grid point (repeatable)")

    validate = sub.add_parser("validate", help="check a scenario file and list every problem")
    validate.add_argument("scenario", nargs="+", help="scenario file(s)")
    _add_set(validate)

    expand = sub.add_parser(
        "expand", help="print the full scenario a short one (sites and domains) stands for"
    )
    expand.add_argument("scenario", help="scenario file (short or full form)")
    _add_set(expand)

    check = sub.add_parser(
        "check", help="check an activity's goals on a scenario: each met or not, and a total"
    )
    check.add_argument("activity", help="activity file (title, scenario, change, goals)")
    check.add_argument(
        "scenario", nargs="?", help="the student's scenario (default: the activity's own)"
    )
    check.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    sub.add_parser("schema", help="print the JSON Schema of scenario files (for editors)")

    examples = sub.add_parser(
        "examples", help="list the shipped scenarios and lessons, or copy them to start from"
    )
    examples.add_argument("action", nargs="?", choices=("copy",), help="copy them into DIR")
    examples.add_argument("folder", nargs="?", metavar="DIR", help="where to copy them")
    examples.add_argument(
        "--no-solutions", dest="solutions", action="store_false",
        help="leave out the activities' solutions (a copy to hand out to students)",
    )  # fmt: skip

    headers = sub.add_parser(
        "headers", help="read a real message's route from its Received: headers"
    )
    headers.add_argument(
        "file", help="an .eml file, an mbox (its first message), or - for pasted headers"
    )
    headers.add_argument("--json", action="store_true", help="print the route as JSON")
    headers.add_argument(
        "--plot", metavar="FILE", help="draw the route and the delay per hop (PNG, SVG, PDF)"
    )
    headers.add_argument(
        "--scenario", metavar="FILE", help="write a scenario that replays the route (YAML)"
    )
    export = sub.add_parser(
        "export", help="write a lesson as one HTML page that needs no network, widgets as saved"
    )
    export.add_argument("lesson", help="a lesson notebook (.ipynb)")
    export.add_argument(
        "-o", "--out", metavar="FILE", help="the page to write (default: LESSON's name, .html)"
    )
    export.add_argument(
        "--run", action="store_true",
        help="run the lesson first, in its folder: outputs and widgets as the run leaves them",
    )  # fmt: skip
    for name, command in sub.choices.items():
        command.formatter_class = _Help
        command.epilog = "examples:\n" + "\n".join(_continued(line) for line in EXAMPLES[name])
    return parser


# Shown at the end of each command's --help: real commands on the shipped scenarios.
EXAMPLES = {
    "run": [
        "mailsim run scenarios/classroom.yaml",
        "mailsim run scenarios/mx-down.yaml --plots pictures",
        "mailsim run scenarios/classroom.yaml --set links.r-school/r-home.latency=150ms",
    ],
    "plot": [
        "mailsim plot route scenarios/classroom.yaml -o route.png",
        "mailsim plot sequence scenarios/classroom.yaml --page 1 -o ladder-1.png",
        "mailsim plot animate scenarios/mx-down.yaml -o journey.gif",
        "mailsim plot animate scenarios/classroom.yaml -o packets.mp4",
    ],
    "step": [
        "mailsim step scenarios/classroom.yaml",
        "mailsim step scenarios/greylisting.yaml --filter smtp",
    ],
    "sweep": [
        "mailsim sweep scenarios/transatlantic.yaml --vary links.r-london/r-newyork.latency=20ms,80ms"
        " --out study",
        "mailsim sweep scenarios/slow-server.yaml --vary nodes.mx-home.concurrency=1,2"
        " --replications 5 --out study",
    ],
    "validate": [
        "mailsim validate scenarios/classroom.yaml",
        "mailsim validate my-network.yaml --set duration=2h",
    ],
    "expand": [
        "mailsim expand scenarios/classroom-short.yaml",
        "mailsim expand my-world.yaml > my-world-full.yaml",
    ],
    "check": [
        "mailsim check scenarios/activities/faster-mail.yaml",
        "mailsim check scenarios/activities/faster-mail.yaml"
        " scenarios/activities/solutions/faster-mail.yaml",
    ],
    "schema": ["mailsim schema > mailsim-schema.json"],
    "examples": [
        "mailsim examples",
        "mailsim examples copy my-mail-lessons",
        "mailsim examples copy for-my-class --no-solutions",
    ],
    "export": [
        "mailsim export notebooks/school/01-first-email.ipynb --run",
        "mailsim export my-lesson.ipynb -o lesson-for-the-class.html",
    ],
    "headers": [
        "mailsim headers message.eml",
        "mailsim headers - < pasted-headers.txt",
        "mailsim headers message.eml --plot route.png --scenario replay.yaml",
    ],
}


class _Help(argparse.RawDescriptionHelpFormatter):
    """Help as a newcomer reads it: each option's default said, a key such as
    links.msa-school/r-school.latency never split at its hyphens, examples kept as written."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        quiet = (None, False, [], argparse.SUPPRESS)
        if action.option_strings and action.default not in quiet and "(default" not in text:
            text += " (default: %(default)s)"
        return text


def _continued(command: str, width: int = 79) -> str:
    """An example command indented for a help text, broken with shell continuations
    (`` \\``) where it is wider than an 80-column terminal: copied, it still runs."""
    words: list[str] = []
    for word in command.split(" "):  # an option stays on the line of its value
        if words and words[-1].startswith("-") and not word.startswith("-"):
            words[-1] += " " + word
        else:
            words.append(word)
    lines = ["  "]
    for word in words:
        if len(lines[-1]) > 4 and len(lines[-1]) + 1 + len(word) + 2 > width:
            lines[-1] += " \\"
            lines.append("      ")
        lines[-1] += word if lines[-1].strip() == "" else " " + word
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for run.json
    try:
        code = _command(args)
        sys.stdout.flush()  # a full disk or device shows here, not at exit
        return code
    except InputError as exc:
        for problem in exc.problems:
            print(f"mailsim: {problem}", file=sys.stderr)
        return 2
    except WriteError as exc:
        print(f"mailsim: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: nothing has been written yet, outputs come after a run
        print("mailsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`mailsim step … | head`): stop quietly, as Unix tools do.
        _drop_stdout()
        return 0
    except OSError as exc:
        if exc.errno is None or not _is_stdout_error(exc):
            raise
        _drop_stdout()
        print(f"mailsim: standard output: cannot write: {exc.strerror}", file=sys.stderr)
        return 1


# Commands whose SCENARIO may be the bare name of a shipped one: `mailsim run classroom`.
_READS_SCENARIOS = ("run", "plot", "step", "sweep", "validate", "expand")


def _command(args: argparse.Namespace) -> int:
    if args.command in _READS_SCENARIOS:
        from mailsim.examples import resolve

        if isinstance(args.scenario, list):
            args.scenario = [resolve(path) for path in args.scenario]
        else:
            args.scenario = resolve(args.scenario)
    if args.command == "examples":
        return _examples(args)
    if args.command == "run":
        return _run(args)
    if args.command == "step":
        return _step(args, sys.stdin, sys.stdout)
    if args.command == "check":
        return _check(args)
    if args.command == "expand":
        from mailsim.scenario import expanded

        print(expanded(args.scenario, args.overrides), end="")
        return 0
    if args.command == "validate":
        return _validate(args)
    if args.command == "plot":
        return _plot(args)
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "headers":
        return _headers(args, sys.stdin)
    if args.command == "export":
        return _export(args)
    return _schema()


def _is_stdout_error(exc: OSError) -> bool:
    """An error writing standard output (``> /dev/full``), not some file of ours: the
    traceback ends in a print or a flush of stdout."""
    import errno

    return exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG) and not getattr(
        exc, "filename", None
    )


def _drop_stdout() -> None:
    """Point standard output at /dev/null, so that Python's own flush at exit finds
    nothing left to write and says nothing."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _clock_bar() -> TerminalProgress:
    """A bar of simulated time, for runs long enough to wait for (a day of an office);
    it disappears when the run is done."""
    from mailsim.sweep import TerminalProgress

    return TerminalProgress("simulating", count=False)


def _writing_bar() -> TerminalProgress:
    """A bar for writing a capture, which takes minutes for a day of an office."""
    from mailsim.sweep import TerminalProgress

    return TerminalProgress("writing the capture", count=False)


def _run(args: argparse.Namespace) -> int:
    import mailsim
    from mailsim import budget, report
    from mailsim.files import out_dir, out_file

    scenario = mailsim.load(args.scenario, args.overrides)
    problems = []
    if args.plots and args.detail != "full":
        problems.append(Problem(args.plots, "--plots", "needs --detail full (the default)"))
    if args.eml and args.detail == "outcomes":
        problems.append(
            Problem(args.eml, "--eml", "needs --detail full or hops (outcomes keeps no copies)")
        )
    problems += _pcap_problems(args, scenario)
    if problems:
        raise InputError(problems)
    # Every output is checked before the run: a long simulation is never lost to a typo.
    out = out_dir(args.out, "--out") if args.out else None
    plots = out_dir(args.plots, "--plots") if args.plots else None
    eml = out_dir(args.eml, "--eml") if args.eml else None
    pcap = out_file(args.pcap, "--pcap") if args.pcap else None
    pcap_links = out_dir(args.pcap_links, "--pcap-links") if args.pcap_links else None
    tables = any(x is not None for x in (out, plots, pcap, pcap_links))
    budget.check(scenario, args.scenario, args.detail, args.max_messages, tables)
    quiet = args.quiet or not sys.stderr.isatty()
    with contextlib.nullcontext(None) if quiet else _clock_bar() as bar:
        result = mailsim.run(
            scenario,
            seed=args.seed,
            detail=args.detail,
            progress=bar,
            max_messages=args.max_messages,
        )
    if args.json:
        document = result.to_dict()
        if args.overrides:
            document["set"] = list(args.overrides)  # provenance: how to run it again
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(report.text(result, limit=args.limit, overrides=args.overrides))
    if plots is not None:
        from mailsim.plot.files import save_all

        written = save_all(result, plots)
        if not args.json:
            print(f"\nwrote {', '.join(p.name for p in written)} to {plots}")
    if eml is not None:
        count = _write_eml(result, eml)
        if not args.json:
            print(f"\nwrote {plural(count, '.eml file')} to {eml}")
    if out is not None:
        tables = ("events", "sessions", "hops", "messages")
        for table in tables:
            _write_csv(getattr(result, table), out / f"{table}.csv")
        if not args.json:
            print(f"\nwrote {', '.join(f'{t}.csv' for t in tables)} to {out}")
    if pcap is not None:
        with contextlib.nullcontext(None) if quiet else _writing_bar() as bar:
            count = result.to_pcap(pcap, args.pcap_on, progress=bar)
        if not args.json:
            where = f" seen on {args.pcap_on}" if args.pcap_on else ""
            print(f"\nwrote {plural(count, 'packet')}{where} to {pcap}")
    if pcap_links is not None:
        files = result.to_pcaps(pcap_links)
        if not args.json:
            print(f"\nwrote {plural(len(files), 'capture file')} (one per link) to {pcap_links}")
    return 0


def _pcap_problems(args: argparse.Namespace, scenario: Any) -> list[Problem]:
    """What is wrong with the capture options, found before the run."""
    problems = []
    for option, value in (("--pcap", args.pcap), ("--pcap-links", args.pcap_links)):
        if value and args.detail != "full":
            problems.append(Problem(value, option, "needs --detail full (the default)"))
    if args.pcap_on and not args.pcap:
        problems.append(Problem(args.pcap_on, "--pcap-on", "needs --pcap FILE to write to"))
    elif args.pcap_on:
        from mailsim.capture import point

        try:
            point(scenario, args.pcap_on)
        except ValueError as exc:
            problems.append(Problem(args.scenario, "--pcap-on", str(exc)))
    return problems


def _write_eml(result: Any, folder: Path) -> int:
    """Each delivered copy as ``ID-RECIPIENT.eml``; names made safe and unique (``m/1``
    and ``m?1`` would both be ``m_1``), so the count said is the count written."""
    from mailsim.files import unique_name, write_bytes

    taken: set[str] = set()
    count = 0
    for copy in result.copies:
        if copy.delivered_at is not None:
            name = unique_name(f"{copy.message.id}-{copy.recipient}.eml", taken)
            write_bytes(folder / name, copy.to_email(result.epoch).as_bytes())
            count += 1
    return count


def _write_csv(table: Any, path: Path) -> None:
    try:
        table.to_csv(path, index=False)
    except OSError as exc:
        raise WriteError(path, exc.strerror or str(exc)) from None


def _plot(args: argparse.Namespace) -> int:
    import mailsim
    from mailsim import budget
    from mailsim.files import out_file
    from mailsim.plot.files import ANIMATION_FORMATS, FORMATS, save

    output = out_file(args.output, "-o")
    still = args.kind == "animate" and args.frame is not None
    formats = ANIMATION_FORMATS if args.kind == "animate" and not still else FORMATS
    if output.suffix.lower() not in formats:
        raise InputError(
            [Problem(args.output, "-o", f"unknown format; use one of {', '.join(formats)}")]
        )
    scenario = mailsim.load(args.scenario, args.overrides)
    budget.check(scenario, args.scenario, "full", args.max_messages, tables=True)
    with contextlib.nullcontext(None) if not sys.stderr.isatty() else _clock_bar() as bar:
        result = mailsim.run(scenario, seed=args.seed, progress=bar, max_messages=args.max_messages)
    ids = [c.message.id for c in result.copies]
    if args.message is not None and args.message not in ids:
        import difflib

        close = difflib.get_close_matches(args.message, ids, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (messages: {', '.join(ids[:8])})"
        raise InputError(
            [Problem(args.scenario, "--message", f"no message {args.message!r}{hint}")]
        )
    if not ids and args.kind != "route":
        raise InputError([Problem(args.scenario, "messages", "the run has no message to draw")])
    if args.page is not None:
        from mailsim.plot.sequence import pages

        count = pages(result, args.message)
        if args.kind != "sequence" or not 1 <= args.page <= count:
            why = (
                "only the sequence has pages"
                if args.kind != "sequence"
                else f"there are {count} pages"
            )
            raise InputError([Problem(args.scenario, "--page", f"no page {args.page}: {why}")])
    if args.frame is not None:
        from mailsim.plot.animate import Scene

        count = Scene.frames_of(result, args.message) if args.kind == "animate" else 0
        if not 1 <= args.frame <= count:
            why = "only animate has frames" if args.kind != "animate" else f"there are {count}"
            raise InputError([Problem(args.scenario, "--frame", f"no frame {args.frame}: {why}")])
    save(result, args.kind, output, args.message, page=args.page, frame=args.frame)
    print(f"wrote {output}")
    return 0


def _step(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Packet Tracer's simulation mode in a terminal: one protocol event per Enter, with
    what it means and what changed in the world."""
    import mailsim
    from mailsim.protocols import meaning
    from mailsim.report import terminal_width, wrap

    scenario = mailsim.load(args.scenario, args.overrides)
    stepper = mailsim.Stepper(scenario, seed=args.seed)
    protocol = args.filter
    say = functools.partial(print, file=stdout)
    say("Enter: next event · p: its packet · f PROTOCOL: only that protocol (f: all) · q: quit")
    packets = _Packets(scenario, args.seed)
    # Start at the message followed (the first one by default): what comes before it
    # is mail programs checking empty mailboxes.
    first = stepper.next_event(message=args.message) if args.message else None
    if args.message and first is None:
        raise InputError([Problem(args.scenario, "--message", f"no message {args.message!r}")])
    start: float | None = None
    shown: tuple[str, str] = ("", "")
    while True:
        snap = first or stepper.next_event(protocol)
        first = None
        if snap is None:
            say("— end of the run —")
            from mailsim import report

            say(report.conservation_line(stepper.result()))
            return 0
        event = snap.event
        if start is None:
            if not event["message"] and args.message is None:
                continue  # a poll of an empty mailbox, before any mail
            start = event["time"]
            say(
                f"following {event['message'].split()[0]} from its first event at"
                f" {start:.3f} s; times are counted from there"
            )
        for line in wrap(_event_line(snap.index, event, start), terminal_width(), 8):
            say(line)
        what = meaning(event["step"], event["code"])
        if what:
            say(f"        {what}")
        state = (
            "; ".join(snap.sessions.values()),
            "; ".join(f"{k}: {', '.join(v)}" for k, v in snap.queues.items() if v),
        )
        if state != shown:  # the world's state, when it changed
            say(f"        open: {state[0] or 'no session'}")
            if state[1] or shown[1]:
                say(f"        queued: {state[1] or 'nothing'}")
            shown = state
        stdout.flush()
        while True:  # read until a command that moves on
            answer = stdin.readline()
            if answer == "":  # end of input: run to the end without stopping
                stdin = _Endless()
                break
            command = answer.strip().split()
            if command[:1] == ["q"]:
                return 0
            if command[:1] == ["p"]:
                say(packets.of(event))
                stdout.flush()
                continue
            if command[:1] != ["f"]:
                break
            wanted = command[1] if len(command) > 1 else None
            if wanted is not None and wanted not in (*PROTOCOLS, "submission"):
                choices = ", ".join((*PROTOCOLS, "submission"))
                say(f"no protocol {wanted!r}: use {choices} (f alone: all)")
                continue
            protocol = wanted
            break


class _Packets:
    """The PDU view of ``mailsim step``: the run played to its end once, when a packet is
    first asked for (a stepped event knows its session, sender and time, not its bytes)."""

    def __init__(self, scenario: Any, seed: int) -> None:
        self._scenario, self._seed = scenario, seed
        self._pdus: Any = None

    def of(self, event: dict[str, Any]) -> str:
        if self._pdus is None:
            import mailsim
            from mailsim.pdu import Pdus

            self._pdus = Pdus(mailsim.run(self._scenario, seed=self._seed))
        pdu = self._pdus.of(event["session"], event["src"], event["time"])
        if pdu is None:
            return "        no packet: nothing went on the wire (the client gave up on its own)"
        return "\n".join(f"        {line}" for line in str(pdu).splitlines())


def _event_line(index: int, event: dict[str, Any], start: float) -> str:
    """``#20   +0.0 ms → +2.0 ms  alice-pc → msa-school  tcp  SYN``."""
    code = f" [{event['code']}]" if event["code"] else ""
    return (
        f"#{index:<4} {_since(event['time'] - start)} → {_since(event['arrive'] - start)}"
        f"  {event['src']} → {event['dst']}  {event['protocol']}{code}  {event['detail']}"
    )


def _since(seconds: float) -> str:
    """A time from the followed message's start: ``+2.0 ms``, ``+1.234 s``, ``+4 min 49 s``."""
    from mailsim.units import format_duration

    sign = "-" if seconds < 0 else "+"
    return sign + format_duration(abs(seconds))


class _Endless:
    def readline(self) -> str:
        return "\n"


def _sweep(args: argparse.Namespace) -> int:
    from mailsim.files import out_dir
    from mailsim.sweep import TerminalProgress, check, check_workers, describe, save, sweep

    vary: dict[str, list[str]] = {}
    problems = []
    for item in args.vary:
        key, sep, values = item.partition("=")
        key = key.strip()
        parts = [v.strip() for v in _split_values(values)]
        if not sep or not key or not all(parts):
            problems.append(Problem("--vary", key or item, "expected KEY=V1,V2,…, e.g. "
                                    "links.r-school/r-home.latency=10ms,100ms"))  # fmt: skip
        elif key in vary:
            problems.append(
                Problem("--vary", key, "varied twice; list all its values in one --vary")
            )
        else:
            vary[key] = parts
    if problems:
        raise InputError(problems)
    text, points = check(
        args.scenario, vary, args.replications, args.overrides, args.detail, args.max_messages
    )
    if not args.dask:
        check_workers(args.workers, len(points) * args.replications)
    client = _dask_client(args.dask) if args.dask else None
    out = out_dir(args.out, "--out")  # only once the study is known to be sound
    quiet = args.quiet or not sys.stderr.isatty()
    runs: list[dict[str, object]] = []
    with contextlib.nullcontext(None) if quiet else TerminalProgress() as bar:
        table = sweep(
            args.scenario, vary, args.replications, args.seed, overrides=args.overrides,
            workers=args.workers, client=client, detail=args.detail, runs=runs, progress=bar,
            max_messages=args.max_messages,
        )  # fmt: skip
    if client is not None:
        client.close()
    written = save(table, runs, out, args.scenario, text, vary, args, args.argv)
    print(describe(table, list(vary)))
    print(f"\nwrote {', '.join(p.name for p in written)} to {out}")
    return 0


def _split_values(text: str) -> list[str]:
    """``10ms,100ms`` → two values; commas inside brackets or quotes stay in their value
    (``[0, 0],[0, 1]`` is two positions)."""
    values, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(current)
            current = ""
            continue
        current += char
    return [*values, current]


def _dask_client(address: str) -> object:
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            [
                Problem(
                    "--dask",
                    address,
                    "needs Dask, in mailsim's dask extra: in the repository"
                    " .venv/bin/pip install -e '.[dask]', from a wheel"
                    " pip install 'mailsim-….whl[dask]'",
                )
            ]
        ) from None
    try:
        return Client(address, timeout=10)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            [Problem("--dask", address, f"cannot reach the scheduler: {exc}")]
        ) from None


def _check(args: argparse.Namespace) -> int:
    """Exit 0 when every goal is met and nothing forbidden changed, else 1."""
    from mailsim import activity
    from mailsim.examples import resolve

    scenario = None if args.scenario is None else resolve(args.scenario)
    grade = activity.grade(args.activity, scenario, seed=args.seed)
    print("\n".join(grade.lines()))
    return 0 if grade.passed else 1


def _validate(args: argparse.Namespace) -> int:
    import mailsim
    from mailsim.report import terminal_width, wrap

    problems: list[Problem] = []
    for path in args.scenario:
        try:
            scenario = mailsim.load(path, args.overrides)
        except InputError as exc:
            problems.extend(exc.problems)
        else:
            said = f"{'<stdin>' if path == '-' else path}: ok ({_declared(scenario)})"
            print("\n".join(wrap(said, terminal_width(), 4)))
    if problems:
        raise InputError(problems)
    return 0


def _declared(scenario: Any) -> str:
    """What a scenario declares, and what its traffic will make: "9 nodes, 10 links, 500
    users (in 2 entries), 0 messages and traffic of about 17,000 more"."""
    from mailsim.budget import estimate, rounded

    users = len(scenario.accounts)
    said = [
        plural(len(scenario.nodes), "node"),
        plural(len(scenario.links), "link"),
        plural(users, "user")
        + (f" (in {plural(len(scenario.users), 'entry')})" if users != len(scenario.users) else ""),
        plural(len(scenario.messages), "message"),
    ]
    text = ", ".join(said)
    if scenario.traffic:
        made = estimate(scenario, "outcomes").messages - len(scenario.messages)
        text += f" and traffic of about {rounded(made)} more"
    return text


def plural(count: int, word: str) -> str:
    """``1 message``, ``2 messages``, ``3 entries``."""
    if count == 1:
        return f"1 {word}"
    return f"{count:,} " + (word[:-1] + "ies" if word.endswith("y") else word + "s")


def _headers(args: argparse.Namespace, stdin: TextIO) -> int:
    """Everything runs locally: the headers never leave the machine. The outputs are
    checked before the message is read, and nothing is printed for a route that
    cannot be drawn or replayed."""
    from mailsim import files, trace

    name = "<stdin>" if args.file == "-" else args.file
    plot, scenario = _headers_outputs(args)
    # At most 64 MiB, from a regular file or standard input: never a device or a pipe.
    data = files.read_bytes(args.file, stdin=stdin.buffer)
    route = trace.parse(data.decode("utf-8", errors="replace"))
    if not route.hops:
        raise InputError(
            [Problem(name, "Received", "no Received: headers found; give the whole message"
                     " or all of its headers (in most mail programs: 'show original')")]
        )  # fmt: skip
    problems: list[Problem] = []
    if plot is not None and (why := trace.too_long(route, "draw")):
        problems.append(Problem(name, "Received", f"{why}; the table and --json show them all"))
    if scenario is not None:
        from mailsim.replay import refusal

        if why := refusal(route):
            problems.append(Problem(name, "Received", why))
    if problems:
        raise InputError(problems)
    if args.json:
        print(json.dumps(route.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(trace.table(route))
    if plot is not None:
        import io
        import warnings

        import matplotlib.pyplot as plt

        from mailsim.plot.received import received

        ax = received(route)
        figure = io.BytesIO()  # written in one go, so that a full disk is one clear line
        try:
            with warnings.catch_warnings():
                # A host name in a script the font lacks is drawn as boxes, not warned about.
                warnings.filterwarnings("ignore", message="Glyph .* missing from")
                ax.figure.savefig(figure, format=plot.suffix.lower()[1:], dpi=100)
        finally:
            plt.close(ax.figure)
        files.write_bytes(plot, figure.getvalue())
        print(f"wrote {args.plot}", file=sys.stderr)
    if scenario is not None:
        from mailsim.replay import scenario_of

        files.write_text(scenario, scenario_of(route, name))
        print(f"wrote {args.scenario}", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    """The lesson is read and its page's folder checked before anything runs."""
    try:
        import nbconvert  # noqa: F401
        import nbformat
    except ImportError:
        raise InputError([Problem(args.lesson, "", "exporting a lesson needs the notebook"
                                  " extra: pip install 'mailsim[notebooks]'")]) from None  # fmt: skip

    from mailsim import files
    from mailsim.export import export

    lesson = Path(args.lesson)
    if not lesson.is_file():
        raise InputError([Problem(args.lesson, "", "no such lesson (a .ipynb file)")])
    try:
        nbformat.read(lesson, as_version=4)
    except Exception as exc:  # nbformat's reader raises many kinds: all mean "not a notebook"
        why = " ".join(str(exc).split())[:200]
        raise InputError([Problem(args.lesson, "", f"not a notebook: {why}")]) from None
    out = files.out_file(args.out or f"{lesson.stem}.html", "--out")
    if _same_file(args.lesson, out):
        raise InputError([Problem(str(out), "--out", "is the lesson itself; give another name")])
    written = export(lesson, out, run=args.run)
    print(f"wrote {written}: opens without a network; its widgets as they were saved")
    return 0


def _headers_outputs(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """The --plot and --scenario files, checked before the message is read: a format
    we draw, a folder that exists and can be written in, not the message itself. Every
    problem is said at once."""
    from mailsim import files

    problems: list[Problem] = []

    def check(path: str | None, option: str) -> Path | None:
        if path is None:
            return None
        if option == "--plot" and Path(path).suffix.lower() not in (".png", ".svg", ".pdf"):
            problems.append(Problem(path, option, "write .png, .svg or .pdf"))
            return None
        try:
            target = files.out_file(path, option)
        except InputError as exc:
            problems.extend(exc.problems)
            return None
        if args.file != files.STDIN and _same_file(args.file, path):
            problems.append(
                Problem(path, option, "is the message being read; give another file name")
            )
        return target

    plot, scenario = check(args.plot, "--plot"), check(args.scenario, "--scenario")
    if problems:
        raise InputError(problems)
    return plot, scenario


def _same_file(a: str, b: str) -> bool:
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _examples(args: argparse.Namespace) -> int:
    from mailsim import examples
    from mailsim.files import WriteError
    from mailsim.report import terminal_width, wrap

    if args.action is None:
        if args.folder is not None:
            raise InputError([Problem(args.folder, "examples", "did you mean: examples copy DIR?")])
        for kind, title in (("scenarios", "Scenarios"), ("notebooks", "Lessons")):
            shown = examples.listing(kind)
            where = examples.folder(kind)
            heading = f"{title} ({where}):" if where else f"{title}: none shipped"
            if len(heading) > terminal_width():  # a path is not broken: a line of its own
                heading = f"{title}:\n({where})"
            print(heading)
            width = max((len(e.name) for e in shown), default=0)
            for example in shown:
                for line in wrap(
                    f"  {example.name:<{width}}  {example.about}", terminal_width(), width + 4
                ):
                    print(line)
            print()
        print("Run one by its name: mailsim run classroom")
        print("Copy them all to change them: mailsim examples copy DIR")
        return 0
    if args.folder is None:
        raise InputError(
            [Problem("examples copy", "DIR", "say where to copy them: mailsim examples copy DIR")]
        )
    destination = Path(args.folder)
    if destination.exists() and not destination.is_dir():
        raise InputError([Problem(args.folder, "examples copy", "exists and is not a folder")])
    try:
        written = examples.copy(destination, solutions=args.solutions)
    except OSError as exc:
        raise WriteError(destination, exc.strerror or str(exc)) from None
    lessons = sum(1 for path in written if path.suffix == ".ipynb")
    tasks = sum(1 for path in written if "activities" in path.parts)
    which = "the activities" if args.solutions else "the activities without their solutions"
    print(
        f"copied {len(written) - lessons - tasks} scenarios, {lessons} lessons and {which}"
        f" to {destination}:"
        f" try  mailsim run {destination / 'scenarios' / 'classroom.yaml'}"
    )
    return 0


def _schema() -> int:
    from mailsim.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
