"""`make deploy-check`: the production topology started for real on this machine, and used the way
a media team would, through nginx only.

PostgreSQL 15 with pgvector, Redis, gunicorn behind nginx and two django-q2 clusters, each on a
loopback port, with all their files in one temporary folder. Then: a folder of ffmpeg-made clips
imported by the API, every video waited for until it is ready, the pairs read, a moderator's
decision posted, a video fetched with a Range request (206) and a HEAD, /metrics and /health/ready
read. Last, with one more video in extraction, SIGTERM to everything: the extraction in flight
must have finished or be queued again, and nothing may be left running. Whatever happens, every
process started here is stopped and the folder removed (--keep keeps it, to read the logs).

Run as root it installs what is missing (apt-get; pgvector is built from Debian's source into
PostgreSQL 15, lib/portable_pgvector.py) and runs every service as an unprivileged user
(ASTRADUP_CHECK_USER, default astradup-check, made if missing); as another user it runs as
that user and asks for sudo only to install.

The script uses the standard library only (its services are the project's own: gunicorn and
manage.py from this checkout's environment, which `make deploy-check` builds first)."""

import argparse
import http.client
import http.cookiejar
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib import portable_pgvector, topology  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_EXTENSION = Path("/usr/share/postgresql/15/extension")
APT = {
    "nginx": "nginx-light",
    "redis-server": "redis-server",
    str(PG_BIN / "postgres"): "postgresql-15",
    "/usr/include/postgresql/15/server/postgres.h": "postgresql-server-dev-15",
    "ffmpeg": "ffmpeg",
    "gcc": "gcc",
    "make": "make",
}
ADMIN, PASSWORD = "deploy-check", secrets.token_urlsafe(16)


def say(message: str) -> None:
    print(f"[deploy-check {time.strftime('%H:%M:%S')}] {message}", flush=True)


class CheckFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def sudo() -> list[str]:
    return [] if os.geteuid() == 0 else ["sudo", "-n"]


# --- what must be installed


