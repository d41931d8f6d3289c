//! `logship query`: rows on stdout, what was queried on stderr; exit 0 with rows or none,
//! 1 when Cassandra fails, 2 on bad flags.

use std::io::{IsTerminal as _, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use logship::config::Config;
use logship::query::{
    Count, Filter, LogRow, Order, QueryError, Reader, StreamInfo, Tables, parse_field, parse_level,
    parse_regex, parse_time,
};
use logship::sink::CassandraConfig;

use crate::app::exit;
use crate::cli::{OutputArg, QueryArgs};

/// Exit status for bad flags (as clap uses for its own errors).
const BAD_FLAGS: u8 = 2;
/// `-n` without `--since`.
const DEFAULT_LINES: usize = 100;
/// How often `-f` asks for new rows.
const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// How far back `-f` looks for rows stamped before they were written.
const FOLLOW_LOOKBACK_SECS: i64 = 10;
const DEFAULT_CONFIG: &str = "/etc/logship/logship.toml";

pub(super) fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let tz = if args.utc {
        TimeZone::UTC
    } else {
        TimeZone::system()
    };
    let filter = match build_filter(&args, Timestamp::now(), &tz) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("logship query: {e}");
            return Ok(ExitCode::from(BAD_FLAGS));
        }
    };
    let interval = match logship::duration::parse(&args.interval) {
        Ok(d) if d.as_secs() >= 1 => d,
        Ok(_) => {
            eprintln!("logship query: bad --interval: must be at least 1s");
            return Ok(ExitCode::from(BAD_FLAGS));
        }
        Err(e) => {
            eprintln!("logship query: bad --interval {:?}: {e}", args.interval);
            return Ok(ExitCode::from(BAD_FLAGS));
        }
    };
    let cassandra = match cassandra_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logship query: invalid configuration: {e}");
            return Ok(ExitCode::from(exit::CONFIG));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = Output {
        format: args.output,
        tz,
        colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let result = runtime.block_on(query(&args, &filter, &cassandra, &out, interval));
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Failure::Query(e)) if e.is_bad_input() => {
            eprintln!("logship query: {e}");
            Ok(ExitCode::from(BAD_FLAGS))
        }
        Err(Failure::Query(e)) => {
            eprintln!("logship query: {e}");
            Ok(ExitCode::from(exit::FAILURE))
        }
        // The reader went away (`| head`): not an error.
        Err(Failure::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(Failure::Io(e)) => {
            eprintln!("logship query: writing the output: {e}");
            Ok(ExitCode::from(exit::FAILURE))
        }
    }
}

enum Failure {
    Query(QueryError),
    Io(std::io::Error),
}

