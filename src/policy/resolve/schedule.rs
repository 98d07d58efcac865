//! `schedule:`: when the backups of each type and `pgbackrest verify` run, as systemd
//! calendar expressions (`OnCalendar=`). Defaults: a full backup on Sunday at 01:00, a
//! differential one the other days at 01:00, no incremental one, verify on Saturday at
//! 04:00. `none` turns a kind off.

use crate::policy::fields::{Fields, at};
use crate::policy::model::{JobKind, ScheduledJob};
use crate::policy::raw::{S, ScheduleSpec};

pub const DEFAULTS: [(JobKind, Option<&str>); 4] = [
    (JobKind::Full, Some("Sun *-*-* 01:00:00")),
    (JobKind::Diff, Some("Mon..Sat *-*-* 01:00:00")),
    (JobKind::Incr, None),
    (JobKind::Verify, Some("Sat *-*-* 04:00:00")),
];

/// A calendar expression the units and the cron fallback can carry as written: systemd's
/// own characters only (no quote, `%`, `$`, `;`, backslash or control character, which a
/// unit file or a crontab line would read as something else), at most 100 of them.
pub fn check_calendar(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 100 {
        return Err("must be a systemd calendar expression of 1 to 100 characters (or none)".into());
    }
    if text.starts_with(['-', ' ']) || text.ends_with(' ') {
        return Err("must not start with `-` or a space, nor end with a space".into());
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '.' | '/' | ':' | '~' | '-' | ' ' | '+')))
    {
        return Err(format!(
            "holds `{}`: a systemd calendar expression uses letters, digits, space and * , . / : ~ - + only (`systemd-analyze calendar` checks one)",
            crate::policy::names::printable(&c.to_string())
        ));
    }
    Ok(())
}

pub fn resolve(f: &mut Fields<'_, '_>, spec: Option<&ScheduleSpec>) -> Option<Vec<ScheduledJob>> {
    let spec = spec.cloned().unwrap_or_default();
    let given = |kind: JobKind| -> Option<&S<String>> {
        match kind {
            JobKind::Full => spec.full.as_ref(),
            JobKind::Diff => spec.diff.as_ref(),
            JobKind::Incr => spec.incr.as_ref(),
            JobKind::Verify => spec.verify.as_ref(),
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (kind, default) in DEFAULTS {
        let calendar = match given(kind) {
            Some(v) if v.value == "none" => continue,
            Some(v) => match check_calendar(&v.value) {
                Ok(()) => v.value.clone(),
                Err(message) => {
                    let path = f.path(&format!("schedule.{}", kind.name()));
                    f.out.error(at(v), &path, message);
                    ok = false;
                    continue;
                }
            },
            None => match default {
                Some(d) => d.to_owned(),
                None => continue,
            },
        };
        out.push(ScheduledJob { kind, calendar });
    }
    if ok && !out.iter().any(|j| j.kind == JobKind::Full) && out.iter().any(|j| j.kind != JobKind::Verify) {
        // pgBackRest turns a diff or incr backup into a full one when none exists: legal,
        // but retention (retention_full) then never sees a full backup of its own.
        let v = spec.full.as_ref().and_then(at).or(f.cluster_at);
        let path = f.path("schedule.full");
        f.out.error(
            v,
            &path,
            "is none while differential or incremental backups are scheduled: schedule full backups too (retention counts them)",
        );
        ok = false;
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendars_keep_to_systemds_characters() {
        for good in [
            "Sun *-*-* 01:00:00",
            "Mon..Sat *-*-* 01:00",
            "*-*-* *:00/15:00",
            "hourly",
            "2026-01-01 00:00:00 UTC+01",
        ] {
            check_calendar(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "daily; rm -rf /",
            "daily\nExecStart=/bin/sh",
            "%H",
            "$(x)",
            "-daily",
            "a'b",
        ] {
            assert!(check_calendar(bad).is_err(), "{bad:?}");
        }
    }
}
