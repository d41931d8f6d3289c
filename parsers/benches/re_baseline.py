#!/usr/bin/env python3
"""The baseline logship's parsers are measured against: a plain Python `re` parser per
format, written the way a user would write one (compiled regex, a dict per entry, the
timestamp parsed to an aware datetime, the level mapped), run on the same file.

Usage: re_baseline.py [--no-time] FORMAT FILE  ->  prints {"lines", "entries", "errors", "seconds",
"lines_per_second"} as JSON. Only parsing is timed, not reading the file.

To keep the comparison fair to Python, the timestamp parse keeps a one-entry cache (many
consecutive lines share a second), a trick the Rust parsers do not use. `--no-time` skips
the timestamp parse altogether (the time stays text): the baseline issue 14 names, a regex
that matches the line and builds the dict, nothing more.
"""

import csv
import io
import json
import re
import sys
import time
from datetime import datetime, timezone

NGINX_COMBINED = re.compile(
    r'(?P<remote_addr>.+?) - (?P<remote_user>.+?) \[(?P<time_local>[^\]]+)\] '
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<body_bytes_sent>\d+|-) '
    r'"(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)"'
)
REQUEST = re.compile(r'(?P<method>[A-Z_-]+) (?P<path>.+?)(?: (?P<protocol>HTTP/\S+))?$')

NGINX_ERROR = re.compile(
    r'(?P<time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?P<pid>\d+)#(?P<tid>\d+): '
    r'(?:\*(?P<connection>\d+) )?(?P<message>.*?)'
    r'(?:, client: (?P<client>[^,]*)(?:, server: (?P<server>[^,]*))?'
    r'(?:, request: "(?P<request>[^"]*)")?(?:, upstream: "(?P<upstream>[^"]*)")?'
    r'(?:, host: "(?P<host>[^"]*)")?(?:, referrer: "(?P<referrer>[^"]*)")?)?$',
    re.S,
)
NGINX_ERROR_HEADER = re.compile(r'\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[')

SYSLOG = re.compile(
    r'(?P<time>\w{3} [ \d]\d \d\d:\d\d:\d\d) (?P<hostname>\S+) '
    r'(?P<appname>[^\s\[:]+)(?:\[(?P<procid>\d+)\])?: (?P<message>.*)'
)

SYSLOG_5424 = re.compile(
    r'<(?P<pri>\d{1,3})>1 (?P<time>\S+) (?P<hostname>\S+) (?P<appname>\S+) (?P<procid>\S+) '
    r'(?P<msgid>\S+) (?P<sd>-|(?:\[(?:[^"\]]|"(?:[^"\\]|\\.)*")*\])+) ?(?P<message>.*)'
)
SD_ELEMENT = re.compile(r'\[(?P<id>[^ \]]+)(?P<params>(?:[^"\]]|"(?:[^"\\]|\\.)*")*)\]')
SD_PARAM = re.compile(r'(?P<name>[^ =]+)="(?P<value>(?:[^"\\]|\\.)*)"')
SD_UNESCAPE = re.compile(r'\\([\\"\]])')
SYSLOG_SEVERITIES = ['EMERGENCY', 'ALERT', 'CRITICAL', 'ERROR', 'WARN', 'NOTICE', 'INFO', 'DEBUG']

POSTGRES = re.compile(
    r'(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) (?P<tz>\S+) \[(?P<pid>\d+)\] '
    r'(?:(?P<user>\S*)@(?P<database>\S*) )?(?P<severity>[A-Z0-9]+):  (?P<message>.*)',
    re.S,
)
POSTGRES_CHILD = ('DETAIL', 'HINT', 'CONTEXT', 'STATEMENT', 'QUERY', 'LOCATION')

NGINX_LEVELS = {'debug': 'DEBUG', 'info': 'INFO', 'notice': 'NOTICE', 'warn': 'WARN',
                'error': 'ERROR', 'crit': 'CRITICAL', 'alert': 'ALERT', 'emerg': 'EMERGENCY'}
