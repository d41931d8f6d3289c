#!/usr/bin/env bash
# Builds the .deb (scripts/package), installs it with dpkg, checks what an operator relies on
# (binary, unit, conffile, user, data directory), reinstalls, removes and purges it.
# Needs root, dpkg and systemd-analyze; without them it skips, except under CI=true where it fails.
# It installs into the running system: do not run it on a host where logship is in use.
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
pass() {
  passed=$((passed + 1))
  echo "ok   $1"
}
fail() {
  failed=$((failed + 1))
  echo "FAIL $1" >&2
}
# check NAME COMMAND...: runs the command, counts the outcome, shows its output on failure.
check() {
  local name=$1 output
  shift
  if output=$("$@" 2>&1); then
    pass "$name"
  else
    fail "$name"
    [[ -z "$output" ]] || printf '%s\n' "$output" | sed 's/^/     /' >&2
  fi
}
summary() {
  echo "packaging: $passed passed, $failed failed"
}
# Cannot run here: a visible skip outside CI, a failure under CI=true (the same rule as
# tests/support/prereq.rs: CI=true, TRUE or 1).
unavailable() {
  local ci=${CI:-}
  if [[ "${ci,,}" == "true" || "$ci" == "1" ]]; then
    fail "$1"
    summary
    exit 1
  fi
  echo "SKIPPED packaging: $1" >&2
  exit 0
}

for tool in dpkg dpkg-deb dpkg-query systemd-analyze getent runuser cargo; do
  command -v "$tool" >/dev/null || unavailable "$tool is not installed"
done
[[ $(id -u) -eq 0 ]] || unavailable "dpkg -i needs root"
if dpkg-query -W -f '${db:Status-Status}' logship 2>/dev/null | grep -qv '^not-installed$'; then
  # Refuse rather than purge somebody's installation (a killed earlier run also lands here).
  fail "logship is installed (or its config files are); remove it first: dpkg --purge logship"
  summary
  exit 1
fi

# Leave the machine as we found it, whatever fails below.
cleanup() {
  dpkg --purge logship >/dev/null 2>&1 || true
}
trap cleanup EXIT

version=$(cargo metadata --no-deps --format-version 1 |
  sed -n 's/.*"name":"logship","version":"\([^"]*\)".*/\1/p')
[[ -n "$version" ]] || {
  fail "read the crate version from cargo metadata"
  summary
  exit 1
}

echo "== build"
deb=$(scripts/package | tail -n 1) || deb=
if [[ -z "$deb" || ! -f "$deb" ]]; then
  fail "scripts/package builds a .deb"
  summary
  exit 1
fi
pass "scripts/package builds $deb"

echo "== package contents"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for path in ./usr/bin/logship ./usr/lib/systemd/system/logship.service \
  ./etc/logship/logship.toml ./etc/logship/conf.d/README \
  ./usr/share/doc/logship/README.md ./usr/share/doc/logship/copyright; do
  check "package ships ${path#.}" grep -qx -- "$path" <<<"$contents"
done
depends=$(dpkg-deb -f "$deb" Depends)
echo "     Depends: $depends"
check "Depends names adduser (postinst creates the user)" grep -q 'adduser' <<<"$depends"
check "Depends names procps (ExecReload runs /bin/kill)" grep -q 'procps' <<<"$depends"

echo "== install"
check "dpkg -i succeeds without a running systemd" dpkg -i "$deb"

check "logship --version prints $version" \
  bash -c '/usr/bin/logship --version | grep -qx "logship $1"' _ "$version"

# cargo-deb's $auto (dpkg-shlibdeps) must name the package of every shared library the
# binary links directly (libsystemd0). Libraries those pull in (libsystemd's libcap,
# liblz4, ...) are their packages' own dependencies, so only DT_NEEDED entries count.
# It leaves out libgcc-s1 on purpose: the toolchain guarantees it, Debian marks it protected.
libraries_covered() {
  local lib pkg soname missing=
  local needed
  needed=$(readelf -d /usr/bin/logship | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
  [[ -n $needed ]] || { echo "readelf found no DT_NEEDED entries"; return 1; }
  for soname in $needed; do
    lib=$(ldd /usr/bin/logship | awk -v so="$soname" '$1 == so && $3 ~ /^\// {print $3}')
    [[ -n $lib ]] || continue # the dynamic loader itself (ld-linux) has no "=>" line
    pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null) || {
      echo "no package owns $lib"
      return 1
    }
    pkg=${pkg%%:*}
    [[ $pkg == libgcc-s* ]] && continue
    grep -qE "(^|, )$pkg( |,|$)" <<<"$depends" || missing+=" $pkg($lib)"
  done
  [[ -z $missing ]] || {
    echo "not in Depends:$missing"
    return 1
  }
}
check "Depends covers every shared library of the binary" libraries_covered

