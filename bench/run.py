"""fedfina benchmark: bulk speed against the I/O limit, a rate-limited provider,
call end to inbox through `fedfina serve`, workers on PostgreSQL, CPU, memory, start-up.

    python bench/run.py                      # every scenario (about 20 minutes)
    python bench/run.py --quick              # 80 conversations, 15 s of webhooks, for trying a change
    python bench/run.py --only limited,serve # some scenarios

Starts loopback servers in this process: a fake ElevenLabs (100 ms per
conversation JSON, 200 ms per 1 MB audio), a fake OpenAI (1,000 ms per
completion; 8 completions a second in the rate-limited scenario), moto's S3
server, aiosmtpd and (for the worker rows) PostgreSQL; then runs the installed
`fedfina` as a subprocess against them and prints every figure beside its
target, all from one run. Nothing here asserts: machines are noisy, the table
is the result.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.elevenlabs import FakeElevenLabs  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402
from tests.fakes.smtp import FakeSMTP  # noqa: E402

SAMPLE = ROOT / "tests" / "samples" / "conversation_hindi_loan.json"
KEYS = {"ELEVENLABS_API_KEY": "xi-bench-key-0001", "OPENAI_API_KEY": "sk-bench-key-0001"}
MINIO = {"MINIO_ACCESS_KEY": "AKIABENCH000000001", "MINIO_SECRET_KEY": "bench-secret-0001"}
IO_PER_CONVERSATION = 0.1 + 0.2 + 1.0  # conversation JSON + audio + completion, seconds
CORES = os.cpu_count() or 1
# fedfina downloads the audio while the model writes the summary: its critical path.
OVERLAPPED_IO = 0.1 + max(0.2, 1.0)


def fedfina_exe() -> str:
    exe = Path(sys.executable).parent / "fedfina"
    return str(exe) if exe.exists() else "fedfina"


def compile_fedfina() -> None:
    """Compile the installed fedfina's modules to bytecode first, as `pip install .` does. From an
    editable install (the development one) under PYTHONDONTWRITEBYTECODE=1, as the machines here
    are set, every fedfina process compiled each module it imported again at every start: 50 ms
    of `fedfina status`'s 0.30 s, in every run and worker, which an installed fedfina never pays."""
    subprocess.run([sys.executable, "-c", "import compileall, pathlib, fedfina_cli; "
                    "compileall.compile_dir(pathlib.Path(fedfina_cli.__file__).parent, quiet=1)"], check=True)