def install_missing() -> None:
    missing = sorted({pkg for path, pkg in APT.items() if not (shutil.which(path) or os.path.exists(path))})
    if missing:
        say(f"installing {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run([*sudo(), "apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            [*sudo(), "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env=env,
        )
    control = PG_EXTENSION / "vector.control"
    installed = (
        re.search(r"default_version\s*=\s*'([^']+)'", control.read_text()) if control.exists() else None
    )
    if installed and portable_pgvector.version_key(installed.group(1)) >= portable_pgvector.version_key(
        portable_pgvector.SAFE_HNSW_VACUUM
    ):
        return
    say(f"building pgvector {portable_pgvector.WANTED} for PostgreSQL 15 (Debian's source, portable flags)")
    with tempfile.TemporaryDirectory(prefix="pgvector-") as tmp:
        work = Path(tmp)
        tarball = portable_pgvector.fetch_source(portable_pgvector.WANTED, work / "pgvector.tar.gz")
        source = portable_pgvector.build(PG_BIN.parent, tarball, work)
        subprocess.run(
            [*sudo(), "make", "install", "OPTFLAGS=", f"PG_CONFIG={PG_BIN / 'pg_config'}"],
            cwd=source,
            check=True,
            stdout=subprocess.DEVNULL,
        )


def service_user() -> pwd.struct_passwd:
    """Who the services run as: this user, or (as root) an unprivileged one: PostgreSQL refuses
    root, and nothing here needs it."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    name = os.environ.get("ASTRADUP_CHECK_USER", "astradup-check")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True
        )
        return pwd.getpwnam(name)


# --- the processes


class Topology:
    """Every process started here, stopped in reverse order whatever happens."""

    def __init__(self, base: Path, user: pwd.struct_passwd, model_cache: Path):
        self.base, self.user = base, user
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.ports = {name: topology.free_port() for name in ("pg", "redis", "web", "nginx")}
        self.token = secrets.token_urlsafe(24)
        self.url = f"http://127.0.0.1:{self.ports['nginx']}"
        for name in ("run", "data", "videos", "home", "metrics", "logs"):
            (base / name).mkdir()
        model_cache.mkdir(parents=True, exist_ok=True)
        for path in [base, *base.iterdir(), model_cache]:
            os.chown(path, user.pw_uid, user.pw_gid)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(base / "home"),
            "XDG_CACHE_HOME": str(base / "home" / ".cache"),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_BEHIND_PROXY": "1",
            "DATABASE_URL": f"postgres://astradup@127.0.0.1:{self.ports['pg']}/astradup",
            "ASTRADUP_REDIS_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            "ASTRADUP_DATA_DIR": str(base / "data"),
            "ASTRADUP_IMPORT_ROOTS": str(base / "videos"),
            "ASTRADUP_ACCEL_REDIRECT": topology.ACCEL_PREFIX,
            "ASTRADUP_METRICS_TOKEN": self.token,
            "ASTRADUP_MODEL_CACHE": str(model_cache),
            "ASTRADUP_Q_WORKERS": "1",
            "ASTRADUP_TORCH_THREADS": "1",
            "ASTRADUP_WEB_WORKERS": "2",
            "ASTRADUP_LOG_FORMAT": "json",
            "PROMETHEUS_MULTIPROC_DIR": str(base / "metrics"),
        }
        self.python_as_user = os.geteuid() != 0 or self._user_runs_python()

    def _user_runs_python(self) -> bool:
        try:
            probe = [sys.executable, "-c", "import django"]
            user = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
            return subprocess.run(probe, cwd=ROOT, capture_output=True, **user).returncode == 0
        except OSError:
            return False

    def _identity(self, python: bool) -> dict:
        """Popen's arguments that drop root for a service; Python's processes stay root where the
        environment's interpreter is not reachable by the service user (a pyenv under /root)."""
        if os.geteuid() != 0 or (python and not self.python_as_user):
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def start(self, name: str, command: list[str], *, python: bool = False) -> subprocess.Popen:
        log = open(self.base / "logs" / f"{name}.log", "wb")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopped, and killed if need be, with its children
            **self._identity(python),
        )
        log.close()
        self.processes.append((name, process))
        return process

    def run(self, *command: str, timeout: float = 600, python: bool = False) -> str:
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **self._identity(python),
        )
        if result.returncode != 0:
            raise CheckFailed(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-4000:]}")
        return result.stdout

    def manage(self, *args: str, timeout: float = 600) -> str:
        return self.run(sys.executable, "manage.py", *args, timeout=timeout, python=True)

    def start_all(self, deadline: float) -> None:
        pgdata = self.base / "pg"
        self.run(str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "astradup", "--auth=trust", "-E", "UTF8")
        postgres = self.start(
            "postgres",
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(pgdata),
                "-p",
                str(self.ports["pg"]),
                "-c",
                "listen_addresses=127.0.0.1",
            ]
            + ["-c", f"unix_socket_directories={self.base / 'run'}"],
        )
        topology.wait_port(self.ports["pg"], deadline=deadline, process=postgres)
        while subprocess.run(
            [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.ports["pg"])]
        ).returncode:
            check(time.monotonic() < deadline, "PostgreSQL did not become ready")
            time.sleep(0.5)
        self.run(
            str(PG_BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.ports["pg"]),
            "-U",
            "astradup",
            "astradup",
        )
        redis = self.start(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.ports["redis"]),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            + ["--dir", str(self.base / "run")],
        )
        topology.wait_port(self.ports["redis"], deadline=deadline, process=redis)
        say(f"PostgreSQL 15 on :{self.ports['pg']}, Redis on :{self.ports['redis']}; migrating")
        # what the compose file's web service runs before gunicorn (docker-compose.yml)
        self.manage("migrate", "--noinput", "-v0")
        self.manage("createcachetable")
        self.manage("collectstatic", "--noinput", "-v0")
        self.api_token = (
            self.manage(
                "shell",
                "-c",
                "from django.contrib.auth.models import Group, User;"
                f"u = User.objects.create_superuser({ADMIN!r}, password={PASSWORD!r});"
                "u.groups.add(Group.objects.get(name='admin'));"
                "from rest_framework.authtoken.models import Token; print(Token.objects.create(user=u).key)",
            )
            .strip()
            .splitlines()[-1]
        )
        web = self.start(
            "gunicorn",
            [
                sys.executable,
                *topology.GUNICORN,
                "--bind",
                f"127.0.0.1:{self.ports['web']}",
                topology.WSGI_APP,
            ],
            python=True,
        )
        for n in (1, 2):
            self.start(f"qcluster-{n}", [sys.executable, *topology.QCLUSTER], python=True)
        topology.wait_port(self.ports["web"], deadline=deadline, process=web)
        self.start(
            "nginx",
            [topology.nginx_binary() or "nginx", "-c", str(self.nginx_conf()), "-p", str(self.base / "run")]
            + ["-e", str(self.base / "logs" / "nginx-error.log"), "-g", "daemon off;"],
        )
        topology.wait_port(self.ports["nginx"], deadline=deadline, process=self.processes[-1][1])
        say(f"gunicorn on :{self.ports['web']} behind nginx on :{self.ports['nginx']}, two clusters")

    def nginx_conf(self) -> Path:
        conf = self.base / "run" / "nginx.conf"
        conf.write_text(
            topology.nginx_config(
                listen=self.ports["nginx"],
                upstream=f"127.0.0.1:{self.ports['web']}",
                run_dir=self.base / "run",
            )
        )
        return conf

    def stop(
        self, names: list[str], sig: int = signal.SIGTERM, timeout: float = 120
    ) -> dict[str, int | None]:
        """`sig` to each named process, then each waited for; what outlives `timeout` is killed with
        its group. Returns each one's exit status (None: it had to be killed)."""
        chosen = [(n, p) for n, p in self.processes if n in names]
        for _, process in chosen:
            if process.poll() is None:
                process.send_signal(sig)
        statuses: dict[str, int | None] = {}
        end = time.monotonic() + timeout
        for name, process in chosen:
            try:
                statuses[name] = process.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                statuses[name] = None
            try:
                os.killpg(process.pid, signal.SIGKILL)  # and whatever it left in its group
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
        return statuses

    def stop_everything(self) -> None:
        order = ["nginx", "gunicorn", "qcluster-1", "qcluster-2", "redis", "postgres"]
        self.stop([n for n in order if n in dict(self.processes)], timeout=60)
        left = self.leftovers()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def leftovers(self) -> list[int]:
        """Processes still running from this check: in a started process's group, or naming the
        temporary folder on their command line (what a double fork would leave)."""
        groups = {p.pid for _, p in self.processes}
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if fields[0] == "Z":
                continue
            if int(fields[3]) in groups or str(self.base) in cmdline:  # fields[3]: the process group
                found.append(int(entry.name))
        return found


