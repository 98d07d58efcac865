//! What the TLS server may see (facts.md §3, issue 12 item 9). `pgbackrest server` runs
//! as the backup user and loads the options its client sends: whoever holds the client
//! certificate (the cluster owner) can pass `--repo1-path=/any/dir` and read or write
//! every file the backup user can. Only the OS can confine it. This module decides, once,
//! what the server's file system looks like; the systemd unit (`ProtectSystem=strict`,
//! `ReadWritePaths=`, `InaccessiblePaths=`, …) and `--start-tls-server` without systemd
//! (bubblewrap, shell/lib/tls_server.sh) both follow [`SandboxPlan::mounts`].
//!
//! The rule: the whole file system read-only; writable only the repository and the
//! backup user's lock and log directories; readable besides only what the server loads
//! (its configuration file, its certificate and key, the CA certificate); hidden the
//! backup user's home, the data directory, pgbr-policy's state directory, the TLS
//! directory (the CA key, the client key), home directories and a private /tmp and
//! /var/tmp. A hidden directory with an exposed path below it (a repository inside the
//! home, a lock directory under /tmp) becomes an empty read-only directory with only that
//! path mounted again inside it.

use super::TlsPlan;
use crate::policy::Cluster;
use crate::policy::names::AbsPath;
use serde::Serialize;

/// The state directory of every cluster (shell/_plan.sh: STATE_DIR is below it).
pub const STATE_ROOT: &str = "/var/lib/pgbr-policy";