class Services:
    """Every loopback server the scenario needs, started once."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.elevenlabs = FakeElevenLabs(KEYS["ELEVENLABS_API_KEY"]).start()
        self.elevenlabs.delay, self.elevenlabs.audio_delay = 0.1, 0.2
        self.openai = FakeOpenAI(KEYS["OPENAI_API_KEY"]).start()
        self.openai.delay = 1.0
        self.smtp = FakeSMTP().start()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.s3 = f"{host}:{port}"
        self._template = json.loads(SAMPLE.read_text(encoding="utf-8"))

    def conversation(self, conversation_id: str) -> dict:
        """The Hindi sample as this conversation."""
        payload = json.loads(json.dumps(self._template))
        payload["conversation_id"] = conversation_id
        return payload

    def add_conversations(self, prefix: str, count: int, audio_bytes: int) -> list[str]:
        ids = []
        for n in range(count):
            payload = self.conversation(f"conv_{prefix}{n:08d}")
            self.elevenlabs.add(payload)
            self.elevenlabs.audio_sizes[payload["conversation_id"]] = audio_bytes
            ids.append(payload["conversation_id"])
        return ids

    def env(self, workdir: Path, bucket: str) -> dict:
        return {
            **os.environ, **KEYS, **MINIO,
            "ELEVENLABS_BASE_URL": self.elevenlabs.url,
            "OPENAI_BASE_URL": self.openai.url + "/v1", "OPENAI_MODEL": "gpt-bench",
            "MINIO_ENDPOINT": self.s3, "MINIO_SECURE": "false", "MINIO_BUCKET_NAME": bucket,
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp.port), "SMTP_SECURITY": "none",
            "SMTP_FROM_EMAIL": "bench@fedfina.example",
            "FEDFINA_DB": str(workdir / "fedfina.db"), "FEDFINA_DATA_DIR": str(workdir / "data"),
        }

    def stop(self) -> None:
        for server in (self.elevenlabs, self.openai, self.smtp, self.moto):
            server.stop()


def run_fedfina(args: list[str], env: dict) -> dict:
    """Run fedfina; wall seconds, CPU seconds (user+sys, with its children) and peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen([fedfina_exe(), *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    # communicate() reaped the child; its rusage is in RUSAGE_CHILDREN, read as a delta.
    return {"wall": wall, "returncode": process.returncode, "stdout": stdout, "stderr": stderr}


def measured(args: list[str], env: dict) -> dict:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run_fedfina(args, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def peak_rss_mb(args: list[str], env: dict) -> tuple[float, dict]:
    """Peak RSS of the fedfina process (and its children), in MB.

    Measured by a tiny launcher process: ru_maxrss of a child forked straight
    from this one can include this process's own memory (moto holds every
    stored object), copied at fork time before the exec.
    """
    launcher = ("import resource, subprocess, sys; "
                "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", launcher, fedfina_exe(), *args], env=env,
                          capture_output=True, text=True)
    maxrss_kb, code = done.stdout.split()
    return int(maxrss_kb) / 1024, {"wall": time.perf_counter() - started, "status": int(code),
                                   "stderr": done.stderr}


def batch(services: Services, name: str, count: int, concurrency: int, workdir: Path) -> dict:
    ids = services.add_conversations(name, count, audio_bytes=1_000_000)
    csv_path = workdir / f"{name}.csv"
    csv_path.write_text("conversation_id\n" + "\n".join(ids) + "\n")
    sent_before, asked_before = len(services.smtp.messages), len(services.elevenlabs.requests)
    servers_cpu = time.process_time()  # this process: the loopback servers' threads
    started = time.monotonic()  # the fakes' clock (Request.at)
    result = measured(["run", "--csv", str(csv_path), "--concurrency", str(concurrency), "--quiet"],
                      services.env(workdir / name, f"bench-{name}"))
    result["servers_cpu"] = time.process_time() - servers_cpu
    # Start-up: from the process's start to its first request (imports, the ledger, the clients).
    result["first_request"] = min((r.at for r in services.elevenlabs.requests[asked_before:]),
                                  default=started) - started
    result["emails"] = len(services.smtp.messages) - sent_before
    result["count"] = count
    if result["returncode"] != 0:
        print(result["stderr"][-2000:], file=sys.stderr)
    return result


def postgres_workers(services: Services, workers: int, count: int, concurrency: int, workdir: Path,
                     postgres) -> dict:
    """``count`` conversations queued in a fresh PostgreSQL ledger, processed by ``workers``
    `fedfina worker` processes of ``concurrency`` each: seconds from their start to the last email."""
    from fedfina_cli.core.config import load_settings
    from fedfina_cli.ledger.ledger import open_ledger

    name = f"pg{workers}w"
    ids = services.add_conversations(name, count, audio_bytes=1_000_000)
    env = {**services.env(workdir / name, f"bench-{name}"),
           "DATABASE_URL": postgres.url(postgres.new_database())}
    ledger = open_ledger(load_settings(environ=env))
    for conversation_id in ids:
        ledger.queue.enqueue(conversation_id, "acc123", "officer@fedfina.example", "api")
    ledger.close()
    import resource

    sent_before = len(services.smtp.messages)
    children, servers, database = resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time(), \
        postgres_cpu(postgres)
    started = time.perf_counter()
    processes = [subprocess.Popen([fedfina_exe(), "worker", "--concurrency", str(concurrency)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    deadline = started + 600
    while len(services.smtp.messages) - sent_before < count and time.perf_counter() < deadline:
        time.sleep(0.05)
    wall = time.perf_counter() - started
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "emails": len(services.smtp.messages) - sent_before,
            "workers_cpu": after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime,
            "servers_cpu": time.process_time() - servers, "postgres_cpu": postgres_cpu(postgres) - database}


def tree_cpu(pid: int) -> float:
    """CPU seconds of a live process and its live descendants (a worker and its report process)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / ticks)
    total, wanted = 0.0, {pid}
    while wanted:
        current = wanted.pop()
        if current in stats:
            total += stats[current][1]
            wanted |= {child for child, (parent, _) in stats.items() if parent == current}
    return total


def io_bound_run(services: Services, workers: int, count: int, workdir: Path, postgres) -> dict:
    """``workers`` `fedfina worker` processes at --concurrency 8 on one PostgreSQL ledger, started and
    registered before the clock starts (on two cores, eight processes importing take seconds of CPU
    that are not throughput); then a backlog of ``count`` conversations: seconds until the ledger has
    them all completed, and the CPU of the workers, of this process's fakes and of PostgreSQL over
    that time. Storage and mail are the local folder and the outbox: what is waited on is the
    providers (ElevenLabs, the model), not moto and aiosmtpd, whose threads share this process."""
    from fedfina_cli.core.config import load_settings
    from fedfina_cli.ledger.ledger import open_ledger

    name = f"io{workers}w"
    ids = services.add_conversations(name, count, audio_bytes=20_000)
    env = {k: v for k, v in services.env(workdir / name, f"bench-{name}").items()
           if not k.startswith(("MINIO_", "SMTP_"))}
    env["DATABASE_URL"] = postgres.url(postgres.new_database())
    ledger = open_ledger(load_settings(environ=env))
    processes = [subprocess.Popen([fedfina_exe(), "worker", "--concurrency", "8"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]

    def completed() -> int:
        return int(ledger.sql.rows("select count(*) as n from conversation_processing "
                                   "where status = 'completed'")[0]["n"])

    try:
        deadline = time.perf_counter() + 120
        while ledger.sql.rows("select count(*) as n from workers")[0]["n"] < workers:
            assert time.perf_counter() < deadline, "the workers did not start"
            time.sleep(0.1)
        # ...and settled: their report processes (fpdf2, fonts: 0.7 s of CPU each) start after the
        # worker registers; idle, the workers use a few ms of CPU a second.
        last = sum(tree_cpu(p.pid) for p in processes)
        while time.perf_counter() < deadline:
            time.sleep(0.5)
            now = sum(tree_cpu(p.pid) for p in processes)
            if now - last < 0.02 * workers:
                break
            last = now
        # The backlog is queued while the workers are paused, so every run starts from a full queue:
        # queued one by one with them running (this process's enqueue sharing its GIL with the fakes
        # that answer them), eight workers' first 64 calls started over 1.7 s, paced by this loop.
        for process in processes:
            process.send_signal(signal.SIGSTOP)
        for conversation_id in ids:
            ledger.queue.enqueue(conversation_id, "acc123", "officer@fedfina.example", "api")
        cpu_before = sum(tree_cpu(p.pid) for p in processes)
        servers, database = time.process_time(), postgres_cpu(postgres)
        started = time.perf_counter()
        for process in processes:
            process.send_signal(signal.SIGCONT)
        deadline = started + 900
        while completed() < count and time.perf_counter() < deadline:
            time.sleep(0.05)
        wall = time.perf_counter() - started
        cpu = sum(tree_cpu(p.pid) for p in processes) - cpu_before
        servers, database = time.process_time() - servers, postgres_cpu(postgres) - database
        done = completed()
    finally:
        ledger.close()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait()
    return {"wall": wall, "done": done, "count": count, "cpu": cpu, "servers_cpu": servers, "postgres_cpu": database}


def io_bound_rows(services: Services, rounds: int, workdir: Path) -> list[tuple[str, str, str]]:
    """Scale-out where waiting on providers is the limit, not CPU: the model takes 4 s a summary.

    Each worker count drains a backlog of ``rounds`` rounds per worker (8 calls a round each),
    so every run has the same start and finish. With one backlog of 256 for all, eight workers
    had four rounds, and the last round's reports and emails (about 2 s of CPU on two cores, with
    no summary left to wait on alongside) were a tenth of their time but a hundredth of one's."""
    from tests.postgres import start_postgres, stop_postgres

    saved = services.openai.delay, services.elevenlabs.delay, services.elevenlabs.audio_delay
    services.openai.delay, services.elevenlabs.delay, services.elevenlabs.audio_delay = 4.0, 0.05, 0.0
    postgres = start_postgres()
    try:
        runs = {n: io_bound_run(services, n, 8 * rounds * n, workdir, postgres) for n in (1, 2, 4, 8)}
    finally:
        stop_postgres(postgres)
        services.openai.delay, services.elevenlabs.delay, services.elevenlabs.audio_delay = saved
    one = runs[1]["done"] / runs[1]["wall"]
    rows = []
    for n, run in runs.items():
        rate = run["done"] / run["wall"]
        target = {1: "(the base)", 2: ">= 1.9x", 4: ">= 3.7x", 8: ">= 7x"}[n]
        rows += [(f"model 4 s/summary: {n} worker{'s' if n > 1 else ''} x concurrency 8, {run['count']} calls",
                  f"{run['wall']:.1f} s, {rate:.2f}/s, {rate / one:.2f}x", target),
                 ("  CPU per call: workers; fakes; PostgreSQL",
                  f"{1000 * run['cpu'] / run['count']:.0f}; {1000 * run['servers_cpu'] / run['count']:.0f}; "
                  f"{1000 * run['postgres_cpu'] / run['count']:.0f} ms ({CORES * run['wall']:.0f} core-s there)",
                  "(context)")]
    return rows


def postgres_cpu(postgres) -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster, its reaped backends, and the
    live ones (a pool's connections stay open: counting only reaped ones read 0 ms a call)."""
    return tree_cpu(int((postgres.data / "postmaster.pid").read_text().split()[0]))


def rate_limited(services: Services, count: int, workdir: Path, limit: float = 8.0) -> list[tuple[str, str, str]]:
    """``count`` conversations at --concurrency 64 against an OpenAI that allows ``limit`` completions a second."""
    services.openai.limit_rate(limit)
    accepted_before, refused_before = len(services.openai.accepted), services.openai.refused
    try:
        result = batch(services, "limited", count, 64, workdir)
    finally:
        services.openai.limit_rate(None)
    accepted = services.openai.accepted[accepted_before:]
    refused = services.openai.refused - refused_before
    # The rate the provider granted, from its own clock: completions over the time they were sent in.
    achieved = (len(accepted) - 1) / (accepted[-1] - accepted[0]) if len(accepted) > 1 else 0.0
    failed = count - result["emails"]
    return [
        (f"rate limit {limit:g}/s: {count} at concurrency 64", f"{result['wall']:.1f} s "
         f"({result['emails']} emails, {failed} failed)", "0 failed"),
        ("  completions per second / limit", f"{achieved:.2f}/s, {achieved / limit:.0%}", ">= 90 %"),
        ("  429s / requests", f"{refused} of {refused + len(accepted)}, "
         f"{refused / max(1, refused + len(accepted)):.1%}", "<= 5 %"),
    ]


def call_end_to_inbox(services: Services, workdir: Path, per_second: float = 10, seconds: float = 60,
                      concurrency: int = 32) -> list[tuple[str, str, str]]:
    """Signed post-call webhooks at ``per_second`` for ``seconds`` into a real `fedfina serve`:
    how fast each is answered, and how long until its email is delivered."""
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from fedfina_cli.server.signature import sign
    from tests.fakes.smtp import free_port

    secret, api_key = "wsec-bench-0001", "fedfina-bench-api-key-0001"
    total = int(per_second * seconds)
    ids = services.add_conversations("hook", total, audio_bytes=1_000_000)
    env = {**services.env(workdir / "serve", "bench-serve"), "FEDFINA_API_KEY": api_key,
           "ELEVENLABS_WEBHOOK_SECRET": secret}
    port = free_port()
    server = subprocess.Popen([fedfina_exe(), "serve", "--port", str(port), "--concurrency", str(concurrency)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    sent_before = len(services.smtp.messages)
    sent_at: dict[str, float] = {}
    answered: list[float] = []
    statuses: list[int] = []

    def deliver(conversation_id: str) -> None:
        body = json.dumps({"type": "post_call_transcription", "event_timestamp": int(time.time()),
                           "data": services.conversation(conversation_id)}).encode()
        request = urllib.request.Request(url + "/api/v1/webhooks/elevenlabs", data=body, method="POST", headers={
            "Content-Type": "application/json", "ElevenLabs-Signature": sign(secret, body, int(time.time()))})
        started = time.monotonic()
        sent_at[conversation_id] = started
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
        answered.append(time.monotonic() - started)

    start = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        for number, conversation_id in enumerate(ids):
            time.sleep(max(0.0, start + number / per_second - time.monotonic()))
            pool.submit(deliver, conversation_id)
    deadline = time.monotonic() + 120
    while len(services.smtp.messages) - sent_before < total and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1)  # a duplicate would come after the last first email
    server.send_signal(signal.SIGTERM)
    server.wait()
    delivered: dict[str, list[float]] = {}
    for received in services.smtp.messages[sent_before:]:
        delivered.setdefault(received.message["X-FedFina-Conversation"], []).append(received.at)
    latencies = sorted(times[0] - sent_at[cid] for cid, times in delivered.items() if cid in sent_at)
    duplicates = sum(len(times) - 1 for times in delivered.values())
    lost = total - len(delivered)
    answered.sort()

    def centiles(values: list[float]) -> str:
        if not values:
            return "none"
        pick = [values[min(len(values) - 1, int(q * len(values)))] * 1000 for q in (0.5, 0.95, 0.99)]
        return "p50 {:.0f} / p95 {:.0f} / p99 {:.0f} ms".format(*pick)

    not_ok = sum(1 for status in statuses if status != 200)
    return [
        (f"serve: {total} webhooks at {per_second:g}/s, concurrency {concurrency}",
         f"{lost} lost, {duplicates} duplicates, {not_ok} not 200", "0 lost, 0 duplicates"),
        ("  webhook answered", centiles(answered), "p99 <= 100 ms"),
        ("  call end (webhook) -> email delivered", centiles(latencies), "p95 <= 1500 ms"),
    ]


def privacy_and_trust_ms(repeats: int = 200) -> float:
    """CPU per conversation of the redaction and the figure check (in this process, the sample call)."""
    from fedfina_cli.core import figures
    from fedfina_cli.core.conversation import parse_conversation, transcript_text
    from fedfina_cli.core.redaction import redact_conversation
    from fedfina_cli.services.summarizers.offline import OfflineSummarizer

    conversation = parse_conversation(json.loads(SAMPLE.read_text(encoding="utf-8")))
    document = OfflineSummarizer().summarize(conversation, transcript_text(conversation), "English", None)
    started = time.process_time()
    for _ in range(repeats):
        masked, _counts = redact_conversation(conversation)
        transcript_text(masked)
        figures.check(document.summary, transcript_text(conversation), figures.call_facts(conversation))
    return (time.process_time() - started) / repeats * 1000


def startup(command: list[str], env: dict, repeats: int = 10) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([fedfina_exe(), *command], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def pace_seconds() -> float:
    """CPU seconds of a fixed pure-Python loop in a fresh interpreter: how fast this machine is now."""
    code = ("import time; t = time.process_time(); x = 0\n"
            "for i in range(20_000_000): x += i\n"
            "print(time.process_time() - t)")
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                                  text=True).stdout) for _ in range(3))


def eager_import_seconds(repeats: int = 5) -> float:
    code = "import time; t = time.perf_counter(); import openai, minio, fpdf; print(time.perf_counter() - t)"
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                                  text=True).stdout) for _ in range(repeats))


