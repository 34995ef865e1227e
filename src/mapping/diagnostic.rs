//! Load-time diagnostics: what is wrong (or doubtful) in a mapping file, where, and in which
//! route and field. Collected, never thrown one at a time, so `check` can show them all.

use std::fmt;

use super::template::TemplateError;
use super::yaml::Loc;

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The mapping cannot be used.
    Error,
    /// The mapping works, but probably not as intended.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding about a mapping file.
///
/// `Display` gives `12:7: error: route website-quote, properties.amount: unknown type …`;
/// [`Diagnostic::in_file`] puts the file name in front, as compilers do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The route it concerns, if any.
    pub route: Option<String>,
    /// The field it concerns (`dealstage`, `properties.amount`, `associations.companies`), if any.
    pub field: Option<String>,
    /// 1-based line of the offending node, when known.
    pub line: Option<usize>,
    /// 1-based column of the offending node, when known.
    pub column: Option<usize>,
    /// A sentence for a person.
    pub message: String,
}

impl Diagnostic {
    /// Displays as `origin:line:column: severity: …` (`origin: severity: …` without a line).
    pub fn in_file<'a>(&'a self, origin: &'a str) -> impl fmt::Display + 'a {
        InFile {
            diagnostic: self,
            origin,
        }
    }

    fn write_body(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        match (&self.route, &self.field) {
            (Some(route), Some(field)) => write!(f, "route {route}, {field}: ")?,
            (Some(route), None) => write!(f, "route {route}: ")?,
            (None, Some(field)) => write!(f, "{field}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }

    fn write_position(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{line}:{column}: "),
            (Some(line), None) => write!(f, "{line}: "),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_position(f)?;
        self.write_body(f)
    }
}

struct InFile<'a> {
    diagnostic: &'a Diagnostic,
    origin: &'a str,
}

impl fmt::Display for InFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.diagnostic.line {
            Some(_) => write!(f, "{}:", self.origin)?,
            None => write!(f, "{}: ", self.origin)?,
        }
        self.diagnostic.write_position(f)?;
        self.diagnostic.write_body(f)
    }
}

/// A mapping that could not be loaded: every error found (and every warning), in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingLoadError {
    /// The file name used in messages (`mapping.yaml`, `mapping.yaml (embedded)`).
    pub origin: String,
    /// Errors and warnings, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl MappingLoadError {
    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for MappingLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", diagnostic.in_file(&self.origin))?;
        }
        Ok(())
    }
}

impl std::error::Error for MappingLoadError {}

/// Where a finding belongs: route and field names.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct At<'a> {
    pub route: Option<&'a str>,
    pub field: Option<&'a str>,
}

impl<'a> At<'a> {
    pub fn route(route: &'a str) -> At<'a> {
        At {
            route: Some(route),
            field: None,
        }
    }

    pub fn field(self, field: &'a str) -> At<'a> {
        At {
            field: Some(field),
            ..self
        }
    }
}

/// Collects diagnostics while a mapping is read and compiled.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub items: Vec<Diagnostic>,
    /// The mapping file's text, to place a fault inside a template on its line and column
    /// ([`Report::template_error`]); empty when not known.
    pub text: String,
}

impl Report {
    /// A report on the mapping file `text`.
    pub fn on_text(text: &str) -> Report {
        Report {
            items: Vec::new(),
            text: text.to_owned(),
        }
    }

    /// An error in the template `source` whose YAML node is at `loc`: `{what}: {message}`, at the fault's
    /// own line and column in the file when the template's line can be found there as written (a plain
    /// or quoted scalar without escapes, a block scalar), else at the node with "(template line L,
    /// column C)".
    pub fn template_error(&mut self, at: At<'_>, loc: Loc, what: &str, source: &str, error: &TemplateError) {
        let Some((line, column)) = error.position else {
            self.error(at, loc, format!("{what}: {}", error.message));
            return;
        };
        match self.locate(loc, source, line, column) {
            Some(found) => self.error(at, found, format!("{what}: {}", error.message)),
            None => self.error(
                at,
                loc,
                format!("{what}: {} (template line {line}, column {column})", error.message),
            ),
        }
    }