unit=/lib/systemd/system/logship.service
check "unit installed at $unit" test -f "$unit"
check "installed unit is systemd/logship.service" cmp -s "$unit" systemd/logship.service
# verify exits 0 on unknown keys and only warns, so its output must be empty too.
verify_output=$(systemd-analyze verify "$unit" 2>&1) && verify_rc=0 || verify_rc=$?
[[ -n "$verify_output" ]] && echo "$verify_output" >&2
check "systemd-analyze verify $unit passes without warnings" \
  test "$verify_rc" -eq 0 -a -z "$verify_output"
# Exposure is reported as 0.0-10.0 but the threshold is in tenths: 15 means 1.5.
exposure=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
check "systemd-analyze security exposure ${exposure:-?} is at most 1.5" \
  systemd-analyze security --offline=yes --threshold=15 "$unit"

conffiles=$(dpkg-query -W -f '${Conffiles}' logship)
check "/etc/logship/logship.toml is a conffile" grep -q '^ */etc/logship/logship.toml ' <<<"$conffiles"
check "/etc/logship/conf.d/ exists" test -d /etc/logship/conf.d
check "config is root:logship 0640" \
  test "$(stat -c '%U:%G %a' /etc/logship/logship.toml)" = "root:logship 640"
check "user logship can read the config" runuser -u logship -- cat /etc/logship/logship.toml
check "user nobody cannot read the config" \
  bash -c '! runuser -u nobody -- cat /etc/logship/logship.toml >/dev/null 2>&1'

check "user logship exists" getent passwd logship
check "logship is a system user" test "$(id -u logship 2>/dev/null || echo 65536)" -lt 1000
check "logship cannot log in" \
  bash -c 'getent passwd logship | cut -d: -f7 | grep -qE "/(nologin|false)$"'
check "logship's primary group is logship" test "$(id -gn logship 2>/dev/null)" = logship
check "logship is in adm" bash -c 'id -nG logship | tr " " "\n" | grep -qx adm'
check "/var/lib/logship is logship:logship 0750" \
  test "$(stat -c '%U:%G %a' /var/lib/logship 2>/dev/null)" = "logship:logship 750"

echo "== reinstall keeps the operator's config"
echo "# edited by the operator" >>/etc/logship/logship.toml
check "dpkg -i of the same package again succeeds" dpkg -i "$deb"
check "edited conffile kept" grep -qx '# edited by the operator' /etc/logship/logship.toml

echo "== remove"
echo '{"checkpoint": "stand-in"}' >/var/lib/logship/checkpoints.json
check "dpkg -r succeeds" dpkg -r logship
check "binary removed" test ! -e /usr/bin/logship
check "unit removed" test ! -e "$unit"
check "conffile kept after remove" test -f /etc/logship/logship.toml
check "data kept after remove" test -f /var/lib/logship/checkpoints.json
check "user kept after remove" getent passwd logship

echo "== purge"
check "dpkg --purge succeeds" dpkg --purge logship
check "/etc/logship removed" test ! -e /etc/logship
check "/var/lib/logship removed" test ! -e /var/lib/logship
check "user logship removed" bash -c '! getent passwd logship >/dev/null'
check "group logship removed" bash -c '! getent group logship >/dev/null'
check "adm no longer lists logship" \
  bash -c '! getent group adm | cut -d: -f4 | tr , "\n" | grep -qx logship'
check "dpkg forgets the package" \
  bash -c '! dpkg-query -W -f "\${db:Status-Status}" logship 2>/dev/null | grep -qv "^not-installed$"'

summary
[[ $failed -eq 0 ]]
