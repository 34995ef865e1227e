//! Filter, test and method names of a compiled template, resolved at load: a name the environment does
//! not have fails every render that reaches it, so it is a load error with a "did you mean". Reads the
//! template's compiled instructions (minijinja's `unstable_machinery`); never renders anything.
//!
//! Why the instructions: they are what the engine runs, so a `{% filter %}` block, `is not`, a filter in
//! a `match:` or inside a loop are all seen, with no parser of our own. minijinja has no stable API
//! for this; a change of the machinery breaks our build or the tests below, not a delivery.
//!
//! Whether a filter or test exists is asked of the environment itself ([`State::apply_filter`] and
//! [`State::perform_test`] answer `UnknownFilter`/`UnknownTest` for a missing name), so the checks
//! follow whatever the environment registers. Methods: our environment has no unknown-method callback
//! (minijinja-contrib's pycompat is not used), so strings, lists and maps have no methods at all, and
//! the only methods are the loop's ([`LOOP_METHODS`]). A template that stores a callable in a map
//! (`dict(f=range).f(3)`, which minijinja calls by method syntax) is left unchecked for methods.

use minijinja::machinery::{Instruction, Instructions, get_compiled_template};
use minijinja::{Environment, ErrorKind, State, Template};

use super::super::spec::nearest;

/// The methods minijinja's `loop` object has (`loop.cycle(…)`, `loop.changed(…)`): the only methods
/// in an environment without pycompat.
pub(crate) const LOOP_METHODS: [&str; 2] = ["changed", "cycle"];

/// minijinja 3.1's built-in filter names (its `defaults.rs` with `builtins` and `json`), and ours:
/// candidates for "did you mean", kept only when the environment has them.
const FILTER_CANDIDATES: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
    "zip",
];

/// minijinja 3.1's built-in test names (word forms; `==` and the like are operators): candidates for
/// "did you mean", kept only when the environment has them.
const TEST_CANDIDATES: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "equalto",
    "escaped",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "greaterthan",
    "gt",
    "in",
    "int",
    "integer",
    "iterable",
    "le",
    "lessthan",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

/// Python methods people write in Jinja, and what does the same here (where it is not a filter of
/// the same name, which [`method_hint`] finds by itself).
const PYTHON_METHODS: &[(&str, &str)] = &[
    ("startswith", "the test `is startingwith(…)`"),
    ("endswith", "the test `is endingwith(…)`"),
    ("strip", "the filter `| trim`"),
    (
        "get",
        "`value[\"key\"]` (or `value.key`), with `| default(…)` for a missing key",
    ),
    ("keys", "`| list` (a map iterates over its keys)"),
    ("values", "`| items` (pairs of key and value)"),
];

/// One unknown name: what to say, and where in the template (1-based line; 1-based column in
/// characters when the name could be found on that line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownName {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Filter,
    Test,
    Method,
}

/// Every filter, test and method `template` uses that `env` does not have, in the order compiled
/// (each name once).
pub(crate) fn unknown_names(env: &Environment<'_>, template: &Template<'_, '_>) -> Vec<UnknownName> {
    let compiled = get_compiled_template(template);
    let source = template.source();
    let mut state = env.empty_state();
    let mut all = Vec::new();
    for instructions in std::iter::once(&compiled.instructions).chain(compiled.blocks.values()) {
        collect(instructions, &mut all);
    }
    // `dict(f=range).f()` calls a stored value by method syntax: with a callable global looked up as a
    // value, a method name cannot be judged.
    let callable_values = all.iter().any(|(kind, _, _)| *kind == Kind::Method) && stores_callables(env, compiled);
    let mut seen: Vec<(Kind, &str)> = Vec::new();
    let mut found = Vec::new();
    for (kind, name, line) in all {
        if seen.contains(&(kind, name)) {
            continue;
        }
        seen.push((kind, name));
        let message = match kind {
            Kind::Filter if !has_filter(&mut state, name) => filter_message(&mut state, name),
            Kind::Test if !has_test(&mut state, name) => test_message(&mut state, name),
            Kind::Method if !callable_values && !LOOP_METHODS.contains(&name) => method_message(&mut state, name),
            _ => continue,
        };
        let column = line
            .and_then(|l| source.lines().nth(l - 1))
            .and_then(|text| column_of(text, kind, name));
        found.push(UnknownName { message, line, column });
    }
    found
}