impl From<QueryError> for Failure {
    fn from(e: QueryError) -> Self {
        Failure::Query(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

fn cassandra_config(path: Option<&Path>) -> Result<CassandraConfig, String> {
    let path = match path {
        Some(p) => p,
        None if Path::new(DEFAULT_CONFIG).exists() => Path::new(DEFAULT_CONFIG),
        None => return Ok(CassandraConfig::default()),
    };
    Config::load(path)
        .map(|c| c.cassandra)
        .map_err(|e| e.to_string())
}

/// The filter the flags describe. `--list-sources` and `--count` read the last 24 hours
/// unless `--since` says otherwise.
fn build_filter(args: &QueryArgs, now: Timestamp, tz: &TimeZone) -> Result<Filter, QueryError> {
    let mut f = Filter {
        tables: Tables::parse(&args.table)?,
        names: args.sources.clone(),
        hosts: args.hosts.clone(),
        min_level: args.priority.as_deref().map(parse_level).transpose()?,
        from: args
            .since
            .as_deref()
            .map(|t| parse_time(t, now, tz))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| parse_time(t, now, tz))
            .transpose()?,
        request_id: args.request_id.clone(),
        trace_id: args.trace_id.clone(),
        fields: args
            .fields
            .iter()
            .map(|f| parse_field(f))
            .collect::<Result<_, _>>()?,
        message: args.grep.as_deref().map(parse_regex).transpose()?,
    };
    if (args.list_sources || args.count) && f.from.is_none() {
        f.from = Some(now - jiff::SignedDuration::from_hours(24));
    }
    if let (Some(a), Some(b)) = (f.from, f.until) {
        if a >= b {
            return Err(QueryError::BadFilter {
                what: "time range",
                reason: format!("--since {a} is not before --until {b}"),
            });
        }
    }
    Ok(f)
}

async fn query(
    args: &QueryArgs,
    filter: &Filter,
    cassandra: &CassandraConfig,
    out: &Output,
    interval: Duration,
) -> Result<(), Failure> {
    let reader = Reader::connect(cassandra).await?;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let say = |what: &str| {
        if !args.quiet {
            eprintln!(
                "-- {what} {} (keyspace {} at {})",
                describe(filter, out),
                cassandra.keyspace,
                cassandra.endpoints_display()
            );
        }
    };
    if args.list_sources {
        say("streams");
        let streams = reader.streams(filter).await?;
        out.streams(&mut w, &streams)?;
        w.flush()?;
        return Ok(());
    }
    if args.count {
        say(&format!("rows per source per level per {}", args.interval));
        let counts = reader.counts(filter, interval).await?;
        out.counts(&mut w, &counts)?;
        w.flush()?;
        return Ok(());
    }
    say("rows");
    let order = if args.reverse {
        Order::Descending
    } else {
        Order::Ascending
    };
    let mut printed: Vec<LogRow> = Vec::new();
    let mut count = 0_usize;
    let n = args
        .lines
        .or(filter.from.is_none().then_some(DEFAULT_LINES));
    // Rows printed within the follow lookback, so `-f` does not print them again.
    let recent_from = (Timestamp::now()
        - jiff::SignedDuration::from_secs(2 * FOLLOW_LOOKBACK_SECS))
    .as_millisecond();
    match n {
        Some(n) => {
            let mut rows = reader.newest(filter, n).await?;
            if args.reverse {
                rows.reverse();
            }
            for row in &rows {
                out.row(&mut w, row)?;
            }
            count = rows.len();
            printed = rows;
        }
        None => {
            let mut stream = reader.rows(filter, order);
            while let Some(row) = stream.next().await? {
                out.row(&mut w, &row)?;
                count += 1;
                if args.follow && row.ts_ms >= recent_from {
                    printed.push(row);
                }
            }
        }
    }
    w.flush()?;
    if !args.follow {
        if !args.quiet {
            eprintln!("-- {count} rows");
        }
        return Ok(());
    }
    // Rows that land now may be stamped a little earlier (flush units, clock skew): start
    // the lookback before now, skipping what was printed, but never before the oldest
    // printed row when -n cut the output (that would print older rows out of order).
    let mut follow_filter = filter.clone();
    follow_filter.until = None;
    let mut start = Timestamp::now() - jiff::SignedDuration::from_secs(FOLLOW_LOOKBACK_SECS);
    if n.is_some_and(|n| printed.len() >= n) {
        if let Some(oldest) = printed.iter().map(|r| r.timestamp).min() {
            start = start.max(oldest);
        }
    }
    follow_filter.from = Some(follow_filter.from.map_or(start, |f| f.max(start)));
    let mut follow = reader.follow(&follow_filter);
    follow.already_seen(&printed);
    drop(printed);
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        for row in follow.poll().await? {
            out.row(&mut w, &row)?;
        }
        w.flush()?;
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            () = tokio::time::sleep(FOLLOW_POLL) => {}
        }
    }
}