# --- a client that talks to nginx only


class Client:
    def __init__(self, base_url: str, token: str, metrics_token: str):
        self.base, self.token, self.metrics_token = base_url, token, metrics_token
        self.cookies = http.cookiejar.CookieJar()
        self.browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, {"error": exc.read().decode(errors="replace")[:2000]}

    def videos(self) -> list[dict]:
        found, path = [], "/api/v1/videos?page_size=500"
        while path:
            status, page = self.api("GET", path)
            check(status == 200, f"GET {path}: {status} {page}")
            found += page["results"]
            path = (
                page["next"] and urllib.parse.urlsplit(page["next"])._replace(scheme="", netloc="").geturl()
            )
        return found

    def monitoring(self, path: str) -> tuple[int, str]:
        """What a monitoring system with ASTRADUP_METRICS_TOKEN reads."""
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {self.metrics_token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def metrics(self) -> str:
        status, text = self.monitoring("/metrics")
        check(status == 200, f"/metrics: {status} {text[:500]}")
        return text

    def log_in(self, username: str, password: str) -> None:
        with self.browser.open(self.base + "/accounts/login/", timeout=60) as response:
            page = response.read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        check(csrf is not None, "no CSRF token on the login page")
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": csrf.group(1)}
        ).encode()
        request = urllib.request.Request(
            self.base + "/accounts/login/", data=form, headers={"Referer": self.base + "/accounts/login/"}
        )
        with self.browser.open(request, timeout=60) as response:
            check("/accounts/login" not in response.url, "logging in through nginx failed")

    def raw(self, method: str, path: str, **headers: str) -> tuple[http.client.HTTPResponse, bytes]:
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.cookies)
        conn = http.client.HTTPConnection(*urllib.parse.urlsplit(self.base).netloc.split(":"), timeout=60)
        conn.request(method, path, headers={"Cookie": cookie, **headers})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response, body


def metric(text: str, series: str) -> float | None:
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return None