PG_LEVELS = {'LOG': 'INFO', 'INFO': 'INFO', 'NOTICE': 'NOTICE', 'WARNING': 'WARN',
             'ERROR': 'ERROR', 'FATAL': 'CRITICAL', 'PANIC': 'EMERGENCY'}


class CachedTime:
    """strptime with a one-entry cache."""

    def __init__(self, fmt, tz=None):
        self.fmt, self.tz, self.last, self.value = fmt, tz, None, None

    def __call__(self, text):
        if NO_TIME:
            return text
        if text != self.last:
            value = datetime.strptime(text, self.fmt)
            if self.tz is not None:
                value = value.replace(tzinfo=self.tz)
            self.last, self.value = text, value
        return self.value


def nginx(lines):
    parse_time = CachedTime('%d/%b/%Y:%H:%M:%S %z')
    out, errors = [], 0
    for line in lines:
        m = NGINX_COMBINED.match(line)
        if m is None:
            errors += 1
            continue
        fields = {k: v for k, v in m.groupdict().items() if v != '-'}
        r = REQUEST.match(m['request'])
        if r:
            fields.update({k: v for k, v in r.groupdict().items() if v is not None})
        status = int(m['status'])
        level = 'ERROR' if status >= 500 else 'WARN' if status >= 400 else 'INFO'
        out.append({'timestamp': parse_time(m['time_local']), 'level': level,
                    'message': line, 'fields': fields})
    return len(out), errors


def group(lines, starts_entry):
    """Joins continuation lines to the entry before them."""
    entry = None
    for line in lines:
        if entry is not None and not starts_entry(line, entry):
            entry.append(line)
            continue
        if entry is not None:
            yield '\n'.join(entry)
        entry = [line]
    if entry is not None:
        yield '\n'.join(entry)


def nginx_error(lines):
    parse_time = CachedTime('%Y/%m/%d %H:%M:%S', timezone.utc)
    out, errors = [], 0
    for entry in group(lines, lambda line, _: NGINX_ERROR_HEADER.match(line)):
        m = NGINX_ERROR.match(entry)
        if m is None:
            errors += 1
            continue
        d = m.groupdict()
        fields = {k: d[k] for k in ('pid', 'tid', 'connection', 'client', 'server', 'request',
                                     'upstream', 'host', 'referrer') if d[k] is not None}
        out.append({'timestamp': parse_time(d['time']), 'level': NGINX_LEVELS.get(d['level']),
                    'message': d['message'], 'fields': fields})
    return len(out), errors


def syslog(lines):
    parse_time = CachedTime('%Y %b %d %H:%M:%S', timezone.utc)
    year = datetime.now(timezone.utc).year
    out, errors = [], 0
    for line in lines:
        m = SYSLOG.match(line)
        if m is None:
            errors += 1
            continue
        d = m.groupdict()
        fields = {k: d[k] for k in ('hostname', 'appname', 'procid') if d[k] is not None}
        out.append({'timestamp': parse_time(f"{year} {d['time']}"), 'level': 'INFO',
                    'message': d['message'], 'fields': fields})
    return len(out), errors


def syslog_5424(lines):
    parse_time = CachedTime('%Y-%m-%dT%H:%M:%S.%f%z')
    out, errors = [], 0
    for line in lines:
        m = SYSLOG_5424.match(line)
        if m is None:
            errors += 1
            continue
        d = m.groupdict()
        fields = {k: d[k] for k in ('hostname', 'appname', 'procid', 'msgid') if d[k] != '-'}
        if d['sd'] != '-':
            for e in SD_ELEMENT.finditer(d['sd']):
                for p in SD_PARAM.finditer(e['params']):
                    fields[f"sd.{e['id']}.{p['name']}"] = SD_UNESCAPE.sub(r'\1', p['value'])
        pri = int(d['pri'])
        out.append({'timestamp': parse_time(d['time']), 'level': SYSLOG_SEVERITIES[pri % 8],
                    'message': d['message'], 'fields': fields})
    return len(out), errors


