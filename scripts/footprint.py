#!/usr/bin/env python3
"""The Python half of scripts/footprint: loopback targets for the agent, and the measurement.

    footprint.py serve PORTS_JSON
        Serves what the agent's 20 targets point at, on loopback only, until SIGTERM: five TCP
        listeners, three HTTP servers (/ answers 200 with a portal page, /health 200 "ok",
        /error 500) and a UDP DNS responder answering every A question with 127.0.0.1. Also
        picks a TCP and a UDP port where nothing listens, for targets that must fail. Writes the
        ports to PORTS_JSON once everything listens.

    footprint.py activity --doc FILE --probe-results FILE --incidents FILE --agent-log FILE
        Appends to the report what the agent did: its probe results and incidents as the
        collector's API lists them, and how many warnings and errors it logged.

    footprint.py measure [options] --program NAME PID VERSION ...
        Waits the warm-up, then samples every program's process tree every few seconds: resident
        memory (VmRSS of each process in /proc/PID/status, summed over the tree) and CPU time
        (utime+stime+cutime+cstime of /proc/PID/stat, in clock ticks, summed over the tree).
        The first --program is the subject, the others its peers. Prints the side-by-side table,
        writes the Markdown report and exits 0 when the subject is within budget, 3 when not.

Only the standard library is used.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLK_TCK = os.sysconf("SC_CLK_TCK")  # what `getconf CLK_TCK` prints
BUDGET_CPU_PERCENT = 0.2
REFERENCE_PEER = "collectd"


# ---------------------------------------------------------------------------------------------
# Loopback targets


def free_port(kind):
    """A port on 127.0.0.1 that nothing listens on right after the call (for targets that fail)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TcpListener(socketserver.ThreadingTCPServer):
    """Accepts connections and closes them, like a service whose port is open."""

    daemon_threads = True
    allow_reuse_address = True


class CloseAtOnce(socketserver.BaseRequestHandler):
    def handle(self):
        pass


PORTAL = "<html><body><h1>Cổng thông tin điện tử tỉnh Đắk Nông</h1></body></html>".encode()


class PortalHandler(BaseHTTPRequestHandler):
    """A portal, its health endpoint and a broken page."""

    def do_GET(self):
        if self.path == "/":
            status, body = 200, PORTAL
        elif self.path == "/health":
            status, body = 200, b"ok"
        elif self.path == "/error":
            status, body = 500, b"internal error"
        else:
            status, body = 404, b"not found"
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


class DnsHandler(socketserver.BaseRequestHandler):
    """Answers every question with one A record, 127.0.0.1, TTL 60 (and NOTIMP to non-queries)."""

    def handle(self):
        data, sock = self.request
        if len(data) < 12:
            return
        ident, flags, n_questions = struct.unpack("!HHH", data[:6])
        if flags & 0x8000 or n_questions != 1:
            return
        end = 12
        while end < len(data) and data[end] != 0:
            end += 1 + data[end]
        question = data[12 : end + 5]  # name, its terminating zero, type and class
        qtype = struct.unpack("!H", data[end + 1 : end + 3])[0] if end + 3 <= len(data) else 0
        rd = flags & 0x0100
        if qtype == 1:  # A
            header = struct.pack("!HHHHHH", ident, 0x8080 | rd, 1, 1, 0, 0)
            answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
        else:  # no data for other types
            header = struct.pack("!HHHHHH", ident, 0x8080 | rd, 1, 0, 0, 0)
            answer = b""
        sock.sendto(header + question + answer, self.client_address)


def serve(args):
    servers = {"tcp": [], "http": []}
    started = []
    for _ in range(5):
        server = TcpListener(("127.0.0.1", 0), CloseAtOnce)
        servers["tcp"].append(server.server_address[1])
        started.append(server)
    for _ in range(3):
        server = ThreadingHTTPServer(("127.0.0.1", 0), PortalHandler)
        server.daemon_threads = True
        servers["http"].append(server.server_address[1])
        started.append(server)
    dns = socketserver.ThreadingUDPServer(("127.0.0.1", 0), DnsHandler)
    servers["dns"] = dns.server_address[1]
    started.append(dns)
    servers["closed_tcp"] = [free_port(socket.SOCK_STREAM) for _ in range(2)]
    servers["closed_udp"] = free_port(socket.SOCK_DGRAM)
    for server in started:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    temporary = args.ports_json + ".tmp"
    with open(temporary, "w") as file:
        json.dump(servers, file)
    os.rename(temporary, args.ports_json)
    while True:
        time.sleep(3600)