# --- the clips


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def make_clips(folder: Path, user: pwd.struct_passwd) -> None:
    """An original, a smaller re-encode of it (a near duplicate), and an unrelated clip."""

    def clip(path: Path, source: str, seconds: int, tone: int) -> None:
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            source,
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={tone}:sample_rate=22050",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        )

    clip(folder / "original.mp4", "mandelbrot=size=320x240:rate=25", 8, 440)
    ffmpeg(
        "-i",
        str(folder / "original.mp4"),
        "-vf",
        "scale=240:180",
        "-c:v",
        "libx264",
        "-crf",
        "30",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        str(folder / "copy.mp4"),
    )
    clip(folder / "other.mp4", "life=size=320x240:rate=25:seed=7:mold=10:ratio=0.3", 8, 660)
    for path in folder.iterdir():
        os.chown(path, user.pw_uid, user.pw_gid)


# --- the check


def wait_ready(client: Client, count: int, deadline: float, seen_metrics: list[str]) -> list[dict]:
    while True:
        videos = client.videos()
        statuses = sorted(v["status"] for v in videos)
        if len(videos) >= count and all(s in ("ready", "failed") for s in statuses):
            return videos
        if not seen_metrics and any(s == "processing" for s in statuses):
            seen_metrics.append(client.metrics())  # a scrape while the queue drains
        check(time.monotonic() < deadline, f"videos not ready by the deadline: {statuses}")
        time.sleep(2)


def exercise(top: Topology, client: Client, deadline: float) -> dict:
    results: dict = {}
    videos_dir = top.base / "videos"
    make_clips(videos_dir, top.user)
    status, body = client.api("POST", "/api/v1/import", {"paths": [str(videos_dir)]})
    check(status == 201, f"import: {status} {body}")
    say(f"imported through nginx: {body}")
    during: list[str] = []
    started = time.monotonic()
    videos = wait_ready(client, 3, deadline, during)
    results["ready_seconds"] = round(time.monotonic() - started, 1)
    check(all(v["status"] == "ready" for v in videos), f"a video failed: {videos}")
    say(f"3 videos ready in {results['ready_seconds']} s")

    status, pairs = client.api("GET", "/api/v1/pairs")
    check(status == 200 and pairs["count"] >= 1, f"pairs: {status} {pairs}")
    pair = pairs["results"][0]
    results["pairs"] = pairs["count"]
    status, decision = client.api("POST", f"/api/v1/pairs/{pair['id']}/decision", {"action": "confirm"})
    check(status in (200, 201), f"decision: {status} {decision}")
    say(f"{pairs['count']} pair(s); confirmed pair {pair['id']}")

    client.log_in(ADMIN, PASSWORD)
    media = f"/review/videos/{videos[0]['id']}/media"
    part, data = client.raw("GET", media, Range="bytes=0-99")
    check(part.status == 206 and len(data) == 100, f"Range: {part.status}, {len(data)} bytes")
    check(part.getheader("Server", "").startswith("nginx"), "not answered by nginx")
    head, data = client.raw("HEAD", media)
    check(
        head.status == 200 and data == b"" and int(head.getheader("Content-Length") or 0) > 100,
        f"HEAD: {head.status}",
    )
    say(f"{media}: 206 for bytes 0-99 and HEAD {head.getheader('Content-Length')} bytes, from nginx")

    status, ready = client.monitoring("/health/ready")
    check(status == 200, f"/health/ready: {status} {ready}")
    ready = json.loads(ready)
    check(
        ready["broker"] == "redis" and ready["workers"] == 2 and ready["pgvector"], f"/health/ready: {ready}"
    )
    check(client.monitoring("/health/live") == (200, '{"status": "ok"}'), "/health/live")
    text = client.metrics()
    check(metric(text, 'astradup_videos{status="ready"}') == 3, "metrics: videos")
    check(metric(text, 'astradup_decisions_total{action="confirm"}') == 1, "metrics: decisions")
    check(
        metric(text, 'astradup_extraction_stage_seconds_count{stage="embed"}') == 3,
        "metrics: stage histogram",
    )
    check((metric(text, "astradup_scoring_config_active_id") or 0) > 0, "metrics: config")
    requests = sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("astradup_http_requests_total{")
    )
    check(requests > 0, "metrics: request counts")
    results["metrics_during"] = {
        name: metric(during[0], name) if during else None
        for name in ("astradup_queue_tasks", "astradup_queue_oldest_task_age_seconds")
    }
    results["stage_seconds"] = {
        m.group(1): round(float(m.group(2)), 2)
        for m in re.finditer(r'astradup_extraction_stage_seconds_sum\{stage="([^"]+)"\} (\S+)', text)
    }
    say(f"/metrics: {int(requests)} requests counted; stage CPU seconds {results['stage_seconds']}")
    results["ready"] = ready
    return results


