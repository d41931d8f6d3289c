#!/usr/bin/env python3
"""Writes realistic nginx, syslog and PostgreSQL logs for the demo, with a logrotate-style
rotation (rename + create) of the nginx access log half-way. Prints what it wrote as JSON."""

import json
import os
import random
import sys
import time
from datetime import datetime, timezone

out = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 8.0
rng = random.Random(42)

ACCESS = os.path.join(out, "nginx", "access.log")
ERROR = os.path.join(out, "nginx", "error.log")
SYSLOG = os.path.join(out, "syslog", "syslog")
PG = os.path.join(out, "postgresql", "postgresql-16-main.log")
for p in (ACCESS, ERROR, SYSLOG, PG):
    os.makedirs(os.path.dirname(p), exist_ok=True)

IPS = ["203.0.113.7", "198.51.100.23", "2001:db8::17", "192.0.2.44", "10.1.2.3"]
PATHS = ["/", "/api/orders", "/api/orders/1842", "/login", "/static/app.js", "/health", "/search?q=caf%C3%A9"]
UAS = ["Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
       "curl/8.5.0", "Go-http-client/2.0", "Prometheus/2.53.0"]
STATUSES = [200] * 30 + [201, 204, 301, 304, 400, 401, 403, 404, 404, 499, 500, 502, 503]


def now():
    return datetime.now(timezone.utc).astimezone()


def access_line(i):
    t = now().strftime("%d/%b/%Y:%H:%M:%S %z")
    status = rng.choice(STATUSES)
    method = rng.choice(["GET"] * 5 + ["POST", "PUT", "DELETE"])
    rid = f"req-{i:06d}"
    return (f'{rng.choice(IPS)} - - [{t}] "{method} {rng.choice(PATHS)} HTTP/1.1" {status} '
            f'{rng.randint(0, 50000)} "-" "{rng.choice(UAS)}" {rng.random() / 5:.3f} "{rid}"\n'), status


def error_line(i):
    t = now().strftime("%Y/%m/%d %H:%M:%S")
    lvl = rng.choice(["error", "warn", "crit"])
    return (f"{t} [{lvl}] 1234#1234: *{i} upstream timed out (110: Connection timed out) while reading "
            f'response header from upstream, client: 203.0.113.7, server: shop.example.com, '
            f'request: "GET /api/orders HTTP/1.1", upstream: "http://127.0.0.1:8080/api/orders", '
            f'host: "shop.example.com"\n')


def syslog_line(i):
    t = now().isoformat(timespec="microseconds")
    return rng.choice([
        f"{t} web-1 sshd[{2000 + i}]: Accepted publickey for deploy from 198.51.100.23 port {40000 + i} ssh2: ED25519 SHA256:abc\n",
        f"{t} web-1 CRON[{3000 + i}]: (root) CMD (/usr/local/bin/backup --quick)\n",
        f"{t} web-1 systemd[1]: Started session-{i}.scope - Session {i} of User deploy.\n",
        f"{t} web-1 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=192.0.2.44 DST=10.1.2.3 PROTO=TCP DPT=23\n",
    ])


def pg_entry(i):
    t = now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
    pid = 4000 + i % 7
    if i % 5 == 0:
        return (f"{t} [{pid}] app@shop ERROR:  duplicate key value violates unique constraint \"orders_pkey\"\n"
                f"{t} [{pid}] app@shop DETAIL:  Key (id)=({i}) already exists.\n"
                f"{t} [{pid}] app@shop STATEMENT:  INSERT INTO orders (id, total)\n"
                f"\t\tVALUES ({i}, 42.00);\n")
    return f"{t} [{pid}] app@shop LOG:  duration: {rng.random() * 50:.3f} ms  statement: SELECT * FROM orders WHERE id = {i}\n"


counts = {"nginx": 0, "nginx-error": 0, "syslog": 0, "postgres": 0}
statuses = {}
files = {k: open(p, "a", encoding="utf-8") for k, p in
         [("nginx", ACCESS), ("nginx-error", ERROR), ("syslog", SYSLOG), ("postgres", PG)]}
start = time.monotonic()
rotated = False
i = 0
while time.monotonic() - start < seconds:
    i += 1
    line, status = access_line(i)
    files["nginx"].write(line)
    counts["nginx"] += 1
    statuses[status] = statuses.get(status, 0) + 1
    if i % 25 == 0:
        files["nginx-error"].write(error_line(i))
        counts["nginx-error"] += 1
    if i % 10 == 0:
        files["syslog"].write(syslog_line(i))
        counts["syslog"] += 1
    if i % 20 == 0:
        files["postgres"].write(pg_entry(i))
        counts["postgres"] += 1
    if i % 100 == 0:
        for f in files.values():
            f.flush()
        time.sleep(0.02)
    if not rotated and time.monotonic() - start > seconds / 2:
        # logrotate's default: rename, then the server reopens a new file (create).
        files["nginx"].close()
        os.rename(ACCESS, ACCESS + ".1")
        files["nginx"] = open(ACCESS, "a", encoding="utf-8")
        rotated = True
for f in files.values():
    f.close()
json.dump({"entries": counts, "nginx_statuses": statuses, "rotated": rotated}, sys.stdout)
print()