# ---------------------------------------------------------------------------------------------
# Measurement


def process_table():
    """Maps every live pid to its parent pid."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
    return parents


def tree(root, parents):
    """`root` and all its descendants."""
    children = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def read_process(pid):
    """(VmRSS in KiB, CPU ticks of the process and its reaped children), or None when gone.

    Summing utime+stime of live processes and cutime+cstime (children already waited for) counts
    every CPU tick of a tree once, even when children come and go between samples.
    """
    try:
        with open(f"/proc/{pid}/stat") as file:
            stat = file.read()
        with open(f"/proc/{pid}/status") as file:
            status = file.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    # After "pid (comm) ", field 3 (state) is index 0: utime, stime, cutime, cstime are 14..17.
    ticks = sum(int(value) for value in fields[11:15])
    rss_kib = 0  # kernel threads and zombies have no VmRSS line
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return rss_kib, ticks


def sample(programs):
    """One reading of every program: {name: (rss KiB, ticks, n_processes)}."""
    parents = process_table()
    reading = {}
    for program in programs:
        rss_kib = ticks = n_processes = 0
        for pid in tree(program["pid"], parents):
            values = read_process(pid)
            if values is None:
                if pid == program["pid"]:
                    raise SystemExit(f"error: {program['name']} (pid {pid}) exited during the measurement")
                continue
            rss_kib += values[0]
            ticks += values[1]
            n_processes += 1
        reading[program["name"]] = (rss_kib, ticks, n_processes)
    return reading


class Scraper(threading.Thread):
    """Fetches a URL at a fixed interval, as Prometheus would scrape node_exporter."""

    def __init__(self, url, every):
        super().__init__(daemon=True)
        self.url, self.every, self.n_ok, self.n_failed = url, every, 0, 0

    def run(self):
        next_at = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    response.read()
                self.n_ok += 1
            except OSError:
                self.n_failed += 1
            next_at += self.every
            time.sleep(max(0.0, next_at - time.monotonic()))


def measure(args):
    programs = [{"name": name, "pid": int(pid), "version": version} for name, pid, version in args.program]
    subject, peers = programs[0], programs[1:]
    scraper = None
    if args.scrape:
        scraper = Scraper(args.scrape, args.scrape_every)
        scraper.start()

    print(f"==> warming up for {args.warmup} s", flush=True)
    time.sleep(args.warmup)
    sample(programs)  # fails early when a program died during the warm-up
    print(f"==> sampling every {args.every} s for {args.duration} s", flush=True)
    readings = []
    started = time.monotonic()
    while True:
        readings.append((time.monotonic(), sample(programs)))
        elapsed = time.monotonic() - started
        if elapsed >= args.duration - 0.001:
            break
        if len(readings) % 6 == 0:
            print(f"    {elapsed:4.0f} s of {args.duration}", flush=True)
        time.sleep(max(0.0, started + len(readings) * args.every - time.monotonic()))

    (t_first, first), (t_last, last) = readings[0], readings[-1]
    window = t_last - t_first
    rows = []
    for program in programs:
        name = program["name"]
        rss = [reading[name][0] / 1024 for _, reading in readings]
        cpu_seconds = (last[name][1] - first[name][1]) / CLK_TCK
        rows.append(
            {
                "name": name,
                "version": program["version"],
                "rss_mean": sum(rss) / len(rss),
                "rss_max": max(rss),
                "cpu_percent": 100 * cpu_seconds / window if window > 0 else float("nan"),
                "cpu_seconds": cpu_seconds,
                "processes": max(reading[name][2] for _, reading in readings),
            }
        )

    by_name = {row["name"]: row for row in rows}
    agent = by_name[subject["name"]]
    lightest_peer = min((by_name[peer["name"]] for peer in peers), key=lambda row: row["rss_mean"])
    rss_ok = all(agent["rss_mean"] < by_name[peer["name"]]["rss_mean"] for peer in peers)
    cpu_ok = agent["cpu_percent"] < BUDGET_CPU_PERCENT
    verdict = "PASS" if rss_ok and cpu_ok else "FAIL"
    n_cpu_lighter = sum(agent["cpu_percent"] < by_name[peer["name"]]["cpu_percent"] for peer in peers)

    table = ["| Program | Version | Processes | RSS mean (MiB) | RSS max (MiB) | CPU (% of one core) | Budget |"]
    table.append("|---|---|--:|--:|--:|--:|---|")
    for row in rows:
        budget = verdict if row is agent else ""
        table.append(
            f"| {row['name']} | {row['version']} | {row['processes']} | {row['rss_mean']:.1f} | {row['rss_max']:.1f} "
            f"| {row['cpu_percent']:.3f} | {budget} |"
        )
    reference = by_name.get(REFERENCE_PEER, lightest_peer)
    summary = [
        f"Budget: {verdict}.",
        f"Memory {'PASS' if rss_ok else 'FAIL'}: {subject['name']} {agent['rss_mean']:.1f} MiB mean RSS, "
        f"against {lightest_peer['rss_mean']:.1f} MiB for the lightest peer ({lightest_peer['name']}) "
        f"and {reference['rss_mean']:.1f} MiB for {reference['name']}; it must be below every peer.",
        f"CPU {'PASS' if cpu_ok else 'FAIL'}: {agent['cpu_percent']:.3f} % of one core "
        f"({agent['cpu_seconds']:.2f} s of CPU in {window:.0f} s), against a budget of {BUDGET_CPU_PERCENT} %; "
        f"lighter on CPU than {n_cpu_lighter} of {len(peers)} peers.",
    ]
    if scraper is not None:
        summary.append(
            f"{args.scrape} was scraped every {args.scrape_every:.0f} s "
            f"({scraper.n_ok} scrapes, {scraper.n_failed} failed)."
        )

    print()
    print("\n".join(table))
    print()
    print("\n".join(summary))

    if args.doc:
        write_doc(args, table, summary, len(readings), window)
        print(f"\nwrote {args.doc}")
    return 0 if verdict == "PASS" else 3


def write_doc(args, table, summary, n_samples, window):
    def read(path):
        with open(path) as file:
            return file.read().rstrip("\n")

    with open("/proc/cpuinfo") as file:
        models = [line.split(":", 1)[1].strip() for line in file if line.startswith("model name")]
    machine = (
        f"{os.cpu_count()} CPUs (`nproc`: {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()})"
        f"{', ' + models[0] if models else ''}; kernel {platform.release()} ({platform.machine()}); "
        f"{'Debian ' + read('/etc/debian_version') if os.path.exists('/etc/debian_version') else platform.platform()}; "
        f"`getconf CLK_TCK` = {CLK_TCK}."
    )
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def shorten(text):
        """Paths relative to the repository, and $WORK for the run's temporary folder."""
        if args.work:
            text = text.replace(args.work, "$WORK")
        if args.root:
            text = text.replace(args.root + "/", "")
        return text

    commands, config = shorten(read(args.commands)), shorten(read(args.config))
    n_targets = sum(line.strip() == "[[target]]" for line in config.splitlines())
    lines = [
        "# Footprint of cntt-agent",
        "",
        "Resident memory and CPU of `cntt-agent` side by side with the agents it must be lighter than (issue 3, item 9), measured by `scripts/footprint` in one run on one machine.",
        "Every figure below comes from that script; run it again to refresh this file.",
        "",
        f"- Date: {now}.",
        f"- Machine: {machine}",
        f"- Window: {n_samples} samples every {args.every} s over {window:.0f} s, after a warm-up of {args.warmup} s.",
        f"- Invocation: `{args.invocation}`.",
        "",
        "## Results",
        "",
        *table,
        "",
        *summary,
        "",
        "## Method",
        "",
        "RSS is `VmRSS` from `/proc/PID/status`, summed over each program's process tree; the mean and maximum are over the samples.",
        "CPU is `utime + stime + cutime + cstime` from `/proc/PID/stat`, summed over the tree, between the first and last sample, as a percentage of one core.",
        "The peers run from Debian's packages with their default configuration files, as their systemd units start them (same user, same flags), except that they run in the foreground under the script.",
        "Nothing polls `zabbix_agent2` (no Zabbix server exists; it retries its active checks against 127.0.0.1:10051 as configured by default).",
        "`collectd` reads its default plugins every 10 s and writes RRD files.",
        f"`cntt-agent` runs the release build with the configuration below: {n_targets} targets on loopback (listeners, HTTP servers and a DNS responder served by `scripts/footprint.py serve`), some of them failing on purpose so incidents open; it uploads to a local `cntt-collector` (SQLite, private CA), which is not measured.",
        "",
        "## Commands",
        "",
        "`$WORK` is the run's temporary folder; paths are relative to the repository.",
        "",
        "```sh",
        commands,
        "```",
        "",
        "## Agent configuration",
        "",
        "```toml",
        config,
        "```",
        "",
    ]
    # The "Database growth" section comes from scripts/dbgrowth; keep it, last.
    kept = split_db_growth(args.doc)[1]
    with open(args.doc, "w") as file:
        file.write("\n".join(lines) + kept)