CPU_REPEATS = 3  # bulk runs whose CPU per conversation is reported as a median


def bulk_rows(services: Services, total: int, sequential: int, workdir: Path) -> list[tuple[str, str, str]]:
    fast = batch(services, "bulk", total, 16, workdir)
    # The same run's CPU moves by 10-15 % with the machine's pace (the loopback servers' CPU
    # moves with it): one run against a 40 ms target would be luck. The median of three, each shown.
    runs = [fast, *(batch(services, f"bulk{n}", total, 16, workdir) for n in range(2, CPU_REPEATS + 1))]
    cpu = statistics.median(run["cpu"] for run in runs) / total * 1000
    each = ", ".join(f"{run['cpu'] / total * 1000:.0f} ms ({run['servers_cpu']:.1f} s)" for run in runs)
    slow = batch(services, "seq", sequential, 1, workdir)
    ideal = total * IO_PER_CONVERSATION / 16
    overlapped = total * OVERLAPPED_IO / 16
    per_fast, per_slow = fast["wall"] / total, slow["wall"] / sequential
    return [
        ("throughput: wall, concurrency 16", f"{fast['wall']:.1f} s for {total} ({fast['emails']} emails)",
         f"I/O ideal {ideal:.1f} s"),
        ("throughput: wall / I/O ideal", f"{fast['wall'] / ideal:.2f}x", "<= 1.15x"),
        ("  wall / ideal with audio during summary", f"{fast['wall'] / overlapped:.2f}x",
         f"<= 1.05x of {overlapped:.1f} s"),
        ("    of which start-up (to the first request)", f"{fast['first_request']:.2f} s "
         f"({fast['first_request'] / overlapped:.2f}x)", "(context)"),
        ("scaling: concurrency 16 over 1", f"{per_slow / per_fast:.1f}x "
         f"({per_slow:.2f} s vs {per_fast:.3f} s per conversation)", ">= 12x"),
        ("CPU per conversation (user+sys), median", f"{cpu:.0f} ms", "<= 40 ms"),
        (f"  each of {CPU_REPEATS} runs (loopback servers' CPU)", each, "(context)"),
        # The servers do the same work in every run: this ratio moves with fedfina's code, not the machine.
        ("  fedfina's CPU over the servers', median",
         f"{statistics.median(run['cpu'] / run['servers_cpu'] for run in runs):.2f}", "(context)"),
        ("  of which redaction + figure check", f"{privacy_and_trust_ms():.1f} ms", "< 5 ms"),
        ("  loopback servers' CPU, same cores", f"{fast['servers_cpu']:.1f} s "
         f"({CORES * fast['wall']:.0f} core-s available)", "(context)"),
    ]