/// The filters in words, for the stderr line.
fn describe(f: &Filter, out: &Output) -> String {
    let mut parts = vec![match f.tables {
        Tables::Infrastructure => "in infrastructure_logs".to_owned(),
        Tables::Application => "in application_logs".to_owned(),
        _ => "in both tables".to_owned(),
    }];
    if !f.names.is_empty() {
        parts.push(format!("of {}", f.names.join(", ")));
    }
    if !f.hosts.is_empty() {
        parts.push(format!("on {}", f.hosts.join(", ")));
    }
    if let Some(l) = f.min_level {
        parts.push(format!("at {} or above", l.as_str()));
    }
    let time = |t: Timestamp| out.time_iso(t);
    match (f.from, f.until) {
        (Some(a), Some(b)) => parts.push(format!("from {} to {}", time(a), time(b))),
        (Some(a), None) => parts.push(format!("since {}", time(a))),
        (None, Some(b)) => parts.push(format!("before {}", time(b))),
        (None, None) => {}
    }
    if let Some(id) = &f.request_id {
        parts.push(format!("with request id {id}"));
    }
    if let Some(id) = &f.trace_id {
        parts.push(format!("with trace id {id}"));
    }
    for (k, v) in &f.fields {
        parts.push(format!("where {k} = {v}"));
    }
    if let Some(re) = &f.message {
        parts.push(format!("matching /{re}/"));
    }
    parts.join(" ")
}

struct Output {
    format: OutputArg,
    tz: TimeZone,
    colour: bool,
}

impl Output {
    fn time_iso(&self, t: Timestamp) -> String {
        t.to_zoned(self.tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string()
    }

    fn row(&self, w: &mut impl Write, row: &LogRow) -> std::io::Result<()> {
        match self.format {
            OutputArg::Json => {
                serde_json::to_writer(&mut *w, row)?;
                writeln!(w)
            }
            OutputArg::Cat => writeln!(w, "{}", row.message),
            OutputArg::Short | OutputArg::ShortIso => {
                let time = match self.format {
                    OutputArg::Short => row
                        .timestamp
                        .to_zoned(self.tz.clone())
                        .strftime("%b %d %H:%M:%S%.3f")
                        .to_string(),
                    _ => self.time_iso(row.timestamp),
                };
                let (on, off) = if self.colour {
                    (level_colour(&row.level), "\x1b[0m")
                } else {
                    ("", "")
                };
                writeln!(
                    w,
                    "{time} {} {} {on}{}: {}{off}",
                    row.host, row.name, row.level, row.message
                )
            }
        }
    }

    fn streams(&self, w: &mut impl Write, streams: &[StreamInfo]) -> std::io::Result<()> {
        if self.format == OutputArg::Json {
            for s in streams {
                serde_json::to_writer(&mut *w, s)?;
                writeln!(w)?;
            }
            return Ok(());
        }
        let mut table = vec![[
            "TABLE".to_owned(),
            "SOURCE".to_owned(),
            "HOST".to_owned(),
            "BUCKET".to_owned(),
            "FIRST SEEN".to_owned(),
            "LAST SEEN".to_owned(),
        ]];
        for s in streams {
            table.push([
                s.table.name().to_owned(),
                s.name.clone(),
                s.host.clone(),
                format!("{}s", s.bucket_seconds),
                self.time_iso(s.first_seen),
                self.time_iso(s.last_seen),
            ]);
        }
        print_table(w, &table)
    }

    fn counts(&self, w: &mut impl Write, counts: &[Count]) -> std::io::Result<()> {
        if self.format == OutputArg::Json {
            for c in counts {
                serde_json::to_writer(&mut *w, c)?;
                writeln!(w)?;
            }
            return Ok(());
        }
        let mut table = vec![[
            "INTERVAL".to_owned(),
            "SOURCE".to_owned(),
            "LEVEL".to_owned(),
            "COUNT".to_owned(),
        ]];
        for c in counts {
            table.push([
                self.time_iso(c.start),
                c.name.clone(),
                c.level.clone(),
                c.count.to_string(),
            ]);
        }
        print_table(w, &table)
    }
}

fn print_table<const N: usize>(w: &mut impl Write, rows: &[[String; N]]) -> std::io::Result<()> {
    let mut widths = [0_usize; N];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

/// journalctl's colours: red and bold for errors and worse, yellow for warnings, bold for
/// notices, grey for debug.
fn level_colour(level: &str) -> &'static str {
    match level {
        "ERROR" | "CRITICAL" | "ALERT" | "EMERGENCY" => "\x1b[1;31m",
        "WARN" => "\x1b[33m",
        "NOTICE" => "\x1b[1m",
        "DEBUG" => "\x1b[2m",
        _ => "",
    }
}
