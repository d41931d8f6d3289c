#!/usr/bin/env python3
"""CQL readiness probe and role setup for scripts/cassandra.

Runs inside the cqlsh venv (it has the Python cassandra-driver). One process polls
until `SELECT release_version FROM system.local` succeeds, so the driver is imported
once rather than once per attempt.

Exit codes: 0 ready, 1 timed out / query failed, 2 the node process died.
On success prints the release version on stdout.
"""
import argparse
import logging
import os
import socket
import ssl
import sys
import time

logging.basicConfig(level=logging.CRITICAL)
logging.getLogger("cassandra").setLevel(logging.CRITICAL)

from cassandra.auth import PlainTextAuthProvider  # noqa: E402
from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT  # noqa: E402
from cassandra.policies import WhiteListRoundRobinPolicy  # noqa: E402


def pid_alive(pid):
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            # state field after the ")" of the comm field; Z = zombie
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def make_cluster(args, user, password):
    kw = {}
    if args.ca:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(args.ca)
        ctx.check_hostname = True
        kw["ssl_context"] = ctx
        kw["ssl_options"] = {"server_hostname": args.host}
    if user:
        kw["auth_provider"] = PlainTextAuthProvider(username=user, password=password)
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([args.host]),
        request_timeout=10,
    )
    return Cluster(
        [args.host],
        port=args.port,
        connect_timeout=5,
        control_connection_timeout=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        **kw,
    )


def query_version(args, user, password):
    cluster = make_cluster(args, user, password)
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local").one()
        return row.release_version, cluster, session
    except BaseException:
        cluster.shutdown()
        raise


def setup_role(session, role, password):
    session.execute(
        "CREATE ROLE IF NOT EXISTS %s WITH PASSWORD = '%s' AND LOGIN = true"
        % (role, password.replace("'", "''"))
    )
    for perm in ("CREATE", "ALTER", "MODIFY", "SELECT"):
        session.execute("GRANT %s ON ALL KEYSPACES TO %s" % (perm, role))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9042)
    p.add_argument("--timeout", type=float, default=180)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--ca")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--setup-role")
    p.add_argument("--setup-password")
    p.add_argument("--once", action="store_true")
    args = p.parse_args()

    deadline = time.monotonic() + args.timeout
    last_err = "port not open yet"
    while True:
        if not pid_alive(args.pid):
            print("node process %d exited" % args.pid, file=sys.stderr)
            return 2
        if port_open(args.host, args.port):
            try:
                version, cluster, session = query_version(args, args.user, args.password)
                try:
                    if args.setup_role:
                        setup_role(session, args.setup_role, args.setup_password)
                finally:
                    cluster.shutdown()
                if args.setup_role:
                    # prove the new role can log in (same TLS settings)
                    _, c2, _ = query_version(args, args.setup_role, args.setup_password)
                    c2.shutdown()
                print(version)
                return 0
            except Exception as e:  # not ready yet (or auth not set up yet)
                last_err = "%s: %s" % (type(e).__name__, e)
        if args.once or time.monotonic() >= deadline:
            print("not ready: %s" % last_err[:500], file=sys.stderr)
            return 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