def postgres_rows(services: Services, total: int, workdir: Path) -> list[tuple[str, str, str]]:
    from tests.postgres import start_postgres, stop_postgres

    services.elevenlabs.audio_delay = 0.2
    postgres = start_postgres()
    try:
        runs = {n: postgres_workers(services, n, total, 8, workdir, postgres) for n in (1, 2, 4)}
    finally:
        stop_postgres(postgres)
    one = runs[1]["wall"]
    rows = []
    for n, r in runs.items():
        rows += [(f"PostgreSQL: {n} worker{'s' if n > 1 else ''} x concurrency 8",
                  f"{r['wall']:.1f} s for {total} ({r['emails']} emails)",
                  f"I/O ideal {total * OVERLAPPED_IO / (8 * n):.1f} s"),
                 ("  CPU: workers + loopback servers + PostgreSQL",
                  f"{r['workers_cpu']:.1f} + {r['servers_cpu']:.1f} + {r['postgres_cpu']:.1f} s "
                  f"of {CORES * r['wall']:.0f} core-s", "(context)")]
    # With fewer cores than workers the workers share them: these runs are CPU-bound there, and
    # scale-out is measured where CPU is not the limit (the "model 4 s/summary" rows).
    def target(workers: int, ratio: str) -> str:
        return ratio if workers <= CORES else f"(context: CPU-bound on {CORES} cores)"

    rows += [("  throughput, 2 workers over 1", f"{one / runs[2]['wall']:.2f}x", target(2, ">= 1.9x")),
             ("  throughput, 4 workers over 1", f"{one / runs[4]['wall']:.2f}x", target(4, ">= 3.6x"))]
    return rows


