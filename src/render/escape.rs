//! The escaping filters: the only way a policy value reaches an artifact. Each turns a
//! value into text that its target reads back as exactly that value, or fails the render
//! when no such text exists. Pure functions here; `render` registers them with tera.

/// Why a value cannot be written in a given context.
#[derive(Debug, PartialEq, Eq)]
pub struct Unrepresentable(pub String);

/// Control characters would end a line (or drive a terminal); bidirectional overrides
/// and zero-width characters would make a reviewer read something other than what is
/// there (the policy's file name reaches every header this way).
fn reject_control(context: &str, value: &str) -> Result<(), Unrepresentable> {
    match value
        .chars()
        .find(|c| c.is_control() || crate::policy::names::is_invisible_format_char(*c))
    {
        Some(c) => Err(Unrepresentable(format!(
            "{context}: the value `{}` contains the {} character U+{:04X}",
            crate::policy::names::printable(value),
            if c.is_control() { "control" } else { "invisible" },
            c as u32
        ))),
        None => Ok(()),
    }
}

/// An SQL identifier, always double-quoted so case and special characters survive.
pub fn sql_ident(value: &str) -> Result<String, Unrepresentable> {
    if value.contains('\0') {
        return Err(Unrepresentable(
            "sql_ident: NUL cannot appear in an SQL identifier".into(),
        ));
    }
    Ok(postgres_protocol::escape::escape_identifier(value))
}

/// An SQL string literal (`'…'`, or `E'…'` when it holds a backslash).
pub fn sql_lit(value: &str) -> Result<String, Unrepresentable> {
    if value.contains('\0') {
        return Err(Unrepresentable("sql_lit: NUL cannot appear in an SQL literal".into()));
    }
    Ok(postgres_protocol::escape::escape_literal(value))
}

/// One shell word for bash: bare when it is plainly safe, otherwise single-quoted.
/// `,` and `=` are quoted too: inert in bash, but inside an array shellcheck reads them
/// as a mistake (SC2054, SC2191), and a path may hold a comma.
pub fn sh(value: &str) -> Result<String, Unrepresentable> {
    if value.contains('\0') {
        return Err(Unrepresentable("sh: NUL cannot appear in a shell word".into()));
    }
    let plain = !value.is_empty()
        && !value.starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | ':' | '@' | '+' | '-'));
    if plain {
        return Ok(value.to_owned());
    }
    // Single quotes, with `'` and `\` written outside them (`'\''`, `'\\'`): a
    // backslash inside single quotes is literal to bash, but next to a quote shellcheck
    // takes it for an attempted escape (SC1003) and fails the script.
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str(r"'\''"),
            '\\' => out.push_str(r"'\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// One pg_hba.conf / pg_ident.conf token: quoted when it is a keyword or holds anything
/// beyond a plain name, refused when it cannot be quoted (a `"` or a control character).
pub fn hba(value: &str) -> Result<String, Unrepresentable> {
    reject_control("hba", value)?;
    if value.contains('"') {
        return Err(Unrepresentable(format!(
            "hba: `{}` contains `\"`, which pg_hba.conf cannot quote",
            crate::policy::names::printable(value)
        )));
    }
    // PostgreSQL 16+ reads a name starting with `/` as a regular expression, quoted or
    // not: no quoting makes it literal.
    if value.starts_with('/') {
        return Err(Unrepresentable(format!(
            "hba: `{}` starts with `/`, which PostgreSQL 16 and later read as a regular expression even when quoted",
            crate::policy::names::printable(value)
        )));
    }
    const KEYWORDS: [&str; 6] = ["all", "sameuser", "samerole", "samegroup", "replication", "samehost"];
    let plain = !value.is_empty()
        && !KEYWORDS.contains(&value)
        && !value.starts_with(['+', '@'])
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if plain {
        Ok(value.to_owned())
    } else {
        Ok(format!("\"{value}\""))
    }
}

/// The keywords of pg_hba.conf itself (`local`, `all`, `reject`, `map=x`): written
/// bare, and only ever from the plan's own constants, so anything else is refused.
pub fn hba_keyword(value: &str) -> Result<String, Unrepresentable> {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '='))
    {
        Ok(value.to_owned())
    } else {
        Err(Unrepresentable(format!(
            "hba_keyword: `{}` is not a pg_hba.conf keyword",
            crate::policy::names::printable(value)
        )))
    }
}

