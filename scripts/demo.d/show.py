#!/usr/bin/env python3
"""Shows what the demo shipped: rows per source against lines written, a few rows of each
source, and the answers to the seed queries of docs/schema.md. Runs with the Python driver
that the cqlsh venv of scripts/cassandra carries."""

import json
import sys
from datetime import datetime, timedelta, timezone

from cassandra.cluster import Cluster

written = json.loads(sys.argv[1])
KS = "logship_demo"
HOST = "demo-host"
BUCKETS = {"nginx": 900, "nginx-error": 3600, "syslog": 3600, "postgres": 3600}

session = Cluster(["127.0.0.1"], port=9042).connect(KS)
now = datetime.now(timezone.utc)


def partitions(source, since):
    """(day, bucket) of every partition of `source` from `since` to now."""
    width = BUCKETS[source]
    out = []
    t = since
    while t <= now + timedelta(seconds=width):
        day = t.date()
        sec = t.hour * 3600 + t.minute * 60 + t.second
        key = (day, sec - sec % width)
        if key not in out:
            out.append(key)
        t += timedelta(seconds=width)
    return out


def count_rows(source):
    n = 0
    for day, bucket in partitions(source, now - timedelta(hours=1)):
        n += session.execute(
            "SELECT count(*) FROM infrastructure_logs WHERE source=%s AND host=%s AND day=%s AND bucket=%s",
            (source, HOST, day, bucket)).one()[0]
    return n


print("\n== rows in Cassandra against entries written")
ok = True
for source, expected in written["entries"].items():
    got = count_rows(source)
    mark = "ok" if got == expected else "MISMATCH"
    ok &= got == expected
    print(f"  {source:12} written {expected:6}  rows {got:6}  {mark}")

print("\n== newest rows of each source")
for source in written["entries"]:
    day, bucket = partitions(source, now)[0]
    for r in session.execute(
            "SELECT ts, level, message, fields, parse_error FROM infrastructure_logs "
            "WHERE source=%s AND host=%s AND day=%s AND bucket=%s LIMIT 2", (source, HOST, day, bucket)):
        fields = dict(r.fields or {})
        print(f"  [{source}] {r.ts:%H:%M:%S.%f} {r.level:5} {r.message[:90]}")
        print(f"      fields: {json.dumps(fields)[:200]}")

print("\n== seed query: errors of host demo-host from nginx in the last hour (SAI on level)")
n = 0
for day, bucket in partitions("nginx", now - timedelta(hours=1)):
    rows = session.execute(
        "SELECT ts, message FROM infrastructure_logs WHERE source='nginx' AND host=%s AND day=%s "
        "AND bucket=%s AND level='ERROR' AND ts > %s", (HOST, day, bucket, now - timedelta(hours=1)))
    for r in rows:
        if n < 3:
            print(f"  {r.ts:%H:%M:%S} {r.message[:100]}")
        n += 1
five_xx = sum(c for s, c in written["nginx_statuses"].items() if s.startswith("5"))
print(f"  {n} ERROR rows; the generator wrote {five_xx} 5xx responses -> {'ok' if n == five_xx else 'MISMATCH'}")
ok &= n == five_xx

print("\n== seed query: PostgreSQL errors with their DETAIL and STATEMENT (one row per entry)")
day, bucket = partitions("postgres", now)[0]
for r in session.execute(
        "SELECT ts, message, fields FROM infrastructure_logs WHERE source='postgres' AND host=%s AND day=%s "
        "AND bucket=%s AND level='ERROR' LIMIT 2", (HOST, day, bucket)):
    f = dict(r.fields)
    print(f"  {r.ts:%H:%M:%S} {r.message}\n      detail: {f.get('detail')}\n      statement: {f.get('statement')!r}")

print("\n== TTL of the newest nginx row (table default: 90 days)")
day, bucket = partitions("nginx", now)[0]
r = session.execute("SELECT TTL(message) FROM infrastructure_logs WHERE source='nginx' AND host=%s AND day=%s "
                    "AND bucket=%s LIMIT 1", (HOST, day, bucket)).one()
print(f"  {r[0]} s left (~{r[0] / 86400:.1f} days)")

print("\nall rows present, none duplicated" if ok else "\nSOMETHING IS MISSING: see above")
sys.exit(0 if ok else 1)
