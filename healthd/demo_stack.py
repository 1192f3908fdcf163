"""What ``healthd demo`` runs, as data: its containers, the config of its healthd.

Owns: each demo container's part (its service, what it does wrong, what to watch for, its
``docker run`` flags and labels), the names and labels the clean-up finds them by, and the
settings its healthd runs with. Must never: run anything (``healthd.demo`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

LABEL = "healthd.demo"
IMAGE = "healthd-demo/busybox:1"
PROJECT = "healthd-demo"
SWARM_SERVICE = "healthd-demo-swarm"

FOREVER = "exec sleep 2147483647"
# 1 MiB a second into a tmpfs the memory cgroup charges: 64 MiB in about a minute.
_LEAK = ("i=0; while :; do dd if=/dev/zero of=/tmp/f$i bs=1M count=1 2>/dev/null; "
         "i=$((i+1)); sleep 1; done")
# Busy for 40 s from each start, then idle: long enough to earn a replica, and then the
# slack takes healthd's replica away again.
_BURST = "end=$(($(date +%s) + 40)); while [ $(date +%s) -lt $end ]; do :; done; " + FOREVER
# db and api are healthy while db's data file exists (a volume both mount).
_HEALTH_DB = ("--health-cmd", "test -e /shared/db-ok", "--health-interval", "2s",
              "--health-retries", "2", "--health-start-period", "20s")
# An HTTP service on the host's network (its port is picked at start): answers 200, then
# 500 from 25 s after each start. /tmp is a tmpfs, so a restart brings it back healthy.
_SHOP = """mkdir -p /www/cgi-bin
cat > /www/cgi-bin/health <<'END'
#!/bin/sh
if [ -e /tmp/broken ]; then s=500; else s=200; fi
printf 'HTTP/1.0 %s X\\r\\nContent-Type: text/plain\\r\\n\\r\\nshop %s\\n' "$s" "$s"
END
chmod +x /www/cgi-bin/health
(sleep 25; touch /tmp/broken) &
exec httpd -f -p 127.0.0.1:PORT -h /www"""
# The healthd the demo runs: fast guards and forecasts, so a minute shows every act.
CONFIG = """\
[watch]
mode = "opt-in"
stats_interval_s = 1.0
[guards]
cooldown_s = 5.0
backoff_base_s = 2.0
backoff_max_s = 20.0
budget_restarts = 4
budget_window_s = 300.0
stop_timeout_s = 1
[forecast]
horizon_s = 60.0
min_samples = 10
step_s = 0.0
[scaling]
scale_up_window_s = 5.0
scale_down_window_s = 20.0
cooldown_s = 10.0
target_cpu = 0.5
[decisions]
# The worker runs at its CPU limit on purpose, to earn a replica: an alert about that at
# every sweep would drown the rest.
resource_pressure = { degraded = "none", critical = "none" }
"predicted_exhaustion.cpu" = { degraded = "none", critical = "none" }
[stacks]
settle_s = 5.0
[signals]
# shop's errors: read over 10 s, critical (restart) once they have lasted 5 s.
window_s = 10.0
persist_s = 5.0
"""


@dataclass(frozen=True)
class Part:
    """One demo container: its service, what it does wrong and what to watch for."""

    service: str
    command: str  # run by sh -c
    watch: str  # one line for the guide the demo prints
    opts: tuple[str, ...] = ()  # extra ``docker run`` flags
    labels: tuple[tuple[str, str], ...] = ()
    # On the host's network (to be probed on 127.0.0.1); PORT in its command and labels is
    # the port the demo picked for it.
    host_port: bool = False


PARTS = (
    Part("db", "sleep 12; touch /shared/db-ok; sleep 30; rm -f /shared/db-ok; "
         "echo 'db: lost its data file' >&2; " + FOREVER,
         "db goes unhealthy 30 s after each start and takes 12 s to come back: healthd "
         "restarts it (unhealthy)",
         opts=_HEALTH_DB),
    Part("api", FOREVER, "api, which needs db, goes unhealthy with it: held (dependency), "
         "never restarted for its upstream's fault",
         opts=_HEALTH_DB, labels=(("healthd.depends_on", "db"),)),
    Part("web", FOREVER, "web depends on api: the graph draws web -> api -> db",
         labels=(("healthd.depends_on", "api"),)),
    Part("leaky", _LEAK, "leaky fills 64 MiB: the memory chart's forecast line heads for "
         "the limit and healthd restarts it before the OOM killer (predicted_exhaustion)",
         opts=("--memory", "64m", "--memory-swap", "64m", "--tmpfs", "/tmp:size=200m")),
    Part("crashy", "echo starting; sleep 4; echo 'fatal: config missing' >&2; exit 3",
         "crashy crash-loops: restarts with back-off (held: backoff) until its budget of 4 "
         "is spent, then one alert and it is left alone"),
    Part("flaky", "sleep 25; touch /tmp/broken; " + FOREVER,
         "flaky's healthcheck starts failing after 25 s: restarted (unhealthy), then again",
         opts=("--tmpfs", "/tmp", "--health-cmd", "test ! -e /tmp/broken",
               "--health-interval", "2s", "--health-retries", "2")),
    Part("worker", _BURST,
         "worker runs at its CPU limit for 40 s: healthd adds a second replica "
         "(sustained_pressure), and removes it once both idle (idle_replicas)",
         opts=("--cpus", "0.1"), labels=(("healthd.replicas.max", "2"),)),
    Part("shop", _SHOP,
         "shop answers HTTP 500 from 25 s after each start: its probe's error ratio makes "
         "it application_error, restarted once the errors last (http://127.0.0.1:PORT/"
         "cgi-bin/health)",
         opts=("--tmpfs", "/tmp"), host_port=True,
         labels=(("healthd.probe.http", "http://127.0.0.1:PORT/cgi-bin/health"),
                 ("healthd.probe.interval", "1"))),
)


def container_name(service: str) -> str:
    """Compose v1's name for replica 1, so healthd can make replica 2 the same way."""
    return f"{PROJECT}_{service}_1"


def run_args(part: Part, run_id: str, volume: str, port: int = 0) -> list[str]:
    """The ``docker run`` arguments of one demo container (``port``: a free port on
    127.0.0.1 for a ``host_port`` part)."""
    network = "host" if part.host_port else "none"
    args = ["run", "-d", "--network", network, "--name", container_name(part.service),
            "--stop-timeout", "1", "-v", f"{volume}:/shared"]
    for k, v in ((LABEL, run_id), ("healthd.enable", "true"), ("healthd.stop.timeout", "1"),
                 ("com.docker.compose.project", PROJECT),
                 ("com.docker.compose.service", part.service),
                 ("com.docker.compose.container-number", "1"), *part.labels):
        args += ["--label", f"{k}={v.replace('PORT', str(port))}"]
    command = part.command.replace("PORT", str(port)) if part.host_port else part.command
    return [*args, *part.opts, IMAGE, "sh", "-c", command]