    /// Where column `column` of line `line` of the template `source` (1-based) is in the file: the
    /// first place at or after the node's start whose line holds that template line (trimmed) verbatim.
    fn locate(&self, node: Loc, source: &str, line: usize, column: usize) -> Option<Loc> {
        let template_line = source.lines().nth(line.checked_sub(1)?)?;
        let trimmed = template_line.trim_start();
        let indent = template_line.len() - trimmed.len();
        let needle = trimmed.trim_end();
        let offset = template_line
            .char_indices()
            .nth(column.checked_sub(1)?)
            .map(|(byte, _)| byte)?
            .checked_sub(indent)?;
        let first = node.line?;
        let spread = source.lines().count() + 2;
        for (index, text) in self.text.lines().enumerate().skip(first - 1).take(spread) {
            let from = match index + 1 == first {
                true => text
                    .char_indices()
                    .nth(node.column?.saturating_sub(1))
                    .map_or(text.len(), |(b, _)| b),
                false => 0,
            };
            if needle.is_empty() {
                return None;
            }
            if let Some(found) = text.get(from..).and_then(|rest| rest.find(needle)) {
                let at = from + found + offset;
                return Some(Loc {
                    line: Some(index + 1),
                    column: Some(text.get(..at)?.chars().count() + 1),
                });
            }
        }
        None
    }

    pub fn error(&mut self, at: At<'_>, loc: Loc, message: impl Into<String>) {
        self.push(Severity::Error, at, loc, message.into());
    }

    pub fn warning(&mut self, at: At<'_>, loc: Loc, message: impl Into<String>) {
        self.push(Severity::Warning, at, loc, message.into());
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Everything, in file order (findings without a position last, in the order found).
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items
            .sort_by_key(|d| (d.line.unwrap_or(usize::MAX), d.column.unwrap_or(usize::MAX)));
        self.items
    }

    fn push(&mut self, severity: Severity, at: At<'_>, loc: Loc, message: String) {
        self.items.push(Diagnostic {
            severity,
            route: at.route.map(str::to_owned),
            field: at.field.map(str::to_owned),
            line: loc.line,
            column: loc.column,
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(line: Option<usize>, route: Option<&str>, field: Option<&str>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            route: route.map(String::from),
            field: field.map(String::from),
            line,
            column: line.map(|_| 7),
            message: "unknown type \"numbr\"".into(),
        }
    }

    #[test]
    fn diagnostics_display_like_compiler_messages() {
        let cases = [
            (
                diagnostic(Some(12), Some("website-quote"), Some("properties.amount")),
                "mapping.yaml:12:7: error: route website-quote, properties.amount: unknown type \"numbr\"",
            ),
            (
                diagnostic(None, Some("website-quote"), None),
                "mapping.yaml: error: route website-quote: unknown type \"numbr\"",
            ),
            (
                diagnostic(Some(1), None, None),
                "mapping.yaml:1:7: error: unknown type \"numbr\"",
            ),
        ];
        for (d, want) in cases {
            assert_eq!(d.in_file("mapping.yaml").to_string(), want);
        }
        assert_eq!(
            diagnostic(Some(3), None, Some("version")).to_string(),
            "3:7: error: version: unknown type \"numbr\""
        );
    }

    #[test]
    fn a_load_error_lists_every_diagnostic_one_per_line() {
        let err = MappingLoadError {
            origin: "m.yaml".into(),
            diagnostics: vec![diagnostic(Some(1), None, None), diagnostic(Some(2), Some("r"), None)],
        };
        let text = err.to_string();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().all(|l| l.starts_with("m.yaml:")), "{text}");
    }
}