/// An SQL keyword from the plan's own constants (`LOGIN`, `NOSUPERUSER`): written bare,
/// so anything that is not a plain upper-case word is refused.
pub fn sql_keyword(value: &str) -> Result<String, Unrepresentable> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        Ok(value.to_owned())
    } else {
        Err(Unrepresentable(format!(
            "sql_keyword: `{}` is not an SQL keyword",
            crate::policy::names::printable(value)
        )))
    }
}

/// A function signature from the catalog (`pg_catalog.pg_backup_start(text, boolean)`):
/// written bare, so anything beyond names, parentheses, commas and spaces is refused.
pub fn sql_signature(value: &str) -> Result<String, Unrepresentable> {
    let ok = value.ends_with(')')
        && value.contains('(')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '(' | ')' | ',' | ' '));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Unrepresentable(format!(
            "sql_signature: `{}` is not a function signature",
            crate::policy::names::printable(value)
        )))
    }
}

/// A value on the right of `key=` in pgBackRest's ini files: one line, no surrounding
/// white space (pgBackRest trims it, which would change the value).
pub fn ini(value: &str) -> Result<String, Unrepresentable> {
    reject_control("ini", value)?;
    if value.trim() != value {
        return Err(Unrepresentable(format!(
            "ini: `{value}` has surrounding white space that pgBackRest would trim"
        )));
    }
    Ok(value.to_owned())
}

/// A systemd unit setting value: only plain characters (validation guarantees paths
/// and names are), with `%` doubled because systemd expands specifiers.
pub fn systemd(value: &str) -> Result<String, Unrepresentable> {
    reject_control("systemd", value)?;
    if let Some(c) = value
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';' | '$'))
    {
        return Err(Unrepresentable(format!(
            "systemd: `{}` contains `{c}`",
            crate::policy::names::printable(value)
        )));
    }
    Ok(value.replace('%', "%%"))
}

/// One of a crontab line's five time fields: digits, `*`, `,`, `-`, `/` only.
pub fn cron_field(value: &str) -> Result<String, Unrepresentable> {
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '*' | ',' | '-' | '/'))
    {
        return Err(Unrepresentable(format!(
            "cron_field: `{}` is not a cron time field",
            crate::policy::names::printable(value)
        )));
    }
    Ok(value.to_owned())
}

/// A word of a crontab line's command (or its user): quoted for /bin/sh, which cron runs
/// the command with, and refused when it holds `%` (cron turns it into a line break).
pub fn cron_word(value: &str) -> Result<String, Unrepresentable> {
    if value.contains('%') {
        return Err(Unrepresentable(format!(
            "cron_word: `{}` holds `%`, which cron reads as a line break",
            crate::policy::names::printable(value)
        )));
    }
    sh(value)
}

/// A JSON string, which is also a valid YAML scalar in flow or block context.
pub fn json(value: &str) -> Result<String, Unrepresentable> {
    serde_json::to_string(value).map_err(|e| Unrepresentable(format!("json: {e}")))
}

/// A whole document body that `render::structured` serialized from the plan's typed
/// values (YAML through serde-saphyr, pgBackRest ini through its writer): already in its
/// format's syntax, so it passes unchanged. Templates apply it to `body` and nothing else
/// (the template scan enforces it); a control character other than a line feed is refused
/// all the same.
pub fn serialized(value: &str) -> Result<String, Unrepresentable> {
    if let Some(c) = value.chars().find(|c| c.is_control() && *c != '\n') {
        return Err(Unrepresentable(format!(
            "serialized: the text contains the control character U+{:04X}",
            c as u32
        )));
    }
    Ok(value.to_owned())
}