#[derive(Debug, Clone, Serialize)]
pub struct SandboxPlan {
    /// Every mount of the server's view, parents before the paths below them (the order
    /// bubblewrap applies its arguments in; systemd sorts by itself).
    pub mounts: Vec<SandboxMount>,
    /// `ProtectHome=`: `yes`, or `tmpfs` when an exposed path lies below /home, /root or
    /// /run/user (`yes` cannot have anything mounted inside it).
    pub protect_home: &'static str,
    /// `ReadWritePaths=`: exposed read-write paths that need no mount of their own.
    pub read_write_paths: Vec<SandboxPath>,
    /// `BindPaths=`: read-write paths below a hidden or private directory.
    pub bind_paths: Vec<SandboxPath>,
    /// `BindReadOnlyPaths=`: read-only paths below a hidden or private directory.
    pub bind_read_only_paths: Vec<SandboxPath>,
    /// `InaccessiblePaths=`: hidden paths with nothing exposed below them.
    pub inaccessible_paths: Vec<SandboxPath>,
    /// `TemporaryFileSystem=…:ro`: hidden paths with something exposed below them.
    pub temporary_file_systems: Vec<SandboxPath>,
    /// `IPAddressAllow=` (with `IPAddressDeny=any`), set when the server listens on
    /// loopback: `localhost`. Empty: no IP filter (remote clients).
    pub ip_address_allow: String,
    /// Paths the sandbox cannot hide because the server needs them (a home that is
    /// also the repository), named in the change ticket's risks.
    pub unhidden: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SandboxPath {
    pub path: String,
    /// false: the path may not exist (systemd's `-` prefix; bubblewrap skips it).
    pub required: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SandboxMount {
    /// `hidden`: an empty directory only root may enter (absent paths are skipped);
    /// `empty`: an empty read-only directory, for the exposed paths below it;
    /// `private`: an empty directory of the sandbox's own, mode 1777 (/tmp, /var/tmp);
    /// `read-write` / `read-only`: the host path, mounted again.
    pub kind: &'static str,
    pub path: String,
    pub required: bool,
    pub reason: String,
}

struct Exposed {
    path: AbsPath,
    writable: bool,
    required: bool,
    reason: String,
}

struct Hidden {
    path: AbsPath,
    private: bool,
    /// Part of ProtectHome= in the unit.
    home: bool,
    reason: String,
}

/// A path the plan built from validated paths, or a constant.
fn abs(path: &str) -> AbsPath {
    AbsPath::parse(path).expect("a path built from validated paths")
}

fn depth(path: &str) -> usize {
    path.split('/').filter(|part| !part.is_empty()).count()
}

/// `on_database_host`: the server of a database host in a repository-host cluster
/// (issue 14). It serves no repository but the data directory, which it must read (the
/// repository host's backup reads PGDATA through it): the data directory stays in view,
/// read-only like the rest; the backup user's home, the state, the TLS directory (the
/// cluster owner's client key) stay hidden.
pub fn plan(c: &Cluster, tls: &TlsPlan, on_database_host: bool) -> SandboxPlan {
    let pb = &c.pgbackrest;
    let tls_dir = &pb.tls_directory;
    let mut exposed = Vec::new();
    if !on_database_host {
        exposed.push(Exposed {
            path: pb.repository.clone(),
            writable: true,
            required: true,
            reason: "the repository: what the server serves".into(),
        });
    }
    exposed.extend([
        Exposed {
            path: pb.backup_user_lock.clone(),
            writable: true,
            required: false,
            reason: "the backup user's lock directory (remote locks, the stop file)".into(),
        },
        Exposed {
            path: pb.backup_user_log.clone(),
            writable: true,
            required: false,
            reason: "the backup user's log directory".into(),
        },
        Exposed {
            path: pb.repository_config.clone(),
            writable: false,
            required: true,
            reason: "the repository-side configuration the server loads".into(),
        },
        Exposed {
            path: abs(&tls.ca_cert),
            writable: false,
            required: true,
            reason: "tls-server-ca-file".into(),
        },
        Exposed {
            path: abs(&tls.server_cert),
            writable: false,
            required: true,
            reason: "tls-server-cert-file".into(),
        },
        Exposed {
            path: abs(&tls.server_key),
            writable: false,
            required: true,
            reason: "tls-server-key-file".into(),
        },
    ]);
    if let Some(cipher) = super::pgbackrest::cipher_plan(c) {
        exposed.push(Exposed {
            path: abs(&cipher.include_path),
            writable: false,
            required: true,
            reason: "the repository's passphrase (repo1-host-config-include-path): the server's remotes read it".into(),
        });
    }
    let mut hidden_candidates = vec![
        Hidden {
            path: abs("/tmp"),
            private: true,
            home: false,
            reason: "a private /tmp (PrivateTmp=)".into(),
        },
        Hidden {
            path: abs("/var/tmp"),
            private: true,
            home: false,
            reason: "a private /var/tmp (PrivateTmp=)".into(),
        },
        Hidden {
            path: abs("/home"),
            private: false,
            home: true,
            reason: "home directories (ProtectHome=)".into(),
        },
        Hidden {
            path: abs("/root"),
            private: false,
            home: true,
            reason: "root's home (ProtectHome=)".into(),
        },
        Hidden {
            path: abs("/run/user"),
            private: false,
            home: true,
            reason: "users' runtime directories (ProtectHome=)".into(),
        },
        Hidden {
            path: c.backup_user.home.clone(),
            private: false,
            home: false,
            reason: "the backup user's home (.pgpass, ~/.ssh)".into(),
        },
        Hidden {
            path: abs(STATE_ROOT),
            private: false,
            home: false,
            reason: "pgbr-policy's state directories".into(),
        },
        Hidden {
            path: tls_dir.clone(),
            private: false,
            home: false,
            reason: "the TLS directory: only the server's certificate and key and the CA certificate are mounted again"
                .into(),
        },
        Hidden {
            path: abs(&tls.ca_key),
            private: false,
            home: false,
            reason: "the CA key".into(),
        },
        Hidden {
            path: abs(&tls.client_key),
            private: false,
            home: false,
            reason: "the cluster owner's client key".into(),
        },
    ];

    // On a repository host (a repository-host cluster's) there is no data directory.
    if !on_database_host && c.topology.is_none() {
        hidden_candidates.insert(
            6,
            Hidden {
                path: c.postgres.data_directory.clone(),
                private: false,
                home: false,
                reason: "the data directory".into(),
            },
        );
    }
    let mut mounts: Vec<SandboxMount> = Vec::new();
    let mut unhidden = Vec::new();
    let mut protect_home = "yes";
    let mut inaccessible_paths = Vec::new();
    let mut temporary_file_systems = Vec::new();
    // Hidden or private paths kept, to tell which exposed paths need a mount of their own.
    let mut covering: Vec<AbsPath> = Vec::new();
    for h in &hidden_candidates {
        if exposed.iter().any(|e| e.path == h.path) {
            // The server needs this very path (a home that is also the repository).
            if !h.private && !h.home {
                unhidden.push(h.path.to_string());
            }
            continue;
        }
        let has_exposed_below = exposed.iter().any(|e| e.path.is_within(&h.path));
        let kind = if h.private {
            "private"
        } else if has_exposed_below {
            "empty"
        } else {
            "hidden"
        };
        if h.home {
            if has_exposed_below {
                protect_home = "tmpfs";
            }
        } else if !h.private {
            let entry = SandboxPath {
                path: h.path.to_string(),
                required: has_exposed_below,
            };
            if has_exposed_below {
                temporary_file_systems.push(entry);
            } else {
                inaccessible_paths.push(entry);
            }
        }
        if covering.iter().any(|p| h.path.is_within(p) && h.path != *p) && !has_exposed_below {
            // Already out of view under a hidden or private parent (systemd skips it
            // too: the `-` path does not exist in the namespace). Kept in the unit for
            // the reader, not mounted by bubblewrap.
        } else {
            mounts.push(SandboxMount {
                kind,
                path: h.path.to_string(),
                required: false,
                reason: h.reason.clone(),
            });
        }
        covering.push(h.path.clone());
    }
    let mut read_write_paths = Vec::new();
    let mut bind_paths = Vec::new();
    let mut bind_read_only_paths = Vec::new();
    for e in &exposed {
        let below_hidden = covering.iter().any(|p| e.path.is_within(p) && e.path != *p);
        let entry = SandboxPath {
            path: e.path.to_string(),
            required: e.required,
        };
        match (e.writable, below_hidden) {
            (true, false) => read_write_paths.push(entry),
            (true, true) => bind_paths.push(entry),
            (false, true) => bind_read_only_paths.push(entry),
            // ProtectSystem=strict leaves it readable.
            (false, false) => {}
        }
        mounts.push(SandboxMount {
            kind: if e.writable { "read-write" } else { "read-only" },
            path: e.path.to_string(),
            required: e.required,
            reason: e.reason.clone(),
        });
    }
    // Parents first; a stable sort keeps hidden before exposed at equal depth.
    mounts.sort_by_key(|m| depth(&m.path));
    SandboxPlan {
        mounts,
        protect_home,
        read_write_paths,
        bind_paths,
        bind_read_only_paths,
        inaccessible_paths,
        temporary_file_systems,
        ip_address_allow: if pb.tls_address.is_loopback() {
            "localhost".into()
        } else {
            String::new()
        },
        unhidden,
    }
}