SCENARIOS = ("bulk", "limited", "serve", "memory", "postgres", "scaleout", "startup", "ledger")


def ledger_rows(workdir: Path, conversations: int) -> list[tuple[str, str, str]]:
    """A year of calls in the ledger (bench/ledger_scale.py), on SQLite and on PostgreSQL."""
    from bench import ledger_scale
    from tests.postgres import start_postgres, stop_postgres

    base = {k: v for k, v in os.environ.items() if not k.startswith(("FEDFINA_", "DATABASE_URL"))}
    base["FEDFINA_DATA_DIR"] = str(workdir / "ledger-data")
    path = workdir / "year.db"
    built = ledger_scale.build_sqlite(path, conversations)
    rows = [(f"SQLite: build {conversations:,} conversations, {4 * conversations:,} audit lines, "
             f"{2 * conversations:,} API calls", f"{built:.0f} s", "(INSERT … SELECT)")]
    rows += ledger_scale.measure("SQLite", fedfina_exe(), {**base, "FEDFINA_DB": str(path)}, peak_rss_mb)
    postgres = start_postgres()
    try:
        url = postgres.url(postgres.new_database())
        built = ledger_scale.build_postgres(url, conversations)
        rows.append(("PostgreSQL: build the same", f"{built:.0f} s", "(generate_series)"))
        rows += ledger_scale.measure("PostgreSQL", fedfina_exe(), {**base, "DATABASE_URL": url}, peak_rss_mb)
    finally:
        stop_postgres(postgres)
    return rows


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="80 conversations instead of 400, 15 s of webhooks")
    parser.add_argument("--only", metavar="LIST", help=f"comma-separated scenarios among {', '.join(SCENARIOS)}")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 300 MB audio run")
    parser.add_argument("--skip-postgres", action="store_true", help="skip the worker processes on PostgreSQL")
    options = parser.parse_args()
    chosen = set(options.only.split(",")) if options.only else set(SCENARIOS)
    if chosen - set(SCENARIOS):
        parser.error(f"unknown scenario: {', '.join(sorted(chosen - set(SCENARIOS)))}")
    chosen -= {"memory"} if options.skip_memory else set()
    chosen -= {"postgres"} if options.skip_postgres else set()
    total = 80 if options.quick else 400
    sequential = 8 if options.quick else 40

    compile_fedfina()
    services = Services()
    # The machine's pace, before and after: the same loop took 1.3 to 1.7 s of CPU on the
    # development machine on one day, and every CPU and start-up figure moves with it.
    rows = [("machine pace: 20,000,000 Python additions, CPU (before the scenarios)", f"{pace_seconds():.2f} s",
             "(context)")]
    with tempfile.TemporaryDirectory(prefix="fedfina-bench-") as tmp:
        workdir = Path(tmp)
        if "bulk" in chosen:
            rows += bulk_rows(services, total, sequential, workdir)
        if "limited" in chosen:
            rows += rate_limited(services, total, workdir)
        if "serve" in chosen:
            rows += call_end_to_inbox(services, workdir, seconds=15 if options.quick else 60)
        if "memory" in chosen:
            services.elevenlabs.audio_delay = 0
            big, = services.add_conversations("big", 1, audio_bytes=300 * 1024 * 1024)
            rss, info = peak_rss_mb(["run", "-c", big], services.env(workdir / "big", "bench-big"))
            services.elevenlabs.audio_delay = 0.2
            note = "" if info["status"] == 0 else f" (exit status {info['status']})"
            rows.append(("peak RSS, run with 300 MB audio", f"{rss:.0f} MB{note}", "<= 150 MB"))
        if "postgres" in chosen:
            rows += postgres_rows(services, total, workdir)
        if "scaleout" in chosen:
            rows += io_bound_rows(services, 8 if options.quick else 16, workdir)
        if "ledger" in chosen:
            rows += ledger_rows(workdir, 100_000 if options.quick else 1_000_000)
        if "startup" in chosen:
            empty = services.env(workdir / "empty", "bench-empty")
            rows += [
                ("start-up: fedfina --help (median of 10)", f"{startup(['--help'], empty):.3f} s", "<= 0.3 s"),
                ("start-up: fedfina status, no ledger yet", f"{startup(['status'], empty):.3f} s", "<= 0.3 s"),
                ("eager import of openai+minio+fpdf", f"{eager_import_seconds():.3f} s", "(for comparison)"),
            ]
    services.stop()
    rows.append(("machine pace, after the scenarios", f"{pace_seconds():.2f} s", "(context)"))

    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"\n{'figure'.ljust(width)}  {'measured'.ljust(value_width)}  target")
    for figure, value, target in rows:
        print(f"{figure.ljust(width)}  {value.ljust(value_width)}  {target}")
    if options.quick:
        print("\n--quick: start-up costs (about 2 s of CPU, 1 s of wall time) weigh five times more "
              "than in the full run of 400, for which the targets are set.")


if __name__ == "__main__":
    main()