def activity(args):
    """Appends what the agent did during the run to the report, from the collector's API."""

    def load(path, key):
        try:
            with open(path) as file:
                return json.load(file)[key]
        except (OSError, ValueError, KeyError):
            return None  # an older collector without that endpoint

    results = load(args.probe_results, "probe_results")
    incidents = load(args.incidents, "incidents")
    with open(args.agent_log, errors="replace") as file:
        levels = [line.split()[1] if len(line.split()) > 1 else "" for line in (strip_ansi(raw) for raw in file)]
    n_warnings, n_errors = levels.count("WARN"), levels.count("ERROR")

    lines = ["", "## Agent activity", ""]
    lines.append(
        f"The agent delivered events up to sequence number {args.last_seq or '?'} to the collector "
        f"and logged {n_warnings} warnings (incident notices among them) and {n_errors} errors."
    )
    if incidents is not None:
        titles = "; ".join(f"{incident['title']} ({incident['state']})" for incident in incidents)
        noun = "incident" if len(incidents) == 1 else "incidents"
        lines.append(f"The collector recorded {len(incidents)} {noun}{': ' + titles if titles else ''}.")
    if results is not None:
        by_target = {}
        for result in results:
            by_target.setdefault(result["target"], []).append(result)
        lines.append(f"The collector received {len(results)} probe results, warm-up included:")
        lines += ["", "| Target | Check | Address | Checks | Good | Last error |", "|---|---|---|--:|--:|---|"]
        for target, checks in sorted(by_target.items()):
            errors = [check["error"] for check in checks if check.get("error")]
            lines.append(
                f"| {target} | {checks[0]['check']} | {checks[0]['address']} | {len(checks)} "
                f"| {sum(bool(check['ok']) for check in checks)} | {errors[0] if errors else ''} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    head, db_growth = split_db_growth(args.doc)
    with open(args.doc, "w") as file:
        file.write(head + text + db_growth)


DB_GROWTH = "\n## Database growth\n"


def split_db_growth(path):
    """The report before the "Database growth" section (scripts/dbgrowth's figures) and the section."""
    try:
        with open(path) as file:
            text = file.read()
    except OSError:
        return "", ""
    at = text.find(DB_GROWTH)
    return (text, "") if at < 0 else (text[:at], text[at:])


def strip_ansi(text):
    """`text` without terminal colour codes (the agent colours its log)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\x1b":
            end = text.find("m", i)
            i = end + 1 if end >= 0 else len(text)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve")
    serve_parser.add_argument("ports_json")
    measure_parser = commands.add_parser("measure")
    measure_parser.add_argument("--duration", type=int, default=600)
    measure_parser.add_argument("--warmup", type=int, default=30)
    measure_parser.add_argument("--every", type=int, default=10)
    measure_parser.add_argument("--scrape", help="URL to fetch periodically during the run")
    measure_parser.add_argument("--scrape-every", type=float, default=30)
    measure_parser.add_argument("--doc", help="Markdown file to (over)write")
    measure_parser.add_argument("--commands", help="file with the commands run, for the report")
    measure_parser.add_argument("--config", help="the agent's configuration, for the report")
    measure_parser.add_argument("--invocation", default="scripts/footprint")
    measure_parser.add_argument("--root", help="the repository, shown as relative paths in the report")
    measure_parser.add_argument("--work", help="the run's temporary folder, shown as $WORK in the report")
    measure_parser.add_argument("--program", nargs=3, action="append", required=True, metavar=("NAME", "PID", "VERSION"))
    activity_parser = commands.add_parser("activity")
    activity_parser.add_argument("--doc", required=True, help="Markdown file to append to")
    activity_parser.add_argument("--probe-results", required=True, help="GET /api/v1/probe-results, saved")
    activity_parser.add_argument("--incidents", required=True, help="GET /api/v1/incidents, saved")
    activity_parser.add_argument("--agent-log", required=True)
    activity_parser.add_argument("--last-seq")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
    elif args.command == "activity":
        activity(args)
    else:
        sys.exit(measure(args))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C: scripts/footprint cleans up and says so