def sigterm_in_flight(top: Topology, client: Client, deadline: float) -> dict:
    """One more video, SIGTERM to everything once a cluster is extracting it: its task must have
    finished, or be queued again once the claims are recovered (what a worker does at start)."""
    extra = top.base / "videos" / "late.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "cellauto=size=640x480:rate=25:rule=110:seed=3",
        "-t",
        "40",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        str(extra),
    )
    os.chown(extra, top.user.pw_uid, top.user.pw_gid)
    status, body = client.api("POST", "/api/v1/import", {"paths": [str(extra)]})
    check(status == 201 and body.get("created"), f"import late.mp4: {status} {body}")
    video_id = body["created"][0]
    while (state := client.api("GET", f"/api/v1/videos/{video_id}")[1].get("status")) != "processing":
        check(state in ("pending", "processing"), f"late.mp4 went {state} before SIGTERM")
        check(time.monotonic() < deadline, "late.mp4 never started")
        time.sleep(0.5)
    say("late.mp4 is being extracted: SIGTERM to nginx, gunicorn and both clusters")
    stopped = time.monotonic()
    statuses = top.stop(["nginx", "gunicorn", "qcluster-1", "qcluster-2"], timeout=120)
    result: dict = {"stop_seconds": round(time.monotonic() - stopped, 1), "exit": statuses}
    check(all(s is not None for s in statuses.values()), f"a process had to be killed: {statuses}")
    code = (
        "import json; from dedup.models import Video; from dedup.services.claims import claims_recover;"
        "from django_q.brokers import get_broker;"
        f"v = Video.objects.get(pk={video_id}); before = v.status;"
        "claims_recover() if before != 'ready' else None; v.refresh_from_db();"
        "print(json.dumps({'before': before, 'after': v.status, 'queued': get_broker().queue_size()}))"
    )
    state = json.loads(top.manage("shell", "-c", code).strip().splitlines()[-1])
    result["in_flight"] = state
    check(
        state["before"] == "ready" or (state["after"] == "pending" and state["queued"] >= 1),
        f"the task in flight was lost: {state}",
    )
    say(f"in-flight extraction: {state}; web and clusters stopped in {result['stop_seconds']} s")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--deadline", type=float, default=900, help="seconds for the whole check (default 900)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data)")
    parser.add_argument(
        "--model-cache",
        type=Path,
        default=ROOT / "var" / "deploy-check-models",
        help="converted models, kept between runs (the first run converts, minutes)",
    )
    args = parser.parse_args(argv)
    began = time.monotonic()
    deadline = began + args.deadline
    install_missing()
    user = service_user()
    base = Path(tempfile.mkdtemp(prefix="astradup-deploy-"))
    top = Topology(base, user, args.model_cache)
    # a SIGTERM or Ctrl-C to this script still goes through the clean-up below
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    failed = True
    try:
        python_user = user.pw_name if top.python_as_user else "root (the interpreter is out of its reach)"
        say(
            f"PostgreSQL, Redis and nginx as {user.pw_name}, gunicorn and the clusters as {python_user}, in {base}"
        )
        top.start_all(deadline)
        client = Client(top.url, top.api_token, top.token)
        results = exercise(top, client, deadline)
        results.update(sigterm_in_flight(top, client, deadline))
        top.stop(["redis", "postgres"], timeout=60)
        left = top.leftovers()
        check(not left, f"processes left running: {left}")
        results["seconds"] = round(time.monotonic() - began, 1)
        print(json.dumps(results, indent=2, default=str))
        say(f"passed in {results['seconds']} s")
        failed = False
        return 0
    except (CheckFailed, TimeoutError, RuntimeError, subprocess.SubprocessError, OSError) as exc:
        say(f"FAILED: {exc}")
        for log in sorted((base / "logs").glob("*.log")):
            tail = log.read_text(errors="replace")[-1500:]
            print(f"--- {log.name} (last lines)\n{tail}", file=sys.stderr)
        return 1
    finally:
        top.stop_everything()
        left = top.leftovers()
        if left:
            say(f"still running after clean-up: {left}")
        if args.keep or failed and os.environ.get("ASTRADUP_CHECK_KEEP_FAILED"):
            say(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