def postgres(lines):
    parse_time = CachedTime('%Y-%m-%d %H:%M:%S.%f')
    out, errors = [], 0

    def starts_entry(line, entry):
        if line.startswith('\t'):
            return False
        m = POSTGRES.match(line)
        return not (m and m['severity'] in POSTGRES_CHILD)

    for entry in group(lines, starts_entry):
        head, *rest = entry.split('\n')
        m = POSTGRES.match(head)
        if m is None:
            errors += 1
            continue
        d = m.groupdict()
        message = [d['message']]
        fields = {k: d[k] for k in ('pid', 'user', 'database') if d[k] is not None}
        for line in rest:
            child = POSTGRES.match(line)
            if child and child['severity'] in POSTGRES_CHILD:
                fields[child['severity'].lower()] = child['message']
            else:
                message.append(line.lstrip('\t'))
        stamp = parse_time(d['time'])
        if not NO_TIME:
            stamp = stamp.replace(tzinfo=timezone.utc if d['tz'] == 'UTC' else None)
        out.append({'timestamp': stamp, 'level': PG_LEVELS.get(d['severity'], 'DEBUG'),
                    'message': '\n'.join(message), 'fields': fields})
    return len(out), errors


CSV_COLUMNS = ['log_time', 'user', 'database', 'pid', 'connection_from', 'session_id',
               'line_num', 'command_tag', 'session_start', 'virtual_xid', 'xid', 'severity',
               'sql_state', 'message', 'detail', 'hint', 'query', 'query_pos', 'context',
               'statement', 'statement_pos', 'location', 'application_name', 'backend_type',
               'leader_pid', 'query_id']


def pg_time(parse_time, text):
    if NO_TIME:
        return text
    stamp, _, zone = text.rpartition(' ')
    return parse_time(stamp).replace(tzinfo=timezone.utc if zone == 'UTC' else None)


def postgres_csv(lines):
    parse_time = CachedTime('%Y-%m-%d %H:%M:%S.%f')
    out, errors = [], 0
    for row in csv.reader(io.StringIO('\n'.join(lines))):
        if len(row) not in (22, 23, 24, 26):
            errors += 1
            continue
        fields = {k: v for k, v in zip(CSV_COLUMNS, row) if v}
        out.append({'timestamp': pg_time(parse_time, row[0]),
                    'level': PG_LEVELS.get(row[11], 'DEBUG'),
                    'message': fields.pop('message', ''), 'fields': fields})
    return len(out), errors


def postgres_json(lines):
    parse_time = CachedTime('%Y-%m-%d %H:%M:%S.%f')
    out, errors = [], 0
    for line in lines:
        try:
            d = json.loads(line)
        except ValueError:
            errors += 1
            continue
        fields = {k: str(v) for k, v in d.items()
                  if k not in ('timestamp', 'message', 'error_severity')}
        out.append({'timestamp': pg_time(parse_time, d['timestamp']),
                    'level': PG_LEVELS.get(d.get('error_severity'), 'DEBUG'),
                    'message': d.get('message', ''), 'fields': fields})
    return len(out), errors


PARSERS = {'nginx': nginx, 'nginx-error': nginx_error, 'syslog': syslog, 'syslog-5424': syslog_5424,
           'postgres': postgres, 'postgres-csv': postgres_csv, 'postgres-json': postgres_json}


NO_TIME = False


def main():
    global NO_TIME
    args = sys.argv[1:]
    if args and args[0] == '--no-time':
        NO_TIME = True
        args = args[1:]
    fmt, path = args[0], args[1]
    with open(path, encoding='utf-8', errors='replace', newline='\n') as f:
        lines = f.read().split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    start = time.perf_counter()
    entries, errors = PARSERS[fmt](lines)
    seconds = time.perf_counter() - start
    json.dump({'lines': len(lines), 'entries': entries, 'errors': errors, 'seconds': seconds,
               'lines_per_second': len(lines) / seconds}, sys.stdout)
    print()


if __name__ == '__main__':
    main()
