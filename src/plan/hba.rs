//! pg_hba.conf and pg_ident.conf lines in first-match order (facts.md §2): the role's
//! one allowed line, then a reject for every other database over the socket, then a
//! reject for any TCP attempt, then the same two for replication connections (which
//! `all` does not match); all of it placed above every broader line.

use crate::policy::{Auth, Cluster};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct HbaLine {
    /// `local` or `host`: keywords.
    pub kind: &'static str,
    /// A database name (escaped by the `hba` filter) or the `all` keyword.
    pub database: String,
    pub database_is_keyword: bool,
    pub user: String,
    /// `all` for host lines; empty for local.
    pub address: &'static str,
    pub method: &'static str,
    /// `map=<name>` for peer: the map name is a plain identifier we make.
    pub options: String,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdentLine {
    pub map: String,
    pub system_user: String,
    pub database_user: String,
}

/// The pg_ident map name: derived from the cluster name, which is `[a-z0-9_-]`.
pub fn ident_map(c: &Cluster) -> String {
    format!("pgbr_{}", c.name.as_str().replace('-', "_"))
}

pub fn hba_lines(c: &Cluster) -> Vec<HbaLine> {
    let role = c.role.name.to_string();
    let (method, options) = match c.role.auth {
        Auth::Peer => ("peer", format!("map={}", ident_map(c))),
        Auth::Scram(_) => ("scram-sha-256", String::new()),
    };
    vec![
        HbaLine {
            kind: "local",
            database: c.role.database.to_string(),
            database_is_keyword: false,
            user: role.clone(),
            address: "",
            method,
            options,
            reason: "the backup role may connect to this one database, over the Unix socket only",
        },
        HbaLine {
            kind: "local",
            database: "all".into(),
            database_is_keyword: true,
            user: role.clone(),
            address: "",
            method: "reject",
            options: String::new(),
            reason: "any other database is refused before a broader line can match",
        },
        HbaLine {
            kind: "host",
            database: "all".into(),
            database_is_keyword: true,
            user: role.clone(),
            address: "all",
            method: "reject",
            options: String::new(),
            reason: "no TCP connection at all (pgBackRest uses only the socket)",
        },
        // `all` in the database field does not match replication connections: without
        // these, a broader `replication` line further down could still let the role in.
        HbaLine {
            kind: "local",
            database: "replication".into(),
            database_is_keyword: true,
            user: role.clone(),
            address: "",
            method: "reject",
            options: String::new(),
            reason: "no replication connection over the socket (`all` above does not cover replication; pgBackRest never uses it)",
        },
        HbaLine {
            kind: "host",
            database: "replication".into(),
            database_is_keyword: true,
            user: role,
            address: "all",
            method: "reject",
            options: String::new(),
            reason: "no replication connection over TCP",
        },
    ]
}

pub fn ident_lines(c: &Cluster) -> Vec<IdentLine> {
    match c.role.auth {
        Auth::Peer => vec![IdentLine {
            map: ident_map(c),
            system_user: c.backup_user.name.to_string(),
            database_user: c.role.name.to_string(),
        }],
        Auth::Scram(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replication_is_rejected_too() {
        let text = "version: 1\nclusters:\n  - name: c\n    postgres: {major: 15}\n";
        let loaded = crate::policy::parse(text.as_bytes(), std::path::Path::new("p.yaml"), "p.yaml").unwrap();
        let lines = super::hba_lines(&loaded.policy.clusters[0]);
        let rules: Vec<String> = lines
            .iter()
            .map(|l| format!("{} {} {} {}", l.kind, l.database, l.user, l.method))
            .collect();
        assert_eq!(
            rules,
            [
                "local postgres pgbackrest peer",
                "local all pgbackrest reject",
                "host all pgbackrest reject",
                "local replication pgbackrest reject",
                "host replication pgbackrest reject",
            ]
        );
        assert!(lines[3].database_is_keyword && lines[4].address == "all");
    }
}
