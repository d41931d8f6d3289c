#!/usr/bin/env bash
# Boots a real systemd in a container (systemd-nspawn on an overlay of this machine's root,
# private network) with the packaged unit and binary installed, then starts, reloads and
# stops logship.service. Args: WORK BIN UNIT. Prints "STEP <name> ok" lines; exit 0 on success.
set -euo pipefail
W=$1; BIN=$2; UNIT=$3
R=$W/ov/root
mkdir -p "$W/ov"
mount -t tmpfs -o size=1g tmpfs "$W/ov"
mkdir -p "$W/ov/up" "$W/ov/work" "$R"
cleanup() {
  if [ -n "${NSPAWN:-}" ]; then kill -TERM "$NSPAWN" 2>/dev/null || true; for i in $(seq 1 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.2; done; kill -KILL "$NSPAWN" 2>/dev/null || true; fi
  umount -l "$R" 2>/dev/null || true
  umount -l "$W/ov" 2>/dev/null || true
}
trap cleanup EXIT
mount -t overlay overlay -o "lowerdir=/,upperdir=$W/ov/up,workdir=$W/ov/work" "$R"
# The container sees this machine's files through the overlay; what it writes stays in the
# tmpfs. Services of this machine that would start there are masked.
for s in postgresql.service apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer getty@tty1.service; do
  ln -sf /dev/null "$R/etc/systemd/system/$s"
done
install -m 0755 "$BIN" "$R/usr/bin/logship"
install -m 0644 "$UNIT" "$R/etc/systemd/system/logship.service"
mkdir -p "$R/etc/logship" "$R/var/log/lstest"
cat > "$R/etc/logship/logship.toml" <<'TOML'
[cassandra]
contact_points = ["127.0.0.1:9042"]
keyspace = "logship"

[[source]]
name = "lstest"
paths = ["/var/log/lstest/*.log"]
format = "syslog"
TOML
chmod 0644 "$R/etc/logship/logship.toml"
chroot "$R" sh -c 'getent group logship >/dev/null || addgroup --quiet --system logship; getent passwd logship >/dev/null || adduser --quiet --system --ingroup logship --no-create-home --home /nonexistent logship; adduser --quiet logship adm'
echo "STEP prepare ok"
systemd-nspawn -D "$R" --register=no --keep-unit --private-network -M lsunit --console=pipe -b > "$W/nspawn.out" 2>&1 < /dev/null &
NSPAWN=$!
CPID=
for i in $(seq 1 100); do CPID=$(pgrep -P "$NSPAWN" -x systemd || true); [ -n "$CPID" ] && break; sleep 0.2; done
[ -n "$CPID" ] || { echo "no systemd in the container"; cat "$W/nspawn.out"; exit 1; }
in_c() { nsenter -t "$CPID" -m -u -i -n -p -r -w "$@"; }
state=
for i in $(seq 1 300); do
  state=$(in_c systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 0.2
done
case "$state" in running|degraded) ;; *) echo "the container's systemd did not finish booting: '$state'"; cat "$W/nspawn.out"; exit 1 ;; esac
echo "STEP boot ok ($state)"
in_c systemctl daemon-reload
timeout 60 nsenter -t "$CPID" -m -u -i -n -p -r -w systemctl start logship.service || { in_c systemctl status logship.service --no-pager -l || true; in_c journalctl -u logship --no-pager -n 50 || true; exit 1; }
in_c systemctl is-active logship.service
PID1=$(in_c systemctl show -P MainPID logship.service)
echo "STEP start ok (MainPID $PID1)"
sleep 2
timeout 60 nsenter -t "$CPID" -m -u -i -n -p -r -w systemctl reload logship.service
sleep 2
in_c systemctl is-active logship.service
PID2=$(in_c systemctl show -P MainPID logship.service)
[ "$PID1" = "$PID2" ] || { echo "MainPID changed on reload: $PID1 -> $PID2"; exit 1; }
in_c journalctl -u logship.service --no-pager -o cat | grep -q 'config reloaded' || { echo "no 'config reloaded' in the unit's journal"; in_c journalctl -u logship --no-pager -n 30; exit 1; }
echo "STEP reload ok"
timeout 60 nsenter -t "$CPID" -m -u -i -n -p -r -w systemctl stop logship.service
result=$(in_c systemctl show -P Result logship.service)
status=$(in_c systemctl show -P ExecMainStatus logship.service)
active=$(in_c systemctl is-active logship.service || true)
echo "stop: Result=$result ExecMainStatus=$status active=$active"
[ "$result" = success ] && [ "$active" = inactive ] || { in_c journalctl -u logship --no-pager -n 50; exit 1; }
in_c journalctl -u logship.service --no-pager -o short-iso | tail -30 > "$W/unit.journal"
echo "STEP stop ok"
