//! The template engine: tera with every embedded template, the escaping filters of
//! [`escape`], and one rule enforced at render time: an interpolation that does not
//! pass through an escaping filter fails the render ("correct by construction" rather
//! than by review). Only the plan's view models reach templates.

pub mod escape;
pub mod structured;

use anyhow::{Context as _, Result};
use tera::{Kwargs, State, Tera, Value};

/// The templates, embedded at build time (see build.rs) so the binary is self-contained.
pub static TEMPLATES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// Ansible templates contain Jinja's own `{{ }}`/`{% %}`; ours use these instead.
pub const ANSIBLE_PREFIX: &str = "ansible/";

pub struct Renderer {
    plain: Tera,
    ansible: Tera,
}

/// Any value that reaches output unfiltered lands here. Digits are let through (ports,
/// counts, modes: inert in every target); anything else is a template bug.
fn refuse_unfiltered(input: &str, output: &mut dyn std::io::Write) -> std::io::Result<()> {
    if !input.is_empty() && input.chars().all(|c| c.is_ascii_digit()) {
        return output.write_all(input.as_bytes());
    }
    Err(std::io::Error::other(format!(
        "unfiltered interpolation of `{}`: every value must pass through an escaping filter (sh, sql_ident, sql_lit, sql_keyword, sql_signature, hba, hba_keyword, systemd, json, md, md_code, comment; serialized for a body written by render::structured)",
        crate::policy::names::printable(input)
    )))
}

fn as_text(value: &Value) -> String {
    match value.as_str() {
        Some(s) => s.to_owned(),
        None => value.to_string(),
    }
}

fn register(tera: &mut Tera) {
    macro_rules! filter {
        ($name:literal, $func:path) => {
            tera.register_filter(
                $name,
                |value: Value, _: Kwargs, _: &State| -> tera::TeraResult<Value> {
                    $func(&as_text(&value))
                        .map(|s| Value::safe_string(&s))
                        .map_err(|e| tera::Error::message(e.0))
                },
            );
        };
    }
    filter!("sql_ident", escape::sql_ident);
    filter!("sql_lit", escape::sql_lit);
    filter!("sql_keyword", escape::sql_keyword);
    filter!("sql_signature", escape::sql_signature);
    filter!("sh", escape::sh);
    filter!("hba", escape::hba);
    filter!("hba_keyword", escape::hba_keyword);
    filter!("systemd", escape::systemd);
    filter!("json", escape::json);
    filter!("md", escape::md);
    filter!("md_code", escape::md_code);
    filter!("comment", escape::comment);
    filter!("cron_field", escape::cron_field);
    filter!("cron_word", escape::cron_word);
    filter!("serialized", escape::serialized);
    // tera's own `safe` would mark any value as escaped and slip past refuse_unfiltered.
    tera.register_filter("safe", |_: Value, _: Kwargs, _: &State| -> tera::TeraResult<Value> {
        Err(tera::Error::message(
            "the `safe` filter is disabled: use the escaping filter of the target (sh, sql_lit, hba, json, …)",
        ))
    });
    tera.set_escape_fn(refuse_unfiltered);
}

impl Renderer {
    pub fn new() -> Result<Self> {
        let mut plain = Tera::new();
        let mut ansible = Tera::new();
        ansible
            .set_delimiters(tera::Delimiters {
                block_start: "[%".into(),
                block_end: "%]".into(),
                variable_start: "[[".into(),
                variable_end: "]]".into(),
                comment_start: "[#".into(),
                comment_end: "#]".into(),
            })
            .context("setting the Ansible template delimiters")?;
        // Shell's `${#array[@]}` would open a tera comment: plain templates comment with
        // `{= … =}` instead (unused in shell, SQL, ini, Markdown and YAML).
        plain
            .set_delimiters(tera::Delimiters {
                comment_start: "{=".into(),
                comment_end: "=}".into(),
                ..Default::default()
            })
            .context("setting the template comment delimiters")?;
        register(&mut plain);
        register(&mut ansible);
        // Added in one batch per engine so that includes resolve whatever the order.
        let (ansible_templates, plain_templates): (Vec<_>, Vec<_>) = TEMPLATES
            .iter()
            .copied()
            .partition(|(name, _)| name.starts_with(ANSIBLE_PREFIX));
        plain
            .add_raw_templates(plain_templates)
            .context("the embedded templates do not parse")?;
        if !ansible_templates.is_empty() {
            ansible
                .add_raw_templates(ansible_templates)
                .context("the embedded Ansible templates do not parse")?;
        }
        // Autoescape everything: that is what routes unfiltered values to refuse_unfiltered.
        plain.autoescape_on([""]);
        ansible.autoescape_on([""]);
        Ok(Self { plain, ansible })
    }

    pub fn render(&self, template: &str, context: &tera::Context) -> Result<String> {
        let engine = if template.starts_with(ANSIBLE_PREFIX) {
            &self.ansible
        } else {
            &self.plain
        };
        engine
            .render(template, context)
            .map_err(|e| anyhow::anyhow!("rendering template `{template}`: {}", error_chain(&e)))
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_one(body: &str, value: &str) -> Result<String> {
        let mut tera = Tera::new();
        register(&mut tera);
        tera.add_raw_template("t", body).unwrap();
        tera.autoescape_on([""]);
        let mut ctx = tera::Context::new();
        ctx.insert("v", value);
        ctx.insert("n", &5432);
        tera.render("t", &ctx).map_err(|e| anyhow::anyhow!(error_chain(&e)))
    }

    #[test]
    fn unfiltered_strings_fail_the_render() {
        let err = render_one("x={{ v }}", "pgbackrest").unwrap_err().to_string();
        assert!(err.contains("unfiltered interpolation"), "{err}");
    }

    #[test]
    fn the_safe_filter_cannot_bypass_escaping() {
        let err = render_one("x={{ v | safe }}", "$(reboot)").unwrap_err().to_string();
        assert!(err.contains("`safe` filter is disabled"), "{err}");
    }

    #[test]
    fn filtered_strings_and_numbers_pass() {
        assert_eq!(render_one("x={{ v | sh }} p={{ n }}", "a b").unwrap(), "x='a b' p=5432");
    }

    #[test]
    fn every_embedded_template_parses() {
        Renderer::new().unwrap();
        assert!(TEMPLATES.len() > 5);
    }
}
