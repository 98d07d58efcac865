//! Scheduled backups and `pgbackrest verify` (policy `schedule:`): one systemd service and
//! timer per job, running pgBackRest as the backup user with the repository-side
//! configuration, sandboxed like the TLS server (only the repository and the backup
//! user's lock and log directories writable; the TLS keys and pgbr-policy's state out of
//! view; no network but Unix sockets), and the same jobs as a cron.d file for hosts
//! without systemd.

use crate::policy::Cluster;
use crate::policy::model::JobKind;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct SchedulePlan {
    pub jobs: Vec<JobPlan>,
    /// The cron.d fallback: in the tree, and where to install it by hand.
    pub cron_file: String,
    pub cron_target: String,
    /// What the job services may write and must not see.
    pub sandbox: JobSandbox,
    /// The units of the kinds this policy does not schedule: apply.sh disables and
    /// removes them if an earlier tree installed them.
    pub retired_units: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobPlan {
    pub kind: JobKind,
    /// `full`, `diff`, `incr`, `verify`.
    pub kind_name: &'static str,
    pub calendar: String,
    /// The calendar expression's words (a unit file value is written word by word).
    pub calendar_words: Vec<String>,
    pub service_name: String,
    pub timer_name: String,
    /// In the tree, relative to the cluster's directory.
    pub service_file: String,
    pub timer_file: String,
    pub description: String,
    /// The command, word by word (every word validated: no space, quote or `%`).
    pub argv: Vec<String>,
    /// The same schedule as cron's five fields, when the calendar has a cron equivalent.
    pub cron: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobSandbox {
    pub read_write_paths: Vec<String>,
    pub inaccessible_paths: Vec<String>,
    /// `yes`, or `read-only` when a path the job needs lies under /home, /root or /run/user.
    pub protect_home: &'static str,
}

const HOME_ROOTS: [&str; 3] = ["/home", "/root", "/run/user"];

pub fn plan(c: &Cluster, include_path: Option<&str>) -> SchedulePlan {
    let pb = &c.pgbackrest;
    let mut base = vec![pb.binary.to_string(), format!("--config={}", pb.repository_config)];
    if let Some(dir) = include_path {
        base.push(format!("--config-include-path={dir}"));
    }
    base.push(format!("--stanza={}", pb.stanza));
    base.push("--log-level-console=warn".into());
    let jobs: Vec<JobPlan> = c
        .schedule
        .iter()
        .map(|job| {
            let kind_name = job.kind.name();
            let unit = match job.kind {
                JobKind::Verify => format!("pgbr-verify-{}", c.name),
                _ => format!("pgbr-backup-{kind_name}-{}", c.name),
            };
            let mut argv = base.clone();
            let description = match job.kind {
                JobKind::Verify => {
                    argv.push("verify".into());
                    format!("pgBackRest verify of stanza {} (cluster {})", pb.stanza, c.name)
                }
                _ => {
                    argv.push(format!("--type={kind_name}"));
                    argv.push("backup".into());
                    let what = match job.kind {
                        JobKind::Full => "full",
                        JobKind::Diff => "differential",
                        _ => "incremental",
                    };
                    format!("pgBackRest {what} backup of stanza {} (cluster {})", pb.stanza, c.name)
                }
            };
            JobPlan {
                kind: job.kind,
                kind_name,
                calendar: job.calendar.clone(),
                calendar_words: job.calendar.split(' ').map(str::to_owned).collect(),
                service_file: format!("systemd/{unit}.service"),
                timer_file: format!("systemd/{unit}.timer"),
                service_name: format!("{unit}.service"),
                timer_name: format!("{unit}.timer"),
                description,
                argv,
                cron: cron_of(&job.calendar).map(|c| c.split(' ').map(str::to_owned).collect()),
            }
        })
        .collect();
    // A bucket is reached over the network: no repository directory to write.
    let mut read_write_paths = Vec::new();
    if c.s3.is_none() {
        read_write_paths.push(pb.repository.to_string());
    }
    read_write_paths.extend([pb.backup_user_lock.to_string(), pb.backup_user_log.to_string()]);
    let mut needed: Vec<String> = read_write_paths.clone();
    if matches!(c.role.auth, crate::policy::Auth::Scram(_)) {
        needed.push(c.backup_user.home.to_string()); // its .pgpass
    }
    let under_home = needed
        .iter()
        .any(|p| HOME_ROOTS.iter().any(|h| p == h || p.starts_with(&format!("{h}/"))));
    let planned: Vec<String> = jobs
        .iter()
        .flat_map(|j: &JobPlan| [j.timer_name.clone(), j.service_name.clone()])
        .collect();
    let retired_units = ["backup-full", "backup-diff", "backup-incr", "verify"]
        .iter()
        .flat_map(|k| {
            [
                format!("pgbr-{k}-{}.timer", c.name),
                format!("pgbr-{k}-{}.service", c.name),
            ]
        })
        .filter(|u| !planned.contains(u))
        .collect();
    SchedulePlan {
        retired_units,
        jobs,
        cron_file: format!("cron/pgbr-{}", c.name),
        cron_target: format!("/etc/cron.d/pgbr-{}", c.name),
        sandbox: JobSandbox {
            read_write_paths,
            inaccessible_paths: vec![pb.tls_directory.to_string(), super::sandbox::STATE_ROOT.to_owned()],
            protect_home: if under_home { "read-only" } else { "yes" },
        },
    }
}

/// cron's five fields for the calendar shapes that have one: `hourly`, `daily`, `weekly`,
/// `monthly`, and `[DAYS ]*-*-* HH:MM[:00]` with DAYS a day, a list or a range of days
/// (`Sun`, `Mon..Sat`, `Sat,Sun`), HH and MM a number, a list, `*` or `N/STEP`.
pub fn cron_of(calendar: &str) -> Option<String> {
    match calendar {
        "hourly" => return Some("0 * * * *".into()),
        "daily" => return Some("0 0 * * *".into()),
        "weekly" => return Some("0 0 * * 1".into()),
        "monthly" => return Some("0 0 1 * *".into()),
        _ => {}
    }
    let parts: Vec<&str> = calendar.split(' ').collect();
    let (days, date, time) = match parts.as_slice() {
        [date, time] => ("*".to_owned(), *date, *time),
        [days, date, time] => (cron_days(days)?, *date, *time),
        _ => return None,
    };
    if date != "*-*-*" {
        return None;
    }
    let fields: Vec<&str> = time.split(':').collect();
    let (hour, minute) = match fields.as_slice() {
        [h, m] => (*h, *m),
        [h, m, s] if matches!(*s, "0" | "00") => (*h, *m),
        _ => return None,
    };
    Some(format!(
        "{} {} * * {days}",
        cron_number(minute, 59)?,
        cron_number(hour, 23)?
    ))
}

fn cron_number(field: &str, max: u32) -> Option<String> {
    if field == "*" {
        return Some("*".into());
    }
    if let Some((start, step)) = field.split_once('/') {
        let (start, step) = (start.parse::<u32>().ok()?, step.parse::<u32>().ok()?);
        return (start <= max && step > 0).then(|| format!("{start}-{max}/{step}"));
    }
    let numbers: Option<Vec<u32>> = field
        .split(',')
        .map(|n| n.parse::<u32>().ok().filter(|n| *n <= max))
        .collect();
    Some(numbers?.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
}

fn cron_days(days: &str) -> Option<String> {
    const NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let day = |name: &str| NAMES.iter().position(|n| n.eq_ignore_ascii_case(name));
    let mut out = Vec::new();
    for item in days.split(',') {
        match item.split_once("..") {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                if a > b {
                    return None;
                }
                out.push(format!("{a}-{b}"));
            }
            None => out.push(day(item)?.to_string()),
        }
    }
    Some(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendars_become_cron_fields_or_nothing() {
        for (calendar, cron) in [
            ("Sun *-*-* 01:00:00", Some("0 1 * * 0")),
            ("Mon..Sat *-*-* 01:00:00", Some("0 1 * * 1-6")),
            ("Sat,Sun *-*-* 04:30", Some("30 4 * * 6,0")),
            ("*-*-* *:00/15:00", Some("0-59/15 * * * *")),
            ("*-*-* 02,14:05", Some("5 2,14 * * *")),
            ("daily", Some("0 0 * * *")),
            ("*-*-01 03:00:00", None),
            ("Sun *-*-* 01:00:30", None),
            ("Sat..Mon *-*-* 01:00", None),
            ("*-*-* 25:00", None),
        ] {
            assert_eq!(cron_of(calendar).as_deref(), cron, "{calendar}");
        }
    }
}
