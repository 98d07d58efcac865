//! Reading a cluster's raw fields: each parsed into its typed value or its default,
//! every problem recorded with the field's path and line instead of stopping at the
//! first. Used by every section of `resolve` and by `patroni`.

use super::diagnostic::Collector;
use super::raw::S;

pub(crate) fn at<T>(value: &S<T>) -> Option<(usize, usize)> {
    Some((value.referenced.line() as usize, value.referenced.column() as usize))
}

/// Reads one cluster's fields, recording errors instead of stopping at the first.
pub(crate) struct Fields<'c, 'f> {
    pub(crate) out: &'c mut Collector<'f>,
    pub(crate) prefix: String,
    /// Where the cluster itself starts, for errors about missing keys.
    pub(crate) cluster_at: Option<(usize, usize)>,
}

impl Fields<'_, '_> {
    pub(crate) fn path(&self, field: &str) -> String {
        format!("{}.{field}", self.prefix)
    }

    /// A string field parsed into a typed value, or the default when absent.
    pub(crate) fn parse<T>(
        &mut self,
        value: Option<&S<String>>,
        field: &str,
        default: impl FnOnce() -> Option<String>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match value {
            Some(v) => match parse(&v.value) {
                Ok(t) => Some(t),
                Err(message) => {
                    let path = self.path(field);
                    self.out.error(at(v), &path, message);
                    None
                }
            },
            None => match default() {
                Some(d) => match parse(&d) {
                    Ok(t) => Some(t),
                    // A default derived from another field fails only when that field
                    // is itself invalid, and that error is already reported.
                    Err(message) => {
                        if !self.out.has_errors() {
                            let path = self.path(field);
                            self.out.error(
                                self.cluster_at,
                                &path,
                                format!("the default derived from other fields is invalid: {message}"),
                            );
                        }
                        None
                    }
                },
                None => {
                    let path = self.path(field);
                    self.out.error(self.cluster_at, &path, "is required");
                    None
                }
            },
        }
    }

    pub(crate) fn port(&mut self, value: Option<&S<u32>>, field: &str, default: u16) -> Option<u16> {
        match value {
            None => Some(default),
            Some(v) => match u16::try_from(v.value) {
                Ok(port) if port > 0 => Some(port),
                _ => {
                    let path = self.path(field);
                    self.out
                        .error(at(v), &path, format!("{} is not a TCP port (1 to 65535)", v.value));
                    None
                }
            },
        }
    }
}

pub(crate) fn string<T>(v: &Option<S<T>>) -> Option<&S<T>> {
    v.as_ref()
}
