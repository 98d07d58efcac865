//! The `postgres:` section: the cluster itself (major, paths, owner, service), with
//! Debian's or RHEL's conventions for the defaults.

use crate::catalog::PgMajor;
use crate::policy::fields::{Fields, at, string};
use crate::policy::model::Postgres;
use crate::policy::names::{AbsPath, OsName, UnitName, printable};
use crate::policy::raw;

/// Which distribution's conventions set the default paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Debian,
    Rhel,
}

/// The section's values, each `None` when invalid (the error is already reported).
pub struct PostgresPart {
    pub major: Option<PgMajor>,
    pub data_directory: Option<AbsPath>,
    pub owner: Option<OsName>,
    group: Option<OsName>,
    socket_directory: Option<AbsPath>,
    port: Option<u16>,
    bin_directory: Option<AbsPath>,
    hba_file: Option<AbsPath>,
    ident_file: Option<AbsPath>,
    service: Option<UnitName>,
    config_directory: String,
}

impl PostgresPart {
    /// The owner's name, empty when invalid: defaults of other sections derive from it.
    pub fn owner_name(&self) -> String {
        self.owner.as_ref().map(|o| o.to_string()).unwrap_or_default()
    }

    pub fn finish(self) -> Option<Postgres> {
        Some(Postgres {
            major: self.major?,
            data_directory: self.data_directory?,
            owner: self.owner?,
            group: self.group?,
            socket_directory: self.socket_directory?,
            port: self.port?,
            bin_directory: self.bin_directory?,
            hba_file: self.hba_file,
            ident_file: self.ident_file,
            service: self.service?,
            config_directory: self.config_directory,
        })
    }
}

pub fn resolve(f: &mut Fields<'_, '_>, pg: &raw::PostgresSpec) -> PostgresPart {
    let major = match &pg.major {
        Some(m) => match PgMajor::new(m.value) {
            Ok(major) => Some(major),
            Err(message) => {
                let path = f.path("postgres.major");
                f.out.error(at(m), &path, message);
                None
            }
        },
        None => {
            let path = f.path("postgres.major");
            f.out.error(
                f.cluster_at,
                &path,
                "is required (the PostgreSQL major version, 10 to 18)",
            );
            None
        }
    };
    let layout = f.parse(
        string(&pg.layout),
        "postgres.layout",
        || Some("debian".into()),
        |v| match v {
            "debian" => Ok(Layout::Debian),
            "rhel" => Ok(Layout::Rhel),
            other => Err(format!(
                "`{}` is not a known layout: use `debian` or `rhel` (it sets the default paths)",
                printable(other)
            )),
        },
    );
    let m = major.map(|m| m.get()).unwrap_or(0);
    let lay = layout.unwrap_or(Layout::Debian);
    let data_directory = f.parse(
        string(&pg.data_directory),
        "postgres.data_directory",
        || {
            Some(match lay {
                Layout::Debian => format!("/var/lib/postgresql/{m}/main"),
                Layout::Rhel => format!("/var/lib/pgsql/{m}/data"),
            })
        },
        AbsPath::parse,
    );
    let owner = f.parse(
        string(&pg.owner),
        "postgres.owner",
        || Some("postgres".into()),
        OsName::parse,
    );
    let owner_name = owner.as_ref().map(|o| o.to_string()).unwrap_or_default();
    let group = f.parse(
        string(&pg.group),
        "postgres.group",
        || Some(owner_name.clone()),
        OsName::parse,
    );
    let socket_directory = f.parse(
        string(&pg.socket_directory),
        "postgres.socket_directory",
        || {
            Some(match lay {
                Layout::Debian => "/var/run/postgresql".into(),
                Layout::Rhel => "/run/postgresql".into(),
            })
        },
        AbsPath::parse,
    );
    let port = f.port(pg.port.as_ref(), "postgres.port", 5432);
    let bin_directory = f.parse(
        string(&pg.bin_directory),
        "postgres.bin_directory",
        || {
            Some(match lay {
                Layout::Debian => format!("/usr/lib/postgresql/{m}/bin"),
                Layout::Rhel => format!("/usr/pgsql-{m}/bin"),
            })
        },
        AbsPath::parse,
    );
    let hba_file = pg
        .hba_file
        .as_ref()
        .and_then(|v| f.parse(Some(v), "postgres.hba_file", || None, AbsPath::parse));
    let ident_file = pg
        .ident_file
        .as_ref()
        .and_then(|v| f.parse(Some(v), "postgres.ident_file", || None, AbsPath::parse));
    // Debian runs cluster <major>/<name> as postgresql@<major>-<name>; PGDG RPMs as postgresql-<major>.
    let debian_cluster = data_directory
        .as_ref()
        .and_then(|d| d.as_str().rsplit('/').next().map(str::to_owned))
        .unwrap_or_else(|| "main".into());
    let service = f.parse(
        string(&pg.service),
        "postgres.service",
        || {
            Some(match lay {
                Layout::Debian => format!("postgresql@{m}-{debian_cluster}.service"),
                Layout::Rhel => format!("postgresql-{m}.service"),
            })
        },
        UnitName::parse,
    );

    // Where the server's configuration files are by default: Debian keeps them in
    // /etc/postgresql/<major>/<cluster>, other layouts in the data directory.
    let config_directory = match lay {
        Layout::Debian => format!("/etc/postgresql/{m}/{debian_cluster}"),
        Layout::Rhel => data_directory.as_ref().map(|d| d.to_string()).unwrap_or_default(),
    };
    PostgresPart {
        config_directory,
        major,
        data_directory,
        owner,
        group,
        socket_directory,
        port,
        bin_directory,
        hba_file,
        ident_file,
        service,
    }
}