/// Text inside Markdown (prose or a table cell): markup characters are backslash-escaped
/// so a name can neither break the table nor render as something else.
pub fn md(value: &str) -> Result<String, Unrepresentable> {
    reject_control("md", value)?;
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~') {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

/// A name, path or signature in Markdown: a code span, with a fence longer than any
/// run of backticks inside, and `|` escaped so it cannot end a table cell.
pub fn md_code(value: &str) -> Result<String, Unrepresentable> {
    reject_control("md_code", value)?;
    let mut longest = 0;
    let mut run = 0;
    for c in value.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if value.starts_with('`') || value.ends_with('`') || value.is_empty() {
        " "
    } else {
        ""
    };
    Ok(format!("{fence}{pad}{}{pad}{fence}", value.replace('|', "\\|")))
}

/// Text in a `#` or `--` comment: anything on one line.
pub fn comment(value: &str) -> Result<String, Unrepresentable> {
    reject_control("comment", value)?;
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words() {
        assert_eq!(sh("/var/lib/pgsql").unwrap(), "/var/lib/pgsql");
        assert_eq!(sh("it's").unwrap(), r"'it'\''s'");
        assert_eq!(sh("$(reboot)").unwrap(), "'$(reboot)'");
        assert_eq!(sh("-rf").unwrap(), "'-rf'");
        assert_eq!(sh("/a,b").unwrap(), "'/a,b'");
        assert_eq!(sh("a=b").unwrap(), "'a=b'");
        assert_eq!(sh(r"x\").unwrap(), r"'x'\\''");
        assert_eq!(sh(r"a\'b").unwrap(), r"'a'\\''\''b'");
        assert_eq!(sh("").unwrap(), "''");
        assert!(sh("a\0b").is_err());
    }

    #[test]
    fn sql() {
        assert_eq!(sql_ident("Backup Role").unwrap(), "\"Backup Role\"");
        assert_eq!(sql_ident("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(sql_lit("it's").unwrap(), "'it''s'");
        assert_eq!(sql_lit(r"a\b").unwrap(), r" E'a\\b'");
    }

    #[test]
    fn hba_tokens() {
        assert_eq!(hba("pgbackrest").unwrap(), "pgbackrest");
        assert_eq!(hba("all").unwrap(), "\"all\"");
        assert_eq!(hba("+admins").unwrap(), "\"+admins\"");
        assert_eq!(hba("two words").unwrap(), "\"two words\"");
        assert!(hba("a\"b").is_err());
        assert!(hba("a\nb").is_err());
        assert!(hba("/.*").is_err());
        assert!(hba_keyword("map=x y").is_err());
    }

    #[test]
    fn other_contexts() {
        assert!(ini(" x").is_err());
        assert!(ini("a\nb").is_err());
        assert_eq!(systemd("/a%b").unwrap(), "/a%%b");
        assert!(systemd("a b").is_err());
        assert_eq!(json("a\"b").unwrap(), r#""a\"b""#);
        assert_eq!(md("a|b_c (x)").unwrap(), r"a\|b\_c (x)");
        assert_eq!(md_code("pg_x(text)").unwrap(), "`pg_x(text)`");
        assert_eq!(md_code("a`b|c").unwrap(), r"``a`b\|c``");
        assert_eq!(md_code("`x").unwrap(), "`` `x ``");
        assert!(comment("a\nb").is_err());
        assert_eq!(serialized("a: \"b\\tc\"\n").unwrap(), "a: \"b\\tc\"\n");
        assert!(serialized("a\tb").is_err());
        assert!(comment("a\u{202e}b").is_err());
        assert!(md_code("a\u{200b}b").is_err());
    }
}
