//! Typed values that validation produces: once a string is one of these, it is known to
//! be representable in every artifact (after that artifact's escaping filter).
//!
//! The rules are deliberately narrower for things that become file names, OS accounts or
//! systemd unit names (an allowlist) than for database names, which PostgreSQL itself
//! quotes and which the SQL/hba filters escape. Each constructor returns the reason a
//! value is refused, phrased to follow "field: ".

use serde::Serialize;
use std::fmt;

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            #[allow(dead_code)] // not every newtype is read as &str yet
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// A cluster's name in the policy: a directory name in the output tree and part of
    /// unit and file names on the host.
    ClusterName
);
string_newtype!(
    /// An Ansible inventory group name (`ansible.host_group`): a valid Python identifier
    /// in ASCII, as Ansible's group name check wants, so a playbook's `hosts:` takes it
    /// literally.
    AnsibleGroup
);
string_newtype!(
    /// A POSIX account or group name as `useradd`/`groupadd` accept it.
    OsName
);
string_newtype!(
    /// A PostgreSQL role or database name (an SQL identifier, up to 63 bytes).
    SqlName
);
string_newtype!(
    /// A pgBackRest stanza name.
    Stanza
);
string_newtype!(
    /// An absolute, normalised filesystem path made of characters safe in every target.
    AbsPath
);
string_newtype!(
    /// A host name or IP literal for the TLS server to listen on.
    HostName
);
string_newtype!(
    /// An environment variable name.
    EnvName
);
string_newtype!(
    /// A systemd unit name (`postgresql@15-main.service`).
    UnitName
);

impl UnitName {
    pub fn parse(value: &str) -> Result<Self, String> {
        let ok = value.len() <= 255
            && value.ends_with(".service")
            && value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && ascii_only(value, |c| {
                c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '-' | ':')
            });
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "`{}` is not a systemd service name like `postgresql@15-main.service`",
                printable(value)
            ))
        }
    }
}

fn ascii_only(value: &str, allowed: impl Fn(char) -> bool) -> bool {
    value.chars().all(|c| c.is_ascii() && allowed(c))
}