/// `(kind, name, line)` of every instruction that names a filter, test or method.
fn collect<'a>(instructions: &Instructions<'a>, into: &mut Vec<(Kind, &'a str, Option<usize>)>) {
    let mut index = 0u32;
    while let Some(instruction) = instructions.get(index) {
        let named = match instruction {
            Instruction::ApplyFilter(name, ..) => Some((Kind::Filter, *name)),
            Instruction::PerformTest(name, ..) => Some((Kind::Test, *name)),
            Instruction::CallMethod(name, ..) => Some((Kind::Method, *name)),
            _ => None,
        };
        if let Some((kind, name)) = named {
            into.push((kind, name, instructions.get_line(index)));
        }
        index += 1;
    }
}

/// Whether the template looks up a callable global (`range`, `dict`, …) as a value rather than
/// calling it: the only way a map can hold something method syntax may call.
fn stores_callables(env: &Environment<'_>, compiled: &minijinja::machinery::CompiledTemplate<'_>) -> bool {
    // Our globals are all functions (`range`, `dict`); a data global would only make this cautious.
    let callables: Vec<String> = env.globals().map(|(name, _)| name.to_owned()).collect();
    std::iter::once(&compiled.instructions)
        .chain(compiled.blocks.values())
        .any(|instructions| {
            let mut index = 0u32;
            while let Some(instruction) = instructions.get(index) {
                if let Instruction::Lookup(name) = instruction
                    && callables.iter().any(|c| c == name)
                {
                    return true;
                }
                index += 1;
            }
            false
        })
}

fn has_filter(state: &mut State<'_, '_>, name: &str) -> bool {
    // Called without a value, a filter that exists fails on its arguments (or runs on nothing).
    !matches!(state.apply_filter(name, &[]), Err(e) if e.kind() == ErrorKind::UnknownFilter)
}

fn has_test(state: &mut State<'_, '_>, name: &str) -> bool {
    !matches!(state.perform_test(name, &[]), Err(e) if e.kind() == ErrorKind::UnknownTest)
}

fn filter_message(state: &mut State<'_, '_>, name: &str) -> String {
    let near = nearest(name, FILTER_CANDIDATES.iter().copied().filter(|c| has_filter(state, c)));
    let mut message = format!("unknown filter `{name}`");
    match near {
        _ if has_test(state, name) => message.push_str(&format!(" (`{name}` is a test: `value is {name}`)")),
        Some(near) => message.push_str(&format!(" (did you mean `{near}`?)")),
        None => message
            .push_str(" (the filters are minijinja's built-in ones: https://docs.rs/minijinja/3/minijinja/filters/)"),
    }
    message
}

fn test_message(state: &mut State<'_, '_>, name: &str) -> String {
    let near = nearest(name, TEST_CANDIDATES.iter().copied().filter(|c| has_test(state, c)));
    let mut message = format!("unknown test `{name}`");
    match near {
        _ if has_filter(state, name) => message.push_str(&format!(" (`{name}` is a filter: `value | {name}`)")),
        Some(near) => message.push_str(&format!(" (did you mean `is {near}`?)")),
        None => {
            message.push_str(" (the tests are minijinja's built-in ones: https://docs.rs/minijinja/3/minijinja/tests/)")
        }
    }
    message
}

fn method_message(state: &mut State<'_, '_>, name: &str) -> String {
    format!(
        "unknown method `.{name}()`: strings, lists and maps have no methods in these templates (only \
         `loop.cycle()` and `loop.changed()` exist), so it fails on every delivery; {}",
        method_hint(state, name)
    )
}

fn method_hint(state: &mut State<'_, '_>, name: &str) -> String {
    if let Some((_, instead)) = PYTHON_METHODS.iter().find(|(method, _)| *method == name) {
        return format!("use {instead}");
    }
    if has_filter(state, name) {
        return format!("use the filter: `value | {name}(…)` instead of `value.{name}(…)`");
    }
    let near = nearest(name, FILTER_CANDIDATES.iter().copied().filter(|c| has_filter(state, c)));
    match near {
        Some(near) => format!("did you mean the filter `| {near}`?"),
        None => "use a filter (https://docs.rs/minijinja/3/minijinja/filters/)".to_owned(),
    }
}

