//! What a change board reads first (CHANGE.md's header and its risks): a one-line
//! summary, a risk rating with its reasons, the expected downtime, what is affected, and
//! the risks this change itself creates, as sentences decided here from the policy.

use crate::policy::model::JobKind;
use crate::policy::{Auth, Cluster};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ChangePlan {
    pub summary: String,
    /// `medium` or `high` (every change edits pg_hba.conf and the data directory's modes).
    pub risk: &'static str,
    pub risk_reasons: Vec<String>,
    pub downtime: String,
    /// What the change touches: the hosts and what on them.
    pub affected: Vec<String>,
    /// The risks this change creates, each a sentence with what to do about it.
    pub risks: Vec<String>,
}

pub fn plan(c: &Cluster) -> ChangePlan {
    let pb = &c.pgbackrest;
    let mut summary = format!(
        "Back up cluster {} (PostgreSQL {}) with pgBackRest as the OS user {} through the role {}, which can run the backup functions and read no data",
        c.name, c.postgres.major, c.backup_user.name, c.role.name
    );
    if c.archive_managed {
        summary.push_str("; archive WAL through pgBackRest's TLS server");
    }
    if !c.schedule.is_empty() {
        let kinds: Vec<&str> = c.schedule.iter().map(|j| j.kind.name()).collect();
        summary.push_str(&format!("; schedule {}", kinds.join(", ")));
    }
    summary.push('.');

    let mut risk = "medium";
    let mut risk_reasons = vec![
        "pg_hba.conf and pg_ident.conf change (validated before the reload, restored byte for byte if validation fails) and the data directory gets group read".to_owned(),
    ];
    if c.archive_managed {
        risk = "high";
        risk_reasons.push(
            "WAL archiving switches to pgBackRest through the TLS server: while that server is down, archive_command fails and WAL accumulates in pg_wal until the disk fills".to_owned(),
        );
    }
    if c.patroni.is_some() {
        risk = "high";
        risk_reasons.push("Patroni's dynamic configuration changes for every member of the cluster".to_owned());
    }

    let restart_via = if c.patroni.is_some() {
        "patronictl restart"
    } else {
        "a restart of PostgreSQL"
    };
    let downtime = format!(
        "None, unless shell/apply.sh ends with RESTART REQUIRED (the data directory's mode is not yet 0750 in the running server{}): then {restart_via}, done only with --restart or in your window. shell/apply.sh --dry-run on the host says in advance.",
        if c.archive_managed {
            ", or archive_mode was off"
        } else {
            ""
        }
    );

    let mut affected = vec![format!(
        "The database host of cluster {}: PostgreSQL {} in {} (socket {}, port {}), where shell/apply.sh runs as root.",
        c.name, c.postgres.major, c.postgres.data_directory, c.postgres.socket_directory, c.postgres.port
    )];
    affected.push(format!(
        "On that host: the OS user {} (created if missing), the role {} in database {}, the repository {}, pgBackRest's configuration in {} and {}, the TLS server {} on {} port {}.",
        c.backup_user.name,
        c.role.name,
        c.role.database,
        pb.repository,
        pb.repository_config,
        pb.database_config,
        format_args!("pgbr-tls-{}.service", c.name),
        pb.tls_address,
        pb.tls_port
    ));
    if let Some(p) = &c.patroni {
        affected.push(format!(
            "Every member of the Patroni cluster configured by {}: the fragment is merged on each, shell/apply.sh runs on each (the database steps only on the leader).",
            p.config_file
        ));
    }

    let mut risks = Vec::new();
    let full_backup = format!(
        "runuser -u {} -- {} --config={}{} --stanza={} --type=full backup",
        c.backup_user.name,
        pb.binary,
        pb.repository_config,
        super::pgbackrest::cipher_plan(c)
            .map(|x| format!(" --config-include-path={}", x.include_path))
            .unwrap_or_default(),
        pb.stanza
    );
    if c.archive_managed {
        risks.push(format!(
            "Switching archive_command starts a new WAL chain in this repository: WAL archived elsewhere before the switch is not in it, so point-in-time recovery with this stanza starts at its first backup. Take a full backup right after apply: {full_backup}."
        ));
    }
    risks.push(format!(
        "The repository {} is on the database host's own disk: it shares that host's failure domain (losing the disk or the host loses the backups with the data). Copy the backups off this host until they live on a repository host or in object storage.",
        pb.repository
    ));
    if matches!(c.role.auth, Auth::Scram(_)) {
        risks.push(
            "scram-sha-256 needs the pgbr-policy binary on the database host at apply time (it computes the SCRAM verifier, so the password never reaches the server): put it on PATH or set PGBR_POLICY; shell/apply.sh checks for it before it changes anything.".to_owned(),
        );
    }
    if let Some(cipher) = super::pgbackrest::cipher_plan(c) {
        risks.push(format!(
            "The repository is encrypted with the passphrase in {}: without it every backup is unreadable. Keep a copy of it off this host; a repository keeps the passphrase it was created with.",
            cipher.passphrase_file
        ));
    }
    if c.schedule.iter().any(|j| j.kind != JobKind::Verify) {
        risks.push(
            "Scheduled backups now read the whole data directory at their times (I/O on the database host): check the calendars against the busy hours.".to_owned(),
        );
    }
    ChangePlan {
        summary,
        risk,
        risk_reasons,
        downtime,
        affected,
        risks,
    }
}