impl AnsibleGroup {
    /// The default group of a cluster: `pgbr_` and its name, `-` becoming `_`.
    pub fn default_for(cluster: &str) -> String {
        format!("pgbr_{}", cluster.replace('-', "_"))
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        let first_ok = value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if value.is_empty()
            || value.len() > 100
            || !first_ok
            || !ascii_only(value, |c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "`{}` is not a usable inventory group name: use 1 to 100 characters from A-Z, a-z, 0-9 and `_`, not starting with a digit (Ansible warns on other group names and a playbook's `hosts:` would read `-` or `:` as a pattern)",
                printable(value)
            ));
        }
        if value == "all" || value == "ungrouped" {
            return Err(format!(
                "`{value}` is Ansible's own group: name the group of this cluster's hosts"
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

impl ClusterName {
    pub fn parse(value: &str) -> Result<Self, String> {
        let first_ok = value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if value.is_empty()
            || value.len() > 40
            || !first_ok
            || !ascii_only(value, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
            })
        {
            return Err(format!(
                "`{}` is not a valid cluster name: use 1 to 40 characters from a-z, 0-9, `-` and `_`, starting with a letter or digit (it becomes a directory and a systemd unit name)",
                printable(value)
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

impl OsName {
    pub fn parse(value: &str) -> Result<Self, String> {
        let first_ok = value.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        if value.is_empty()
            || value.len() > 32
            || !first_ok
            || !ascii_only(value, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
            })
        {
            return Err(format!(
                "`{}` is not a valid OS user or group name: use 1 to 32 characters from a-z, 0-9, `-` and `_`, starting with a letter or `_`",
                printable(value)
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

impl SqlName {
    /// Role and database names may hold almost anything PostgreSQL accepts, since the
    /// SQL and hba filters quote them; refused are what cannot be quoted everywhere.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.is_empty() {
            return Err("must not be empty".into());
        }
        if value.len() > 63 {
            return Err(format!(
                "`{}` is {} bytes long; PostgreSQL names are at most 63 bytes (longer ones are silently truncated)",
                printable(value),
                value.len()
            ));
        }
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(format!(
                "`{}` contains the control character U+{:04X}; names with control characters cannot be written safely to pg_hba.conf or a shell script",
                printable(value),
                c as u32
            ));
        }
        if value.contains('"') {
            return Err(format!(
                "`{}` contains `\"`, which pg_hba.conf cannot quote",
                printable(value)
            ));
        }
        if value.trim() != value {
            return Err(format!(
                "`{}` starts or ends with white space; pgBackRest trims configuration values, so it would connect as another name",
                printable(value)
            ));
        }
        if value.starts_with('/') {
            return Err(format!(
                "`{}` starts with `/`, which PostgreSQL 16 and later read as a regular expression in pg_hba.conf and pg_ident.conf, even quoted (`/.*` would match every role or database)",
                printable(value)
            ));
        }
        if let Some(c) = value.chars().find(|c| is_invisible_format_char(*c)) {
            return Err(format!(
                "`{}` contains the invisible character U+{:04X}, which would make the name look like another in a review",
                printable(value),
                c as u32
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

/// Bidirectional overrides and zero-width characters: legal in PostgreSQL names, but
/// they make a reviewer read something other than what runs.
pub(crate) fn is_invisible_format_char(c: char) -> bool {
    matches!(c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2069 | 0xFEFF | 0x00AD)
}

impl Stanza {
    pub fn parse(value: &str) -> Result<Self, String> {
        let first_ok = value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if value.is_empty()
            || value.len() > 64
            || !first_ok
            || !ascii_only(value, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(format!(
                "`{}` is not a valid stanza name: use 1 to 64 characters from A-Z, a-z, 0-9, `-`, `_` and `.`, starting with a letter or digit (it becomes a directory in the repository and part of archive_command)",
                printable(value)
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

impl AbsPath {
    /// Paths are written into shell scripts, SQL literals, pgBackRest's ini files,
    /// archive_command (where `%` expands), systemd units and tmpfiles.d lines; an allowlist
    /// keeps every one of them simple to read and impossible to misparse.
    pub fn parse(value: &str) -> Result<Self, String> {
        if !value.starts_with('/') {
            return Err(format!(
                "`{}` is not an absolute path (it must start with `/`)",
                printable(value)
            ));
        }
        if value.len() > 1024 {
            return Err(format!(
                "the path is {} bytes long; at most 1024 are accepted",
                value.len()
            ));
        }
        if let Some(c) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@' | ',')))
        {
            return Err(format!(
                "`{}` contains {}; paths may use A-Z, a-z, 0-9 and `/ . _ - + @ ,` only (the path is written into shell, SQL, pgBackRest configuration, archive_command and systemd units)",
                printable(value),
                describe_char(c)
            ));
        }
        if value != "/" && value.ends_with('/') {
            return Err(format!("`{value}` ends with `/`: write it without the trailing slash"));
        }
        if value.contains("//") {
            return Err(format!("`{value}` contains an empty component (`//`)"));
        }
        if value.split('/').any(|part| part == "." || part == "..") {
            return Err(format!(
                "`{value}` contains a `.` or `..` component: write the resolved path"
            ));
        }
        if value.split('/').any(|part| part.starts_with('-')) {
            return Err(format!(
                "`{value}` has a component starting with `-`, which commands would read as an option"
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn join(&self, name: &str) -> AbsPath {
        if self.0 == "/" {
            AbsPath(format!("/{name}"))
        } else {
            AbsPath(format!("{}/{name}", self.0))
        }
    }

    /// The parent directories from the nearest to `/` (excluded).
    pub fn ancestors(&self) -> Vec<AbsPath> {
        let mut out = Vec::new();
        let mut current = self.0.as_str();
        while let Some(idx) = current.rfind('/') {
            if idx == 0 {
                break;
            }
            current = &current[..idx];
            out.push(AbsPath(current.to_owned()));
        }
        out
    }

    /// The directory that holds this path (`/` for a top-level entry).
    pub fn directory(&self) -> AbsPath {
        self.ancestors()
            .into_iter()
            .next()
            .unwrap_or_else(|| AbsPath("/".to_owned()))
    }

    /// `/`, a top-level directory, or a well-known shared one (FHS): a directory the
    /// scripts must never take over (chown, chmod) or remove. Not exhaustive; the
    /// depth rule catches the worst (`/`, `/etc`, `/tmp`, `/home`).
    pub fn is_system_directory(&self) -> bool {
        const SHARED: &[&str] = &[
            "/etc/pgbackrest",
            "/etc/postgresql",
            "/etc/ssl",
            "/etc/ssl/private",
            "/etc/ssl/certs",
            "/etc/ssh",
            "/etc/systemd",
            "/etc/systemd/system",
            "/etc/tmpfiles.d",
            "/etc/sudoers.d",
            "/etc/pam.d",
            "/etc/cron.d",
            "/etc/default",
            "/etc/security",
            "/run/postgresql",
            "/run/user",
            "/usr/bin",
            "/usr/sbin",
            "/usr/lib",
            "/usr/lib64",
            "/usr/libexec",
            "/usr/local",
            "/usr/local/bin",
            "/usr/share",
            "/usr/include",
            "/usr/src",
            "/var/backups",
            "/var/cache",
            "/var/lib",
            "/var/lib/postgresql",
            "/var/lib/pgsql",
            "/var/local",
            "/var/lock",
            "/var/log",
            "/var/mail",
            "/var/opt",
            "/var/run",
            "/var/run/postgresql",
            "/var/spool",
            "/var/tmp",
            "/var/www",
        ];
        self.0.matches('/').count() <= 1 || SHARED.contains(&self.0.as_str())
    }

    /// The world-writable directory (`/tmp`, `/var/tmp`, `/dev/shm`, the lock
    /// directory `/run/lock`) that `self` is or lies below, if any: any local user can
    /// claim a name there first (a directory or a symlink), before root makes it.
    pub fn world_writable_area(&self) -> Option<&'static str> {
        const AREAS: &[&str] = &[
            "/tmp",
            "/var/tmp",
            "/dev/shm",
            "/run/shm",
            "/run/lock",
            "/var/lock",
            "/var/run/lock",
        ];
        AREAS.iter().copied().find(|area| {
            self.0 == *area || (self.0.starts_with(area) && self.0.as_bytes().get(area.len()) == Some(&b'/'))
        })
    }

    /// The path with `/var/run` spelled `/run` (a symlink to it on every current
    /// distribution), so that two spellings of one directory compare equal.
    pub fn canonical(&self) -> AbsPath {
        match self.0.strip_prefix("/var/run") {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => AbsPath(format!("/run{rest}")),
            _ => self.clone(),
        }
    }

    /// True when `self` is `/run` or lies below it (or `/var/run`): a tmpfs emptied at
    /// boot, where a directory must be recreated by systemd-tmpfiles.
    pub fn is_volatile(&self) -> bool {
        self.canonical().is_within(&AbsPath("/run".to_owned()))
    }

    /// True when `self` is `other` or lies below it.
    pub fn is_within(&self, other: &AbsPath) -> bool {
        self == other
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
            || other.0 == "/"
    }
}

impl HostName {
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.parse::<std::net::IpAddr>().is_ok() {
            return Ok(Self(value.to_owned()));
        }
        let first_ok = value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if value.is_empty()
            || value.len() > 253
            || !first_ok
            || !ascii_only(value, |c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(format!(
                "`{}` is neither an IP address nor a host name",
                printable(value)
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The address, when this is an IP address and not a name.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.0.parse().ok()
    }

    pub fn is_loopback(&self) -> bool {
        self.0 == "localhost" || self.0.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl EnvName {
    pub fn parse(value: &str) -> Result<Self, String> {
        let first_ok = value.chars().next().is_some_and(|c| c.is_ascii_uppercase() || c == '_');
        if !first_ok
            || value.len() > 128
            || !ascii_only(value, |c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!(
                "`{}` is not an environment variable name: use A-Z, 0-9 and `_`, not starting with a digit",
                printable(value)
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

/// A value as it can be shown in a one-line error: control characters made visible and
/// long values shortened, so an error message can never itself inject a line.
pub fn printable(value: &str) -> String {
    let mut out = String::new();
    for (count, c) in value.chars().enumerate() {
        if count == 80 {
            out.push('…');
            break;
        }
        if c.is_control() || is_invisible_format_char(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        c if c.is_control() || is_invisible_format_char(c) => format!("the character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert!(AbsPath::parse("/var/lib/postgresql/15/main").is_ok());
        for bad in [
            "relative", "/a/../b", "/a//b", "/a/", "/a b", "/a;b", "/a$(x)", "/a%p", "/a\nb", "/-rf", "/a'b",
        ] {
            assert!(AbsPath::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn ancestors_stop_before_root() {
        let p = AbsPath::parse("/var/lib/pg").unwrap();
        let names: Vec<_> = p.ancestors().into_iter().map(|a| a.0).collect();
        assert_eq!(names, ["/var/lib", "/var"]);
    }

    #[test]
    fn within() {
        let a = AbsPath::parse("/var/lib/pg").unwrap();
        assert!(a.is_within(&AbsPath::parse("/var/lib").unwrap()));
        assert!(!a.is_within(&AbsPath::parse("/var/li").unwrap()));
    }

    #[test]
    fn sql_names_refuse_what_cannot_be_quoted() {
        assert!(SqlName::parse("backup role").is_ok());
        assert!(SqlName::parse("ünïcode").is_ok());
        assert!(SqlName::parse("it's").is_ok());
        for bad in ["", "a\"b", "a\nb", " lead", "x\u{202e}y", &"x".repeat(64), "/.*"] {
            assert!(SqlName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn os_names() {
        assert!(OsName::parse("pgbackrest").is_ok());
        for bad in ["Root", "-x", "a b", "a$", ""] {
            assert!(OsName::parse(bad).is_err());
        }
    }
}