/// The 1-based column (in characters) of `name` on `line` where it is used as `kind`: after `|` or
/// `filter` for a filter, after `is` or `is not` for a test, after `.` and before `(` for a method.
fn column_of(line: &str, kind: Kind, name: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(found) = line.get(from..).and_then(|rest| rest.find(name)) {
        let start = from + found;
        let end = start + name.len();
        from = end;
        let before = line.get(..start).unwrap_or_default();
        let after = line.get(end..).unwrap_or_default();
        if before.chars().next_back().is_some_and(is_ident) || after.chars().next().is_some_and(is_ident) {
            continue;
        }
        let before = before.trim_end();
        let fits = match kind {
            Kind::Filter => before.ends_with('|') || ends_with_word(before, "filter"),
            Kind::Test => {
                let before = before
                    .strip_suffix("not")
                    .filter(|b| b.ends_with(char::is_whitespace))
                    .unwrap_or(before);
                ends_with_word(before.trim_end(), "is")
            }
            Kind::Method => before.ends_with('.') && after.trim_start().starts_with('('),
        };
        if fits {
            return Some(line.get(..start).unwrap_or_default().chars().count() + 1);
        }
    }
    None
}

fn ends_with_word(text: &str, word: &str) -> bool {
    text.strip_suffix(word).is_some_and(|rest| {
        !rest
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::super::Templates;

    /// The load error of a one-template mapping (`r/f`), or `None` when it loads.
    fn error_of(source: &str) -> Option<String> {
        Templates::new().add("r/f".into(), source).err().map(|e| e.to_string())
    }

    /// Where the first unknown name is: (template line, column).
    fn position_of(source: &str) -> Option<(usize, usize)> {
        Templates::new()
            .add("r/f".into(), source)
            .err()
            .and_then(|e| e.position)
    }

    /// Variants of an unknown filter: misspelt (the issue's `defualt`), one with no near name, a
    /// test used as a filter, in a `{% filter %}` block, in a loop, after another filter, in a `match:`.
    #[test]
    fn unknown_filters_are_load_errors_with_a_near_name() {
        let cases = [
            (
                "{{ fields.plan | defualt('quote') }}",
                "unknown filter `defualt` (did you mean `default`?)",
            ),
            (
                "{{ fields.plan | frobnicate }}",
                "unknown filter `frobnicate` (the filters are minijinja's",
            ),
            (
                "{{ fields.n | odd }}",
                "unknown filter `odd` (`odd` is a test: `value is odd`)",
            ),
            (
                "{% filter uper %}x{% endfilter %}",
                "unknown filter `uper` (did you mean `upper`?)",
            ),
            (
                "{% for x in fields.l %}{{ x | lenght }}{% endfor %}",
                "unknown filter `lenght` (did you mean `length`?)",
            ),
            (
                "{{ fields.a | trim | jion(', ') }}",
                "unknown filter `jion` (did you mean `join`?)",
            ),
            (
                "{{ fields.a | tojsn }}",
                "unknown filter `tojsn` (did you mean `tojson`?)",
            ),
        ];
        for (source, want) in cases {
            let err = error_of(source).unwrap_or_else(|| panic!("{source:?} must not load"));
            assert!(err.contains(want), "{source:?}: {err}");
        }
        let mut templates = Templates::new();
        let err = templates
            .add_expression("r/match".into(), "fields.plan | lowr == \"team\"")
            .expect_err("match");
        assert!(
            err.message.contains("unknown filter `lowr` (did you mean `lower`?)"),
            "{err}"
        );
        assert_eq!(
            err.position,
            Some((1, 15)),
            "the column counts from the expression, not `{{{{ `"
        );
    }

    /// Variants of an unknown test: misspelt, `is not`, a filter used as a test, one with no near name.
    #[test]
    fn unknown_tests_are_load_errors_with_a_near_name() {
        let cases = [
            (
                "{% if fields.x is definde %}y{% endif %}",
                "unknown test `definde` (did you mean `is defined`?)",
            ),
            (
                "{% if fields.x is not nome %}y{% endif %}",
                "unknown test `nome` (did you mean `is none`?)",
            ),
            (
                "{{ fields.x is trim }}",
                "unknown test `trim` (`trim` is a filter: `value | trim`)",
            ),
            (
                "{{ fields.x is whatsoever }}",
                "unknown test `whatsoever` (the tests are minijinja's",
            ),
            (
                "{{ fields.s is startswith('a') }}",
                "unknown test `startswith` (did you mean `is startingwith`?)",
            ),
        ];
        for (source, want) in cases {
            let err = error_of(source).unwrap_or_else(|| panic!("{source:?} must not load"));
            assert!(err.contains(want), "{source:?}: {err}");
        }
    }

    /// Variants of a method that does not exist: the issue's `.split('/')`, Python's `.items()`,
    /// `.upper()`, `.startswith()`, `.get()`, a name that is nothing, on a loop.
    #[test]
    fn methods_that_do_not_exist_are_load_errors_saying_what_to_use() {
        let cases = [
            (
                "{{ fields.path.split('/') | last }}",
                "unknown method `.split()`",
                "use the filter: `value | split(…)`",
            ),
            (
                "{% for k, v in fields.o.items() %}{{ k }}{% endfor %}",
                "unknown method `.items()`",
                "`value | items(…)`",
            ),
            (
                "{{ fields.s.upper() }}",
                "unknown method `.upper()`",
                "`value | upper(…)`",
            ),
            (
                "{{ fields.s.startswith('a') }}",
                "unknown method `.startswith()`",
                "the test `is startingwith(…)`",
            ),
            ("{{ fields.o.get('k') }}", "unknown method `.get()`", "`value[\"key\"]`"),
            (
                "{{ fields.s.frobnicate() }}",
                "unknown method `.frobnicate()`",
                "use a filter",
            ),
            (
                "{% for i in [1] %}{{ loop.cylce('a', 'b') }}{% endfor %}",
                "unknown method `.cylce()`",
                "use a filter",
            ),
        ];
        for (source, want, hint) in cases {
            let err = error_of(source).unwrap_or_else(|| panic!("{source:?} must not load"));
            assert!(err.contains(want) && err.contains(hint), "{source:?}: {err}");
            assert!(err.contains("fails on every delivery"), "{source:?}: {err}");
        }
    }

    /// What a template may use loads: every filter and test the environment has (ours included),
    /// `loop.cycle`/`loop.changed`, a callable stored in a map, attributes named like methods.
    #[test]
    fn names_the_environment_has_load() {
        for fine in [
            "{{ fields.a | default('x') | d('y') | tojson | pprint | string | lower | upper | trim }}",
            "{{ [1, 2] | sum }}{{ fields.o | items | list }}{{ fields.s | split('/') | join(',') }}",
            "{% filter upper %}x{% endfilter %}",
            "{{ fields.x is defined and fields.x is not none and fields.s is startingwith('a') }}",
            "{% for i in [1, 2] %}{{ loop.cycle('a', 'b') }}{{ loop.changed(i) }}{% endfor %}",
            "{{ dict(f=range).f(3) | list }}",
            "{{ fields.split }}{{ fields.items }}",
            "{{ fields.x | replace('a', 'b') | format() }}{{ 4 is divisibleby(2) }}",
        ] {
            assert_eq!(error_of(fine), None, "{fine:?}");
        }
    }

    /// The candidates for "did you mean" are names this environment really has: a list that drifted
    /// from minijinja would suggest a name that fails.
    #[test]
    fn every_candidate_name_exists_in_the_environment() {
        let templates = Templates::new();
        let mut state = templates.env.empty_state();
        for name in super::FILTER_CANDIDATES {
            // `urlencode` needs minijinja's `urlencode` feature, which we do not enable.
            assert!(
                super::has_filter(&mut state, name) || *name == "urlencode",
                "filter {name}"
            );
        }
        for name in super::TEST_CANDIDATES {
            assert!(super::has_test(&mut state, name), "test {name}");
        }
        assert!(
            !super::has_filter(&mut state, "urlencode"),
            "urlencode is off: drop it or enable the feature"
        );
    }

    /// What makes methods an error: minijinja, as we configure it, fails these on every value. If
    /// pycompat (an unknown-method callback) is ever enabled, this fails and the method check must go.
    #[test]
    fn strings_lists_and_maps_have_no_methods_at_render_time() {
        let env = Templates::new().env;
        for source in [
            "{{ 'a/b'.split('/') }}",
            "{{ {'a': 1}.items() }}",
            "{{ [1].append(2) }}",
            "{{ 'a'.upper() }}",
        ] {
            let err = env.render_str(source, ()).expect_err(source);
            assert_eq!(err.kind(), minijinja::ErrorKind::UnknownMethod, "{source}: {err}");
        }
        let looped = env.render_str("{% for i in [1, 2] %}{{ loop.cycle('a', 'b') }}{% endfor %}", ());
        assert_eq!(looped.map_err(|e| e.to_string()).as_deref(), Ok("ab"));
    }

    #[test]
    fn the_position_is_the_name_on_its_template_line() {
        let cases = [
            ("{{ fields.plan | defualt('quote') }}", (1, 18)),
            ("line one\n  {{ fields.a|lenght }}", (2, 15)),
            ("{{ fields.a is not definde }}", (1, 20)),
            ("{{ fields.p . split ('/') }}", (1, 15)),
            ("é {{ fields.s.splt() }}", (1, 15)),
        ];
        for (source, want) in cases {
            assert_eq!(position_of(source), Some(want), "{source:?}");
        }
    }
}
