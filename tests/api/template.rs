//! The SAM template (`template.yaml`) read as data and held to the project's contract: every
//! function is built from one of this package's binaries for the custom runtime; the webhook
//! function answers on `POST /hooks/{route}` before API Gateway gives up; it may read only its
//! secret and send only to the queues its environment names; and the queue `DEALHOOK_DLQ_URL`
//! names is the one that is encrypted, kept 14 days, allowed by the policy and alarmed on; and
//! idempotency is opt-in, its table keyed as the code expects (`id`, TTL on `expires_at`) and
//! only readable and writable item by item (`template_schema.rs` gives that key to other tests); and
//! the bucket `DEALHOOK_PAYLOAD_BUCKET` names (dead letters too big for a message) is encrypted,
//! private, TLS-only, expires objects no sooner than the queue drops messages, and may be written
//! only under the envelopes' prefix. Queue mode (`Mode=queue`) is opt-in and leaves sync mode as it
//! was: everything it adds exists under one condition, and nothing else refers to it except through
//! `!If [<condition>, …, !Ref AWS::NoValue]`; its work queue redrives to the dead-letter queue, hides
//! a batch longer than six worker timeouts and is alarmed on its age; its worker is fed by an event
//! source mapping that reports partial batch failures, whose concurrency, batch size and window are
//! the README's rate arithmetic for each HubSpot tier, and it may consume only its queue.
//! CloudFormation's own rules are cfn-lint's and `sam validate`'s job (`scripts/check-template`).
//!
//! Reading CloudFormation YAML: the template uses short-form tags (`!Ref`, `!GetAtt`, `!Sub`,
//! `!If`). serde-saphyr keeps a node's tag when it is read through its `Tagged<T>` wrapper, so
//! [`Node`] is a generic YAML value that keeps every tag, and [`Node::call`] reads an intrinsic
//! function in the short (`!GetAtt Q.Arn`) and the long (`Fn::GetAtt: [Q, Arn]`) form alike.
//!
//! Each check returns the rules it found broken, one message each, starting with the rule's
//! name in brackets; the tests at the end break the template on purpose to show each check bites.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Tagged;

use crate::template_schema;

// ---------------------------------------------------------------------------------------------
// A YAML value that keeps its tags

/// One YAML node and its tag (`Some("!Ref")` for `!Ref X`; `None` when untagged).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    tag: Option<String>,
    value: Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    /// A number, kept as written.
    Number(String),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order.
    Map(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Tagged(value, tag) = Tagged::<Value>::deserialize(deserializer)?;
        Ok(Node { tag, value })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;

        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Number(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
                Ok(Value::Number(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Number(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Value::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Node>()? {
                    entries.push(entry);
                }
                Ok(Value::Map(entries))
            }
        }

        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Parses YAML keeping tags. YAML 1.2 booleans only, so a name like `N` or `No` stays a string.
fn parse_yaml(text: &str) -> Result<Node, String> {
    let options = serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
    };
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| e.to_string())
}

impl Node {
    fn untagged(&self) -> Option<&Value> {
        self.tag.is_none().then_some(&self.value)
    }

    /// The value under `key` of an untagged mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self.untagged()? {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a path of keys.
    pub(crate) fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |node, key| node.get(key))
    }

    fn entries(&self) -> &[(String, Node)] {
        match self.untagged() {
            Some(Value::Map(entries)) => entries,
            _ => &[],
        }
    }

    /// A plain string or number, as written.
    pub(crate) fn text(&self) -> Option<&str> {
        match self.untagged()? {
            Value::Str(s) | Value::Number(s) => Some(s),
            _ => None,
        }
    }

    /// An intrinsic function call, short or long form: (`Ref` or `Fn::<Name>`, its argument).
    fn call(&self) -> Option<(String, &Value)> {
        match &self.tag {
            Some(tag) if tag.starts_with('!') && !tag.starts_with("!!") => {
                let name = &tag[1..];
                let name = if name == "Ref" || name == "Condition" {
                    name.to_owned()
                } else {
                    format!("Fn::{name}")
                };
                Some((name, &self.value))
            }
            Some(_) => None,
            None => match &self.value {
                Value::Map(entries) if entries.len() == 1 => {
                    let (key, argument) = &entries[0];
                    (key == "Ref" || key.starts_with("Fn::")).then(|| (key.clone(), &argument.value))
                }
                _ => None,
            },
        }
    }

    /// `X` of `!Ref X`.
    fn ref_name(&self) -> Option<&str> {
        match self.call()? {
            (name, Value::Str(target)) if name == "Ref" => Some(target),
            _ => None,
        }
    }

    /// (`A`, `B`) of `!GetAtt A.B` or `Fn::GetAtt: [A, B]`.
    fn get_att(&self) -> Option<(&str, &str)> {
        match self.call()? {
            (name, Value::Str(s)) if name == "Fn::GetAtt" => s.split_once('.'),
            (name, Value::Seq(items)) if name == "Fn::GetAtt" && items.len() == 2 => {
                Some((items[0].text()?, items[1].text()?))
            }
            _ => None,
        }
    }

    /// The template string of `!Sub "…"` or `!Sub ["…", {…}]`.
    pub(crate) fn sub_text(&self) -> Option<&str> {
        match self.call()? {
            (name, Value::Str(s)) if name == "Fn::Sub" => Some(s),
            (name, Value::Seq(items)) if name == "Fn::Sub" => items.first()?.text(),
            _ => None,
        }
    }

    /// (map, top-level key, second-level key) of `!FindInMap [M, k1, k2]`.
    fn find_in_map(&self) -> Option<(&str, &Node, &str)> {
        match self.call()? {
            (name, Value::Seq(items)) if name == "Fn::FindInMap" && items.len() == 3 => {
                Some((items[0].text()?, &items[1], items[2].text()?))
            }
            _ => None,
        }
    }

    /// The logical names this node itself refers to: `!Ref X`, `!GetAtt X.A`, `${X}` or `${X.A}` in
    /// a `!Sub`, `!Condition X`, the map of a `!FindInMap` (not its children's).
    fn own_references(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        names.extend(self.ref_name());
        names.extend(self.get_att().map(|(name, _)| name));
        if let Some(text) = self.sub_text() {
            for piece in text.split("${").skip(1) {
                let variable = piece.split('}').next().unwrap_or("");
                if !variable.starts_with('!') {
                    names.extend(variable.split('.').next());
                }
            }
        }
        if let Some((name, Value::Str(target))) = self.call()
            && name == "Condition"
        {
            names.push(target);
        }
        names.extend(self.find_in_map().map(|(map, _, _)| map));
        names
    }

    /// The nodes directly under this one (items, values, a tagged node's value).
    fn children(&self) -> Vec<&Node> {
        match &self.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Map(entries) => entries.iter().map(|(_, n)| n).collect(),
            _ => Vec::new(),
        }
    }

    /// (condition, then, else) of `!If [C, a, b]`.
    pub(crate) fn if_parts(&self) -> Option<(&str, &Node, &Node)> {
        match self.call()? {
            (name, Value::Seq(items)) if name == "Fn::If" && items.len() == 3 => {
                Some((items[0].text()?, &items[1], &items[2]))
            }
            _ => None,
        }
    }

    /// The values this node can stand for: the branches of `!If`, the items of a list, or the
    /// node itself; `!Ref AWS::NoValue` stands for nothing.
    pub(crate) fn alternatives(&self) -> Vec<&Node> {
        if let Some((_, then, otherwise)) = self.if_parts() {
            return [then, otherwise].into_iter().flat_map(Node::alternatives).collect();
        }
        match self.untagged() {
            Some(Value::Seq(items)) => items.iter().flat_map(Node::alternatives).collect(),
            _ if self.ref_name() == Some("AWS::NoValue") => Vec::new(),
            _ => vec![self],
        }
    }

    /// (separator, items) of `!Join [sep, [items]]`.
    pub(crate) fn join_parts(&self) -> Option<(&str, Vec<&Node>)> {
        match self.call()? {
            (name, Value::Seq(items)) if name == "Fn::Join" && items.len() == 2 => match &items[1].value {
                Value::Seq(parts) => Some((items[0].text()?, parts.iter().collect())),
                _ => None,
            },
            _ => None,
        }
    }

    /// The strings of a string or a list of strings (IAM's `Action`).
    fn strings(&self) -> Vec<&str> {
        self.alternatives().into_iter().filter_map(Node::text).collect()
    }

    /// Whether `!Ref name` (or `${name}` in a `!Sub`) occurs anywhere in this node.
    fn mentions(&self, name: &str) -> bool {
        if self.ref_name() == Some(name) || self.sub_text().is_some_and(|s| s.contains(&format!("${{{name}}}"))) {
            return true;
        }
        match &self.value {
            Value::Seq(items) => items.iter().any(|n| n.mentions(name)),
            Value::Map(entries) => entries.iter().any(|(_, n)| n.mentions(name)),
            _ => false,
        }
    }
}

impl fmt::Display for Node {
    /// Short form, on one line (for messages).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(tag) = &self.tag {
            write!(f, "{tag} ")?;
        }
        match &self.value {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => f.write_str(n),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Seq(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", items.join(", "))
            }
            Value::Map(entries) => {
                let entries: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "{{{}}}", entries.join(", "))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The template and the project it belongs to

pub(crate) struct Template {
    root: Node,
}

impl Template {
    pub(crate) fn parse(text: &str) -> Template {
        let root = parse_yaml(text).unwrap_or_else(|e| panic!("template.yaml is not readable YAML: {e}"));
        Template { root }
    }

    pub(crate) fn resource(&self, name: &str) -> Option<&Node> {
        self.root.at(&["Resources", name])
    }

    /// The node at a path of keys from the template's root.
    pub(crate) fn at(&self, path: &[&str]) -> Option<&Node> {
        self.root.at(path)
    }

    fn resource_type(&self, name: &str) -> Option<&str> {
        self.resource(name)?.get("Type")?.text()
    }

    pub(crate) fn resources_of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
        let resources = self.root.get("Resources").map(Node::entries).unwrap_or_default();
        resources
            .iter()
            .filter(move |(_, r)| r.get("Type").and_then(Node::text) == Some(kind))
            .map(|(name, r)| (name.as_str(), r))
    }

    fn is_parameter(&self, name: &str) -> bool {
        self.root.at(&["Parameters", name]).is_some()
    }

    fn functions(&self) -> Vec<Function<'_>> {
        self.resources_of_type("AWS::Serverless::Function")
            .map(|(name, resource)| Function {
                name,
                resource,
                globals: self.root.at(&["Globals", "Function"]),
            })
            .collect()
    }

    /// The function behind the HTTP API: the one with an `HttpApi` event (there must be one).
    fn http_function(&self) -> Result<Function<'_>, String> {
        let mut with_http = self.functions().into_iter().filter(|f| !f.http_events().is_empty());
        match (with_http.next(), with_http.next()) {
            (Some(function), None) => Ok(function),
            (None, _) => Err("[event] no AWS::Serverless::Function has an HttpApi event".to_owned()),
            (Some(a), Some(b)) => Err(format!(
                "[event] {} and {} both have HttpApi events; the contract knows one webhook function",
                a.name, b.name
            )),
        }
    }

    /// (condition, table) of the webhook function's `DEALHOOK_IDEMPOTENCY_TABLE: !If [condition,
    /// !Ref table, !Ref AWS::NoValue]`: idempotency is opt-in, so the variable is set only when
    /// the condition holds, and names a table of this template.
    pub(crate) fn idempotency_table(&self) -> Result<(&str, &str), String> {
        let f = self.http_function()?;
        let Some(var) = f.env_var("DEALHOOK_IDEMPOTENCY_TABLE") else {
            return Err(format!(
                "[idempotency] {}: DEALHOOK_IDEMPOTENCY_TABLE is not set",
                f.name
            ));
        };
        let opt_in = var.if_parts().and_then(|(condition, then, otherwise)| {
            let table = then.ref_name()?;
            (otherwise.ref_name() == Some("AWS::NoValue")).then_some((condition, table))
        });
        let Some((condition, table)) = opt_in else {
            return Err(format!(
                "[idempotency] {}: DEALHOOK_IDEMPOTENCY_TABLE is {var}, not !If [<condition>, !Ref <table>, \
                 !Ref AWS::NoValue] (idempotency is opt-in)",
                f.name
            ));
        };
        if self.resource_type(table) != Some("AWS::DynamoDB::Table") {
            return Err(format!(
                "[idempotency] {}: DEALHOOK_IDEMPOTENCY_TABLE names {table}, not an AWS::DynamoDB::Table of this template",
                f.name
            ));
        }
        Ok((condition, table))
    }
}

/// An `AWS::Lambda::EventSourceMapping`: the function it invokes (`!Ref F`) and the queue it reads
/// (`!GetAtt Q.Arn`), when written so.
struct EventSourceMapping<'a> {
    name: &'a str,
    resource: &'a Node,
    function: Option<&'a str>,
    queue: Option<&'a str>,
}

impl Template {
    fn event_source_mappings(&self) -> Vec<EventSourceMapping<'_>> {
        self.resources_of_type("AWS::Lambda::EventSourceMapping")
            .map(|(name, resource)| {
                let property = |key: &str| resource.at(&["Properties", key]);
                EventSourceMapping {
                    name,
                    resource,
                    function: property("FunctionName").and_then(Node::ref_name),
                    queue: property("EventSourceArn")
                        .and_then(Node::get_att)
                        .filter(|(_, attribute)| *attribute == "Arn")
                        .map(|(q, _)| q),
                }
            })
            .collect()
    }

    fn condition_of(&self, resource: &str) -> Option<&str> {
        self.resource(resource)?.get("Condition")?.text()
    }

    /// A parameter's `AllowedValues`, as written.
    fn allowed_values(&self, parameter: &str) -> Vec<&str> {
        self.root
            .at(&["Parameters", parameter, "AllowedValues"])
            .map(Node::strings)
            .unwrap_or_default()
    }

    /// A whole number, written as one or read from a mapping: `!FindInMap [M, !Ref P, key]` is
    /// resolved for `P = value` when `parameter` is `Some((P, value))`. `None` otherwise.
    fn number(&self, node: &Node, parameter: Option<(&str, &str)>) -> Option<u64> {
        if let Some(text) = node.text() {
            return text.parse().ok();
        }
        let (map, key, second) = node.find_in_map()?;
        let (name, value) = parameter?;
        (key.ref_name() == Some(name)).then_some(())?;
        self.root.at(&["Mappings", map, value, second])?.text()?.parse().ok()
    }
}

/// An `AWS::Serverless::Function` with the template's `Globals.Function` behind it.
struct Function<'a> {
    name: &'a str,
    resource: &'a Node,
    globals: Option<&'a Node>,
}

impl<'a> Function<'a> {
    /// A property, from the function or else from `Globals`.
    fn property(&self, key: &str) -> Option<&'a Node> {
        let own = self.resource.at(&["Properties", key]);
        own.or_else(|| self.globals?.get(key))
    }

    fn metadata(&self, path: &[&str]) -> Option<&'a Node> {
        self.resource.get("Metadata")?.at(path)
    }

    /// Environment variables: `Globals` first, the function's own override them.
    fn env(&self) -> Vec<(&'a str, &'a Node)> {
        let globals = self.globals.and_then(|g| g.at(&["Environment", "Variables"]));
        let own = self.resource.at(&["Properties", "Environment", "Variables"]);
        let mut vars: Vec<(&str, &Node)> = Vec::new();
        for (name, value) in [globals, own].into_iter().flatten().flat_map(Node::entries) {
            vars.retain(|(n, _)| *n != name.as_str());
            vars.push((name.as_str(), value));
        }
        vars
    }

    fn env_var(&self, name: &str) -> Option<&'a Node> {
        self.env().into_iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn http_events(&self) -> Vec<(&'a str, &'a Node)> {
        let events = self
            .resource
            .at(&["Properties", "Events"])
            .map(Node::entries)
            .unwrap_or_default();
        events
            .iter()
            .filter(|(_, e)| e.get("Type").and_then(Node::text) == Some("HttpApi"))
            .map(|(name, e)| (name.as_str(), e))
            .collect()
    }

    /// The entries of `Policies` (a single entry may stand alone).
    fn policies(&self) -> Vec<&'a Node> {
        match self.property("Policies") {
            Some(node) => match node.untagged() {
                Some(Value::Seq(items)) => items.iter().collect(),
                _ => vec![node],
            },
            None => Vec::new(),
        }
    }
}

/// What the template must agree with: this package's binaries and the README.
struct Project {
    dir: PathBuf,
    bins: BTreeSet<String>,
    documented_vars: BTreeSet<String>,
}

impl Project {
    fn load() -> Project {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let cargo_toml = read(&dir.join("Cargo.toml"));
        let readme = read(&dir.join("README.md"));
        Project {
            bins: cargo_bins(&dir, &cargo_toml),
            documented_vars: documented_vars(&readme),
            dir,
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()))
}

pub(crate) fn template_text() -> String {
    read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml"))
}

/// Cargo's binary targets: `[[bin]]` names, and unless `autobins = false`, `src/bin/<name>.rs`,
/// `src/bin/<name>/main.rs` and the package itself when `src/main.rs` exists.
fn cargo_bins(dir: &Path, cargo_toml: &str) -> BTreeSet<String> {
    let quoted = |line: &str| line.split('"').nth(1).map(str::to_owned);
    let mut bins = BTreeSet::new();
    let mut section = String::new();
    let mut package_name = None;
    let mut autobins = true;
    for line in cargo_toml.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
        } else if let Some((key, _)) = line.split_once('=') {
            match (section.as_str(), key.trim()) {
                ("[[bin]]", "name") => bins.extend(quoted(line)),
                ("[package]", "name") => package_name = quoted(line),
                ("[package]", "autobins") => autobins = !line.contains("false"),
                _ => {}
            }
        }
    }
    if autobins {
        if dir.join("src/main.rs").exists() {
            bins.extend(package_name);
        }
        for entry in std::fs::read_dir(dir.join("src/bin")).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rs") || path.join("main.rs").exists() {
                bins.extend(path.file_stem().and_then(|s| s.to_str()).map(str::to_owned));
            }
        }
    }
    bins
}

/// The variables named in the first column of the README's "Configuration" table.
fn documented_vars(readme: &str) -> BTreeSet<String> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Configuration"))
        .expect("the README has a \"## Configuration\" section");
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| line.split('|').nth(1))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2))
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The contract, one check per rule family

type Check = fn(&Template, &Project) -> Vec<String>;

const CHECKS: [(&str, Check); 15] = [
    ("build", check_build),
    ("timeout", check_timeout),
    ("event", check_http_event),
    ("iam", check_iam),
    ("dead-letter-queue", check_dead_letter_queue),
    ("environment", check_environment),
    ("outputs", check_outputs),
    ("logs", check_log_groups),
    ("log-level", check_log_level),
    ("idempotency", check_idempotency),
    ("payload-bucket", check_payload_bucket),
    ("queue-mode", check_queue_mode),
    ("work-queue", check_work_queue),
    ("worker", check_worker),
    ("tracing", check_tracing),
];

/// Every function: built by cargo-lambda from a binary of this package, for the custom runtime.
fn check_build(t: &Template, p: &Project) -> Vec<String> {
    let mut broken = Vec::new();
    let functions = t.functions();
    if functions.is_empty() {
        broken.push("[build] the template has no AWS::Serverless::Function".to_owned());
    }
    for f in functions {
        let name = f.name;
        let text = |node: Option<&Node>| node.and_then(Node::text).unwrap_or("(missing)").to_owned();
        let build_method = text(f.metadata(&["BuildMethod"]));
        if build_method != "rust-cargolambda" {
            broken.push(format!(
                "[build] {name}: Metadata.BuildMethod is {build_method}, not rust-cargolambda"
            ));
        }
        let binary = text(f.metadata(&["BuildProperties", "Binary"]));
        if !p.bins.contains(&binary) {
            broken.push(format!(
                "[build] {name}: Metadata.BuildProperties.Binary {binary} is not a binary of this package {:?}",
                p.bins
            ));
        }
        let runtime = text(f.property("Runtime"));
        if runtime != "provided.al2023" {
            broken.push(format!("[build] {name}: Runtime is {runtime}, not provided.al2023"));
        }
        let handler = text(f.property("Handler"));
        if handler != "bootstrap" {
            broken.push(format!("[build] {name}: Handler is {handler}, not bootstrap"));
        }
        let code_uri = text(f.property("CodeUri"));
        if !p.dir.join(&code_uri).join("Cargo.toml").is_file() {
            broken.push(format!(
                "[build] {name}: CodeUri {code_uri} is not this package's directory"
            ));
        }
        let architectures = f.property("Architectures").map(Node::alternatives).unwrap_or_default();
        for arch in architectures {
            let allowed = match arch.ref_name() {
                Some(param) => t
                    .root
                    .at(&["Parameters", param, "AllowedValues"])
                    .is_some_and(|v| v.strings().iter().all(|a| ["x86_64", "arm64"].contains(a))),
                None => arch.text().is_some_and(|a| ["x86_64", "arm64"].contains(&a)),
            };
            if !allowed {
                broken.push(format!(
                    "[build] {name}: Architectures allows {arch}, not only x86_64/arm64"
                ));
            }
        }
    }
    broken
}

/// The webhook function finishes before API Gateway's 30 s integration limit, after a HubSpot call.
fn check_timeout(t: &Template, _: &Project) -> Vec<String> {
    let f = match t.http_function() {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let number = |node: Option<&Node>| node.and_then(Node::text).and_then(|s| s.parse::<u64>().ok());
    let Some(timeout) = number(f.property("Timeout")) else {
        return vec![format!("[timeout] {}: Timeout is not a number of seconds", f.name)];
    };
    let mut broken = Vec::new();
    if timeout >= 30 {
        broken.push(format!(
            "[timeout] {}: Timeout {timeout} s is not below API Gateway's 30 s integration limit",
            f.name
        ));
    }
    for (event, node) in f.http_events() {
        if let Some(ms) = number(node.at(&["Properties", "TimeoutInMillis"]))
            && (ms > 30_000 || ms <= timeout * 1000)
        {
            broken.push(format!(
                "[timeout] event {event}: TimeoutInMillis {ms} must be above the function's {timeout} s and at most 30000"
            ));
        }
    }
    if let Some(ms) = number(f.env_var("DEALHOOK_HUBSPOT_TIMEOUT_MS"))
        && ms >= timeout * 1000
    {
        broken.push(format!(
            "[timeout] DEALHOOK_HUBSPOT_TIMEOUT_MS {ms} leaves no time in a {timeout} s function for the dead letter"
        ));
    }
    broken
}

/// `POST /hooks/{route}`, on an HTTP API of this template that has throttling.
fn check_http_event(t: &Template, _: &Project) -> Vec<String> {
    let f = match t.http_function() {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let mut broken = Vec::new();
    let events = f.http_events();
    if events.len() != 1 {
        broken.push(format!(
            "[event] {} has {} HttpApi events, not one",
            f.name,
            events.len()
        ));
    }
    for (event, node) in events {
        let property = |key: &str| {
            node.at(&["Properties", key])
                .and_then(Node::text)
                .unwrap_or("(missing)")
        };
        if property("Method") != "POST" || property("Path") != "/hooks/{route}" {
            broken.push(format!(
                "[event] {event} is {} {}, not POST /hooks/{{route}}",
                property("Method"),
                property("Path")
            ));
        }
        let api = node.at(&["Properties", "ApiId"]).and_then(Node::ref_name);
        match api {
            Some(api) if t.resource_type(api) == Some("AWS::Serverless::HttpApi") => {
                for limit in ["ThrottlingRateLimit", "ThrottlingBurstLimit"] {
                    if t.resource(api)
                        .and_then(|r| r.at(&["Properties", "DefaultRouteSettings", limit]))
                        .is_none()
                    {
                        broken.push(format!("[event] {api} has no DefaultRouteSettings.{limit}"));
                    }
                }
            }
            _ => broken.push(format!(
                "[event] {event}: ApiId is not a !Ref to an AWS::Serverless::HttpApi of this template"
            )),
        }
    }
    broken
}

/// One IAM statement, with where it comes from (for messages).
struct Statement<'a> {
    origin: String,
    node: &'a Node,
}

impl<'a> Statement<'a> {
    fn actions(&self) -> Vec<&'a str> {
        self.node.get("Action").map(Node::strings).unwrap_or_default()
    }

    fn resources(&self) -> Vec<&'a Node> {
        self.node.get("Resource").map(Node::alternatives).unwrap_or_default()
    }
}

/// The statements of a policy document (`Statement` may be one statement or a list).
fn statements_of<'a>(document: &'a Node, origin: &str, out: &mut Vec<Statement<'a>>) {
    if let Some(statement) = document.get("Statement") {
        for (i, node) in statement.alternatives().into_iter().enumerate() {
            let sid = node
                .get("Sid")
                .and_then(Node::text)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            out.push(Statement {
                origin: format!("{origin} statement {i}{sid}"),
                node,
            });
        }
    }
}

/// IAM: every statement names its resources (only CloudWatch Logs actions may use `*`), no
/// managed policy or SAM policy template hides what it grants, the secret statement is scoped to
/// the secret parameter and `sqs:SendMessage` to the queues the function's environment names.
fn check_iam(t: &Template, _: &Project) -> Vec<String> {
    let mut broken = Vec::new();
    let mut all: Vec<Statement> = Vec::new();
    for f in t.functions() {
        // A role of the function's own is checked below with the template's roles, if it is one.
        let role_in_template = |role: &Node| {
            role.get_att()
                .is_some_and(|(r, _)| t.resource_type(r) == Some("AWS::IAM::Role"))
        };
        // SAM gives a function with a pull event the event's managed policy, which grants on "*"
        // (SQS: AWSLambdaSQSQueueExecutionRole). An AWS::Lambda::EventSourceMapping of its own does not.
        for (event, node) in f
            .resource
            .at(&["Properties", "Events"])
            .map(Node::entries)
            .unwrap_or_default()
        {
            let kind = node.get("Type").and_then(Node::text).unwrap_or("");
            if ["SQS", "Kinesis", "DynamoDB", "MSK", "MQ", "DocumentDB"].contains(&kind) {
                broken.push(format!(
                    "[iam] {}: event {event} is a SAM {kind} event, which attaches a managed policy on Resource \"*\"; \
                     declare an AWS::Lambda::EventSourceMapping and grant the poller's actions on the queue",
                    f.name
                ));
            }
        }
        if let Some(role) = f.property("Role").filter(|role| !role_in_template(role)) {
            broken.push(format!(
                "[iam] {}: Role {role} is not a role of this template, so what it grants cannot be checked",
                f.name
            ));
        }
        let mut own = Vec::new();
        for (i, policy) in f.policies().into_iter().enumerate() {
            if policy.get("Statement").is_some() {
                statements_of(policy, &format!("{} Policies[{i}]", f.name), &mut own);
            } else {
                let what = policy.text().map(str::to_owned).unwrap_or_else(|| {
                    let keys: Vec<&str> = policy.entries().iter().map(|(k, _)| k.as_str()).collect();
                    keys.join(", ")
                });
                broken.push(format!(
                    "[iam] {} Policies[{i}] ({what}) is a managed policy or SAM policy template: \
                     write the statement inline so its resources can be checked",
                    f.name
                ));
            }
        }
        broken.extend(check_secret_statements(t, &f, &own));
        broken.extend(check_queue_statements(t, &f, &own));
        all.extend(own);
    }
    for (name, role) in t.resources_of_type("AWS::IAM::Role") {
        let managed = role.at(&["Properties", "ManagedPolicyArns"]).map(Node::alternatives);
        for arn in managed.unwrap_or_default() {
            // The one managed policy allowed is the logs-only one SAM attaches to its own roles.
            let basic = arn
                .text()
                .or(arn.sub_text())
                .is_some_and(|a| a.ends_with(":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"));
            if !basic {
                broken.push(format!(
                    "[iam] {name}: managed policy {arn} grants what the template cannot check; \
                     only AWSLambdaBasicExecutionRole (logs) is allowed"
                ));
            }
        }
    }
    for kind in ["AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
        for (name, resource) in t.resources_of_type(kind) {
            for document in resource.at(&["Properties", "PolicyDocument"]).into_iter().chain(
                resource
                    .at(&["Properties", "Policies"])
                    .map(Node::alternatives)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| p.get("PolicyDocument")),
            ) {
                statements_of(document, name, &mut all);
            }
        }
    }
    for s in &all {
        broken.extend(check_statement_scope(s));
    }
    broken
}

fn check_statement_scope(s: &Statement) -> Vec<String> {
    let mut broken = Vec::new();
    for key in ["NotAction", "NotResource"] {
        if s.node.get(key).is_some() {
            broken.push(format!("[iam] {}: {key} grants everything but a list", s.origin));
        }
    }
    let actions = s.actions();
    if actions.is_empty() {
        broken.push(format!("[iam] {}: no Action", s.origin));
    }
    for action in &actions {
        if action.ends_with('*') {
            broken.push(format!(
                "[iam] {}: action {action} is a wildcard; name the actions",
                s.origin
            ));
        }
    }
    let logs_only = actions.iter().all(|a| a.starts_with("logs:"));
    let resources = s.resources();
    if resources.is_empty() {
        broken.push(format!("[iam] {}: no Resource", s.origin));
    }
    for resource in resources {
        let wildcard = match (resource.text(), resource.sub_text()) {
            (Some(text), _) => text.contains('*'),
            (None, Some(sub)) => sub.contains('*'),
            _ => false,
        };
        // Objects under one prefix of one bucket of the template: what `check_payload_bucket` holds to
        // the payload bucket's `dealhook/` prefix.
        let s3_objects = actions.iter().all(|a| a.starts_with("s3:")) && object_prefix(resource).is_some();
        if wildcard && !logs_only && !s3_objects {
            broken.push(format!(
                "[iam] {}: {actions:?} on Resource {resource}: only CloudWatch Logs actions may use a wildcard resource",
                s.origin
            ));
        }
    }
    broken
}

/// `secretsmanager:GetSecretValue` on the secret `HUBSPOT_SECRET_ID` names, and no other secret action.
fn check_secret_statements(t: &Template, f: &Function, statements: &[Statement]) -> Vec<String> {
    let secret_statements: Vec<&Statement> = statements
        .iter()
        .filter(|s| s.actions().iter().any(|a| a.starts_with("secretsmanager:")))
        .collect();
    let Some(secret_id) = f.env_var("HUBSPOT_SECRET_ID") else {
        return secret_statements
            .iter()
            .map(|s| {
                format!(
                    "[secret] {}: grants secret access, but HUBSPOT_SECRET_ID is not set",
                    s.origin
                )
            })
            .collect();
    };
    let Some(param) = secret_id.ref_name().filter(|p| t.is_parameter(p)) else {
        return vec![format!(
            "[secret] {}: HUBSPOT_SECRET_ID is {secret_id}, not a !Ref to a parameter",
            f.name
        )];
    };
    let mut broken = Vec::new();
    if secret_statements.is_empty() {
        broken.push(format!(
            "[secret] {}: no statement lets it read the secret {param}",
            f.name
        ));
    }
    let by_name = format!(
        "arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:${{{param}}}-??????"
    );
    for s in secret_statements {
        if s.actions() != ["secretsmanager:GetSecretValue"] {
            broken.push(format!(
                "[secret] {}: {:?}, not only secretsmanager:GetSecretValue",
                s.origin,
                s.actions()
            ));
        }
        for resource in s.resources() {
            if resource.ref_name() != Some(param) && resource.sub_text() != Some(by_name.as_str()) {
                broken.push(format!(
                    "[secret] {}: Resource {resource} is not the secret parameter {param} (!Ref {param}, or {by_name})",
                    s.origin
                ));
            }
        }
        // Which form applies must depend on the parameter: the `!If` condition has to look at it.
        if let Some((condition, _, _)) = s.node.get("Resource").and_then(Node::if_parts)
            && !t.root.at(&["Conditions", condition]).is_some_and(|c| c.mentions(param))
        {
            broken.push(format!(
                "[secret] {}: condition {condition} does not look at {param}",
                s.origin
            ));
        }
    }
    broken
}

/// What Lambda's SQS poller needs on the queue it reads (receive, delete, the queue's attributes) and
/// what the worker does itself (a failed message made visible again after `Retry-After`).
const CONSUMER_ACTIONS: [&str; 4] = [
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
];

/// `sqs:SendMessage` only on queues the function's environment names (`!Ref Queue`, in either
/// branch of an `!If`), and the consumer's actions ([`CONSUMER_ACTIONS`]) only on a queue an event
/// source mapping of this template feeds the function from; no other SQS action.
fn check_queue_statements(t: &Template, f: &Function, statements: &[Statement]) -> Vec<String> {
    let queues: BTreeSet<&str> = f
        .env()
        .into_iter()
        .flat_map(|(_, value)| value.alternatives())
        .filter_map(Node::ref_name)
        .filter(|name| t.resource_type(name) == Some("AWS::SQS::Queue"))
        .collect();
    let consumed: BTreeSet<&str> = t
        .event_source_mappings()
        .into_iter()
        .filter(|m| m.function == Some(f.name))
        .filter_map(|m| m.queue)
        .collect();
    let mut broken = Vec::new();
    for s in statements
        .iter()
        .filter(|s| s.actions().iter().any(|a| a.starts_with("sqs:")))
    {
        let actions = s.actions();
        if let Some(other) = actions
            .iter()
            .find(|a| **a != "sqs:SendMessage" && !CONSUMER_ACTIONS.contains(a))
        {
            broken.push(format!(
                "[iam] {}: {other} is neither sqs:SendMessage nor one of the consumer's {CONSUMER_ACTIONS:?}",
                s.origin
            ));
        }
        let sends = actions.contains(&"sqs:SendMessage");
        let consumes = actions.iter().any(|a| CONSUMER_ACTIONS.contains(a));
        for resource in s.resources() {
            let queue = resource
                .get_att()
                .filter(|(_, attribute)| *attribute == "Arn")
                .map(|(q, _)| q);
            if sends && !queue.is_some_and(|q| queues.contains(q)) {
                broken.push(format!(
                    "[iam] {}: Resource {resource} is not the ARN of a queue {}'s environment names {queues:?}",
                    s.origin, f.name
                ));
            }
            if consumes && !queue.is_some_and(|q| consumed.contains(q)) {
                broken.push(format!(
                    "[iam] {}: Resource {resource} is not the ARN of a queue an event source mapping feeds {} from {consumed:?}",
                    s.origin, f.name
                ));
            }
        }
    }
    broken
}

/// The queue `DEALHOOK_DLQ_URL` names is encrypted, keeps messages 14 days, may be written by the
/// function, is watched by an alarm on its depth, and is the one the `DeadLetterQueueUrl` output gives.
fn check_dead_letter_queue(t: &Template, _: &Project) -> Vec<String> {
    let f = match t.http_function() {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let url = f.env_var("DEALHOOK_DLQ_URL");
    let Some(queue) = url
        .and_then(Node::ref_name)
        .filter(|q| t.resource_type(q) == Some("AWS::SQS::Queue"))
    else {
        return vec![format!(
            "[dead-letter-queue] {}: DEALHOOK_DLQ_URL is {}, not a !Ref to an AWS::SQS::Queue of this template",
            f.name,
            url.map(ToString::to_string).unwrap_or_else(|| "not set".to_owned())
        )];
    };
    let mut broken = Vec::new();
    let property = |key: &str| t.resource(queue).and_then(|q| q.at(&["Properties", key]));
    let encrypted = property("SqsManagedSseEnabled").is_some_and(|v| v.value == Value::Bool(true))
        || property("KmsMasterKeyId").is_some();
    if !encrypted {
        broken.push(format!(
            "[dead-letter-queue] {queue}: no server-side encryption (SqsManagedSseEnabled: true)"
        ));
    }
    if property("MessageRetentionPeriod").and_then(Node::text) != Some("1209600") {
        broken.push(format!(
            "[dead-letter-queue] {queue}: MessageRetentionPeriod is not 1209600 (14 days)"
        ));
    }
    // Every function dead-letters (the worker too): each may send to the queue.
    for g in t.functions() {
        let may_send = own_statements(&g).iter().any(|s| {
            s.actions().contains(&"sqs:SendMessage")
                && s.resources().iter().any(|r| r.get_att() == Some((queue, "Arn")))
        });
        if !may_send {
            broken.push(format!(
                "[dead-letter-queue] {}: no statement allows sqs:SendMessage on {queue}",
                g.name
            ));
        }
    }
    let watched = t.resources_of_type("AWS::CloudWatch::Alarm").any(|(_, alarm)| {
        let p = |key: &str| alarm.at(&["Properties", key]);
        let is = |key: &str, expected: &str| p(key).and_then(Node::text) == Some(expected);
        let on_queue = p("Dimensions")
            .map(Node::alternatives)
            .unwrap_or_default()
            .iter()
            .any(|d| {
                d.get("Name").and_then(Node::text) == Some("QueueName")
                    && d.get("Value").and_then(Node::get_att) == Some((queue, "QueueName"))
            });
        is("Namespace", "AWS/SQS")
            && is("MetricName", "ApproximateNumberOfMessagesVisible")
            && is("ComparisonOperator", "GreaterThanThreshold")
            && is("Threshold", "0")
            && p("AlarmActions").is_some()
            && on_queue
    });
    if !watched {
        broken.push(format!(
            "[dead-letter-queue] {queue}: no alarm with actions on ApproximateNumberOfMessagesVisible > 0 of this queue"
        ));
    }
    if t.root
        .at(&["Outputs", "DeadLetterQueueUrl", "Value"])
        .and_then(Node::ref_name)
        != Some(queue)
    {
        broken.push(format!(
            "[dead-letter-queue] output DeadLetterQueueUrl is not !Ref {queue}"
        ));
    }
    broken
}

/// Every variable the template sets is one the README's configuration table documents.
fn check_environment(t: &Template, p: &Project) -> Vec<String> {
    let mut names: BTreeSet<&str> = t.functions().iter().flat_map(|f| f.env()).map(|(n, _)| n).collect();
    if let Some(globals) = t.root.at(&["Globals", "Function", "Environment", "Variables"]) {
        names.extend(globals.entries().iter().map(|(n, _)| n.as_str()));
    }
    names
        .into_iter()
        .filter(|name| !p.documented_vars.contains(*name))
        .map(|name| {
            format!(
                "[environment] {name} is set by the template but not documented in the README's Configuration table"
            )
        })
        .collect()
}

/// The webhook URL pattern is an output, built from the API the event is on.
fn check_outputs(t: &Template, _: &Project) -> Vec<String> {
    let f = match t.http_function() {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let api = f
        .http_events()
        .first()
        .and_then(|(_, e)| e.at(&["Properties", "ApiId"])?.ref_name());
    let expected = format!(
        "https://${{{}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/hooks/{{route}}",
        api.unwrap_or("HttpApi")
    );
    let actual = t.root.at(&["Outputs", "WebhookUrlPattern", "Value"]);
    if actual.and_then(Node::sub_text) == Some(expected.as_str()) {
        Vec::new()
    } else {
        let actual = actual.map(ToString::to_string).unwrap_or_else(|| "missing".to_owned());
        vec![format!(
            "[outputs] WebhookUrlPattern is {actual}, not !Sub {expected:?}"
        )]
    }
}

/// Each function's log group exists in the stack, under Lambda's name for it, with a retention.
fn check_log_groups(t: &Template, _: &Project) -> Vec<String> {
    let mut broken = Vec::new();
    for f in t.functions() {
        let expected = format!("/aws/lambda/${{{}}}", f.name);
        let group = t
            .resources_of_type("AWS::Logs::LogGroup")
            .find(|(_, g)| g.at(&["Properties", "LogGroupName"]).and_then(Node::sub_text) == Some(expected.as_str()));
        match group {
            None => broken.push(format!(
                "[logs] {}: no AWS::Logs::LogGroup named !Sub {expected}",
                f.name
            )),
            Some((name, g)) if g.at(&["Properties", "RetentionInDays"]).is_none() => broken.push(format!(
                "[logs] {name}: no RetentionInDays (Lambda's own group keeps logs forever)"
            )),
            Some(_) => {}
        }
    }
    broken
}

/// Lambda's application log levels (`LoggingConfig.ApplicationLogLevel`).
const LAMBDA_LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// One level for the functions' lines: JSON log format, `ApplicationLogLevel` taken from the `LogLevel`
/// parameter through a mapping that gives each allowed value Lambda's level of the same name (which
/// Lambda exports as `AWS_LAMBDA_LOG_LEVEL`, read by src/telemetry.rs), and no `RUST_LOG`, which would
/// take precedence over it.
fn check_log_level(t: &Template, _: &Project) -> Vec<String> {
    let mut broken = Vec::new();
    for f in t.functions() {
        let config = f.property("LoggingConfig");
        if config.and_then(|c| c.get("LogFormat")).and_then(Node::text) != Some("JSON") {
            broken.push(format!("[log-level] {}: LoggingConfig.LogFormat is not JSON", f.name));
        }
        let level = config.and_then(|c| c.get("ApplicationLogLevel"));
        match level.and_then(Node::find_in_map) {
            Some((map, key, second)) if key.ref_name() == Some("LogLevel") => {
                for value in t.allowed_values("LogLevel") {
                    let lambda = t.root.at(&["Mappings", map, value, second]).and_then(Node::text);
                    if lambda != Some(value.to_ascii_uppercase().as_str())
                        || !lambda.is_some_and(|l| LAMBDA_LOG_LEVELS.contains(&l))
                    {
                        broken.push(format!(
                            "[log-level] {}: LogLevel {value} gives ApplicationLogLevel {}, not {}",
                            f.name,
                            lambda.unwrap_or("(none)"),
                            value.to_ascii_uppercase()
                        ));
                    }
                }
            }
            _ => broken.push(format!(
                "[log-level] {}: ApplicationLogLevel is {}, not !FindInMap [.., !Ref LogLevel, ..]",
                f.name,
                shown(level)
            )),
        }
        if f.env_var("RUST_LOG").is_some() {
            broken.push(format!(
                "[log-level] {}: RUST_LOG is set; it would override ApplicationLogLevel (AWS_LAMBDA_LOG_LEVEL)",
                f.name
            ));
        }
    }
    broken
}

/// The key, type and TTL attribute the code reads and writes (`src/idempotency.rs`).
const IDEMPOTENCY_KEY: (&str, &str) = ("id", "S");
const IDEMPOTENCY_TTL_ATTRIBUTE: &str = "expires_at";
/// What the function does with the table: conditional puts and deletes, consistent gets, by key.
const IDEMPOTENCY_ACTIONS: [&str; 3] = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"];

/// Idempotency is opt-in: a parameter, off by default, is the condition under which the table,
/// the function's variables, its permission and the output exist. The table is on-demand,
/// encrypted, keyed by `id` (S) alone with TTL on `expires_at`, and the function may only get,
/// put and delete its items.
fn check_idempotency(t: &Template, _: &Project) -> Vec<String> {
    let (condition, table) = match t.idempotency_table() {
        Ok(found) => found,
        Err(e) => return vec![e],
    };
    let f = match t.http_function() {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let mut broken = Vec::new();

    // The switch: `Condition: !Equals [!Ref <parameter>, enabled]`, the parameter off by default.
    let switch = t.root.at(&["Conditions", condition]).and_then(|c| match c.call() {
        Some((name, Value::Seq(items))) if name == "Fn::Equals" && items.len() == 2 => {
            let parameter = items.iter().find_map(Node::ref_name).filter(|p| t.is_parameter(p))?;
            items.iter().any(|i| i.text() == Some("enabled")).then_some(parameter)
        }
        _ => None,
    });
    match switch {
        None => broken.push(format!(
            "[idempotency] condition {condition} is not !Equals [!Ref <parameter>, enabled]"
        )),
        Some(parameter) => {
            let property = |key: &str| t.root.at(&["Parameters", parameter, key]);
            let default = property("Default").and_then(Node::text).unwrap_or("(missing)");
            if default != "disabled" {
                broken.push(format!(
                    "[idempotency] parameter {parameter}: Default is {default}, not disabled (idempotency is opt-in)"
                ));
            }
            let mut allowed = property("AllowedValues").map(Node::strings).unwrap_or_default();
            allowed.sort_unstable();
            if allowed != ["disabled", "enabled"] {
                broken.push(format!(
                    "[idempotency] parameter {parameter}: AllowedValues are {allowed:?}, not enabled and disabled"
                ));
            }
        }
    }

    // The table exists exactly when the function is told about it.
    let resource = t.resource(table).expect("idempotency_table names a resource");
    let table_condition = resource.get("Condition").and_then(Node::text);
    if table_condition != Some(condition) {
        broken.push(format!(
            "[idempotency] {table}: Condition is {}, not {condition} (the table must exist only when enabled)",
            table_condition.unwrap_or("(missing)")
        ));
    }
    let property = |key: &str| resource.at(&["Properties", key]);
    if property("BillingMode").and_then(Node::text) != Some("PAY_PER_REQUEST") {
        broken.push(format!(
            "[idempotency] {table}: BillingMode is not PAY_PER_REQUEST (on-demand, nothing to size)"
        ));
    }
    if resource
        .at(&["Properties", "SSESpecification", "SSEEnabled"])
        .is_none_or(|v| v.value != Value::Bool(true))
    {
        broken.push(format!(
            "[idempotency] {table}: no server-side encryption (SSESpecification.SSEEnabled: true)"
        ));
    }
    let (attributes, keys) = template_schema::key_schema(resource);
    let (key, key_type) = IDEMPOTENCY_KEY;
    if attributes != [(key.to_owned(), key_type.to_owned())] || keys != [(key.to_owned(), "HASH".to_owned())] {
        broken.push(format!(
            "[idempotency] {table}: key schema is {keys:?} over {attributes:?}, not {key} ({key_type}) as the only HASH key"
        ));
    }
    let ttl = resource.at(&["Properties", "TimeToLiveSpecification"]);
    let ttl_enabled = ttl
        .and_then(|s| s.get("Enabled"))
        .is_some_and(|v| v.value == Value::Bool(true));
    let ttl_attribute = template_schema::ttl_attribute(resource);
    if ttl_attribute != Some(IDEMPOTENCY_TTL_ATTRIBUTE) || !ttl_enabled {
        broken.push(format!(
            "[idempotency] {table}: TimeToLiveSpecification is {}, not enabled on {IDEMPOTENCY_TTL_ATTRIBUTE}",
            ttl.map(ToString::to_string).unwrap_or_else(|| "missing".to_owned())
        ));
    }

    // How long records live: a Number parameter, a day unless changed, bounded both ways.
    let ttl_var = f.env_var("DEALHOOK_IDEMPOTENCY_TTL_SECONDS");
    let ttl_parameters: Vec<Option<&str>> = ttl_var
        .map(Node::alternatives)
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.ref_name().filter(|p| t.is_parameter(p)))
        .collect();
    match ttl_parameters.as_slice() {
        [Some(parameter)] => {
            let property = |key: &str| t.root.at(&["Parameters", parameter, key]).and_then(Node::text);
            if property("Type") != Some("Number")
                || property("Default") != Some("86400")
                || property("MinValue").is_none()
                || property("MaxValue").is_none()
            {
                broken.push(format!(
                    "[idempotency] parameter {parameter}: not a Number with Default 86400 (24 h), MinValue and MaxValue"
                ));
            }
        }
        _ => broken.push(format!(
            "[idempotency] {}: DEALHOOK_IDEMPOTENCY_TTL_SECONDS is {}, not a !Ref to a parameter",
            f.name,
            ttl_var.map(ToString::to_string).unwrap_or_else(|| "not set".to_owned())
        )),
    }
    if let Some((c, _, _)) = ttl_var.and_then(Node::if_parts)
        && c != condition
    {
        broken.push(format!(
            "[idempotency] DEALHOOK_IDEMPOTENCY_TTL_SECONDS depends on {c}, not {condition}"
        ));
    }

    // The permission: exactly get, put and delete, on this table, and only when it exists.
    let mut granted = false;
    for (i, policy) in f.policies().into_iter().enumerate() {
        for (j, (granted_under, node)) in conditional_statements(policy).into_iter().enumerate() {
            let sid = node
                .get("Sid")
                .and_then(Node::text)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let s = Statement {
                origin: format!("{} Policies[{i}] statement {j}{sid}", f.name),
                node,
            };
            let mut actions = s.actions();
            if !actions.iter().any(|a| a.to_ascii_lowercase().starts_with("dynamodb:")) {
                continue;
            }
            granted = true;
            actions.sort_unstable();
            if actions != IDEMPOTENCY_ACTIONS {
                broken.push(format!(
                    "[idempotency] {}: actions {actions:?}, not exactly {IDEMPOTENCY_ACTIONS:?}",
                    s.origin
                ));
            }
            let resources = s.resources();
            if resources.is_empty() {
                broken.push(format!("[idempotency] {}: no Resource", s.origin));
            }
            for resource in resources {
                if resource.get_att() != Some((table, "Arn")) {
                    broken.push(format!(
                        "[idempotency] {}: Resource {resource} is not !GetAtt {table}.Arn",
                        s.origin
                    ));
                }
            }
            if granted_under != Some((condition, true)) {
                broken.push(format!(
                    "[idempotency] {}: not under !If [{condition}, <statement>, !Ref AWS::NoValue], \
                     so it is granted when the table does not exist",
                    s.origin
                ));
            }
        }
    }
    if !granted {
        broken.push(format!("[idempotency] {}: no statement lets it use {table}", f.name));
    }

    let output = t
        .root
        .get("Outputs")
        .map(Node::entries)
        .unwrap_or_default()
        .iter()
        .any(|(_, o)| {
            o.get("Value").and_then(Node::ref_name) == Some(table)
                && o.get("Condition").and_then(Node::text) == Some(condition)
        });
    if !output {
        broken.push(format!(
            "[idempotency] no output gives {table}'s name (Value: !Ref {table}, Condition: {condition})"
        ));
    }
    broken
}

/// (bucket, prefix) of `!Sub "${Bucket.Arn}/prefix/*"`: the objects under one non-empty, literal
/// prefix of one bucket of the template.
fn object_prefix(resource: &Node) -> Option<(&str, &str)> {
    let (bucket, rest) = resource.sub_text()?.strip_prefix("${")?.split_once(".Arn}/")?;
    let prefix = rest.strip_suffix('*')?;
    let literal = !prefix.contains(['*', '?', '$']) && prefix.ends_with('/') && prefix.len() > 1;
    let logical_id = !bucket.is_empty() && bucket.chars().all(|c| c.is_ascii_alphanumeric());
    (literal && logical_id).then_some((bucket, prefix))
}

/// The bucket `DEALHOOK_PAYLOAD_BUCKET` names (dead letters too big for a message) is a bucket of this
/// template, encrypted, closed to the public, reachable over TLS only, expiring objects no sooner than
/// the dead-letter queue drops its messages; the function may only put and get objects under a prefix
/// that holds the envelopes' keys (`dealhook::aws::ENVELOPE_KEY_PREFIX`), and may put them.
fn check_payload_bucket(t: &Template, _: &Project) -> Vec<String> {
    let f = match t.http_function() {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let var = f.env_var("DEALHOOK_PAYLOAD_BUCKET");
    let Some(bucket) = var
        .and_then(Node::ref_name)
        .filter(|b| t.resource_type(b) == Some("AWS::S3::Bucket"))
    else {
        return vec![format!(
            "[payload-bucket] {}: DEALHOOK_PAYLOAD_BUCKET is {}, not a !Ref to an AWS::S3::Bucket of this template",
            f.name,
            var.map(ToString::to_string).unwrap_or_else(|| "not set".to_owned())
        )];
    };
    let mut broken = Vec::new();
    let property = |path: &[&str]| t.resource(bucket).and_then(|b| b.at(&["Properties"])?.at(path));

    let encrypted = property(&["BucketEncryption", "ServerSideEncryptionConfiguration"])
        .map(Node::alternatives)
        .unwrap_or_default()
        .iter()
        .any(|rule| {
            let algorithm = rule
                .at(&["ServerSideEncryptionByDefault", "SSEAlgorithm"])
                .and_then(Node::text);
            matches!(algorithm, Some("AES256" | "aws:kms" | "aws:kms:dsse"))
        });
    if !encrypted {
        broken.push(format!(
            "[payload-bucket] {bucket}: no BucketEncryption with SSEAlgorithm AES256 or aws:kms"
        ));
    }
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        if property(&["PublicAccessBlockConfiguration", flag]).map(|v| &v.value) != Some(&Value::Bool(true)) {
            broken.push(format!(
                "[payload-bucket] {bucket}: PublicAccessBlockConfiguration.{flag} is not true"
            ));
        }
    }

    // The longest retention of the queues the functions send to (the dead-letter queue, the work
    // queue), in days: an object must not expire before its message.
    let retention_days = t
        .functions()
        .iter()
        .flat_map(|g| ["DEALHOOK_DLQ_URL", "DEALHOOK_QUEUE_URL"].map(|v| g.env_var(v)))
        .flatten()
        .flat_map(Node::alternatives)
        .filter_map(Node::ref_name)
        .filter_map(|q| t.resource(q)?.at(&["Properties", "MessageRetentionPeriod"])?.text())
        .filter_map(|s| s.parse::<u64>().ok())
        .map(|seconds| seconds.div_ceil(86_400))
        .max()
        .unwrap_or(14);
    let key_prefix = dealhook::aws::ENVELOPE_KEY_PREFIX;
    let expires = property(&["LifecycleConfiguration", "Rules"])
        .map(Node::alternatives)
        .unwrap_or_default()
        .into_iter()
        .filter(|rule| rule.get("Status").and_then(Node::text) == Some("Enabled"))
        .filter(|rule| {
            let prefix = rule
                .get("Prefix")
                .or_else(|| rule.at(&["Filter", "Prefix"]))
                .and_then(Node::text)
                .unwrap_or("");
            key_prefix.starts_with(prefix)
        })
        .filter_map(|rule| rule.get("ExpirationInDays")?.text()?.parse::<u64>().ok())
        .min();
    match expires {
        None => broken.push(format!(
            "[payload-bucket] {bucket}: no enabled lifecycle rule expires the objects under {key_prefix}"
        )),
        Some(days) if days < retention_days => broken.push(format!(
            "[payload-bucket] {bucket}: objects expire after {days} days, before the queues' \
             {retention_days}-day retention: a message could point to nothing"
        )),
        Some(_) => {}
    }

    let tls_only = t.resources_of_type("AWS::S3::BucketPolicy").any(|(_, policy)| {
        let on_bucket = policy.at(&["Properties", "Bucket"]).and_then(Node::ref_name) == Some(bucket);
        let mut statements = Vec::new();
        if let Some(document) = policy.at(&["Properties", "PolicyDocument"]) {
            statements_of(document, "bucket policy", &mut statements);
        }
        on_bucket
            && statements.iter().any(|s| {
                let insecure = s
                    .node
                    .at(&["Condition", "Bool", "aws:SecureTransport"])
                    .and_then(Node::text);
                let objects = format!("${{{bucket}.Arn}}/*");
                s.node.get("Effect").and_then(Node::text) == Some("Deny")
                    && insecure == Some("false")
                    && s.resources().iter().any(|r| r.sub_text() == Some(objects.as_str()))
            })
    });
    if !tls_only {
        broken.push(format!(
            "[payload-bucket] {bucket}: no bucket policy denies requests without TLS (aws:SecureTransport \"false\")"
        ));
    }

    // Every function writes big envelopes; a worker (fed by an event source mapping) reads big
    // work items back too.
    let workers: BTreeSet<&str> = t.event_source_mappings().iter().filter_map(|m| m.function).collect();
    for g in t.functions() {
        let (mut may_put, mut may_get) = (false, false);
        for s in own_statements(&g)
            .iter()
            .filter(|s| s.actions().iter().any(|a| a.starts_with("s3:")))
        {
            let actions = s.actions();
            if let Some(other) = actions.iter().find(|a| !matches!(**a, "s3:PutObject" | "s3:GetObject")) {
                broken.push(format!(
                    "[payload-bucket] {}: {other} is not s3:PutObject or s3:GetObject",
                    s.origin
                ));
            }
            for resource in s.resources() {
                match object_prefix(resource) {
                    Some((b, prefix)) if b == bucket && key_prefix.starts_with(prefix) => {
                        may_put |= actions.contains(&"s3:PutObject");
                        may_get |= actions.contains(&"s3:GetObject");
                    }
                    _ => broken.push(format!(
                        "[payload-bucket] {}: Resource {resource} is not !Sub \"${{{bucket}.Arn}}/<prefix>/*\" with a \
                         prefix of {key_prefix}",
                        s.origin
                    )),
                }
            }
        }
        if !may_put {
            broken.push(format!(
                "[payload-bucket] {}: no statement allows s3:PutObject under {key_prefix} in {bucket}",
                g.name
            ));
        }
        if workers.contains(g.name) && !may_get {
            broken.push(format!(
                "[payload-bucket] {}: no statement allows s3:GetObject under {key_prefix} in {bucket} (it reads big work items)",
                g.name
            ));
        }
    }
    broken
}

/// The statements of a function's own `Policies`, in either branch of an `!If`.
fn own_statements<'a>(f: &Function<'a>) -> Vec<Statement<'a>> {
    let mut own = Vec::new();
    for (i, policy) in f.policies().into_iter().enumerate() {
        statements_of(policy, &format!("{} Policies[{i}]", f.name), &mut own);
    }
    own
}

/// `display` of an optional node, for messages.
fn shown(node: Option<&Node>) -> String {
    node.map(ToString::to_string).unwrap_or_else(|| "not set".to_owned())
}

/// Queue mode is opt-in, and sync mode is what it was without it. The webhook function's
/// `DEALHOOK_MODE` is `!If [C, queue, !Ref AWS::NoValue]` and its `DEALHOOK_QUEUE_URL`
/// `!If [C, !Ref <queue>, !Ref AWS::NoValue]`, C being `!Equals [!Ref <parameter>, queue]` with the
/// parameter `sync` by default. The work queue, every event source mapping and every function one
/// invokes exist under `Condition: C`, and nothing else (globals, other resources, outputs without
/// the condition, other conditions) refers to a resource under C, to the switch or to what only
/// those resources use (the rate parameter, its mapping) except in the `then` branch of an
/// `!If [C, …, !Ref AWS::NoValue]`: with `Mode=sync`, the template is the one without queue mode.
fn check_queue_mode(t: &Template, _: &Project) -> Vec<String> {
    let f = match t.http_function() {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let mode = f.env_var("DEALHOOK_MODE");
    let Some((condition, value, otherwise)) = mode.and_then(Node::if_parts) else {
        return vec![format!(
            "[queue-mode] {}: DEALHOOK_MODE is {}, not !If [<condition>, queue, !Ref AWS::NoValue]",
            f.name,
            shown(mode)
        )];
    };
    let mut broken = Vec::new();
    if value.text() != Some("queue") || otherwise.ref_name() != Some("AWS::NoValue") {
        broken.push(format!(
            "[queue-mode] {}: DEALHOOK_MODE is {}, not !If [{condition}, queue, !Ref AWS::NoValue] \
             (sync mode leaves it unset)",
            f.name,
            shown(mode)
        ));
    }

    // The switch: a parameter, sync unless changed.
    let switch = t.root.at(&["Conditions", condition]).and_then(|c| match c.call() {
        Some((name, Value::Seq(items))) if name == "Fn::Equals" && items.len() == 2 => {
            let parameter = items.iter().find_map(Node::ref_name).filter(|p| t.is_parameter(p))?;
            items.iter().any(|i| i.text() == Some("queue")).then_some(parameter)
        }
        _ => None,
    });
    let Some(parameter) = switch else {
        broken.push(format!(
            "[queue-mode] condition {condition} is not !Equals [!Ref <parameter>, queue]"
        ));
        return broken;
    };
    let default = t.root.at(&["Parameters", parameter, "Default"]).and_then(Node::text);
    if default != Some("sync") {
        broken.push(format!(
            "[queue-mode] parameter {parameter}: Default is {}, not sync (queue mode is opt-in)",
            default.unwrap_or("(missing)")
        ));
    }
    let mut allowed = t.allowed_values(parameter);
    allowed.sort_unstable();
    if allowed != ["queue", "sync"] {
        broken.push(format!(
            "[queue-mode] parameter {parameter}: AllowedValues are {allowed:?}, not sync and queue"
        ));
    }

    // What queue mode adds exists only in queue mode.
    let url = f.env_var("DEALHOOK_QUEUE_URL");
    let work_queue = url.and_then(Node::if_parts).and_then(|(c, then, otherwise)| {
        let queue = then
            .ref_name()
            .filter(|q| t.resource_type(q) == Some("AWS::SQS::Queue"))?;
        (c == condition && otherwise.ref_name() == Some("AWS::NoValue")).then_some(queue)
    });
    let mut added: Vec<(&str, &str)> = Vec::new();
    match work_queue {
        Some(queue) => added.push((queue, "the work queue")),
        None => broken.push(format!(
            "[queue-mode] {}: DEALHOOK_QUEUE_URL is {}, not !If [{condition}, !Ref <queue>, !Ref AWS::NoValue]",
            f.name,
            shown(url)
        )),
    }
    for m in t.event_source_mappings() {
        added.push((m.name, "an event source mapping"));
        added.extend(
            m.function
                .map(|function| (function, "the function an event source mapping invokes")),
        );
    }
    for (name, what) in added {
        let actual = t.condition_of(name);
        if actual != Some(condition) {
            broken.push(format!(
                "[queue-mode] {name} ({what}): Condition is {}, not {condition}: it would exist in sync mode",
                actual.unwrap_or("(missing)")
            ));
        }
    }

    // Nothing else refers to queue mode's resources, switch, mappings or parameters.
    let resources = t.root.get("Resources").map(Node::entries).unwrap_or_default();
    let queue_only: Vec<(&str, &Node)> = resources
        .iter()
        .filter(|(name, _)| t.condition_of(name) == Some(condition))
        .map(|(name, r)| (name.as_str(), r))
        .collect();
    let mut names: BTreeSet<&str> = queue_only.iter().map(|(name, _)| *name).collect();
    names.extend([parameter, condition]);
    // The mappings and the parameters that key them, used by queue mode's resources.
    fn lookups<'a>(node: &'a Node, out: &mut BTreeSet<&'a str>) {
        if let Some((map, key, _)) = node.find_in_map() {
            out.insert(map);
            out.extend(key.ref_name());
        }
        for child in node.children() {
            lookups(child, out);
        }
    }
    for (_, resource) in &queue_only {
        lookups(resource, &mut names);
    }
    let mut places: Vec<(String, &Node)> = Vec::new();
    places.extend(t.root.get("Globals").map(|g| ("Globals".to_owned(), g)));
    for (name, resource) in resources {
        if t.condition_of(name) != Some(condition) {
            places.push((format!("resource {name}"), resource));
            for depends_on in resource.get("DependsOn").map(Node::strings).unwrap_or_default() {
                if names.contains(depends_on) {
                    broken.push(format!(
                        "[queue-mode] resource {name}: DependsOn {depends_on}, which exists only in queue mode"
                    ));
                }
            }
        }
    }
    for (name, output) in t.root.get("Outputs").map(Node::entries).unwrap_or_default() {
        if output.get("Condition").and_then(Node::text) != Some(condition) {
            places.push((format!("output {name}"), output));
        }
    }
    for (name, c) in t.root.get("Conditions").map(Node::entries).unwrap_or_default() {
        if name != condition {
            places.push((format!("condition {name}"), c));
        }
    }
    for (at, node) in places {
        queue_mode_leaks(node, condition, &names, &at, &mut broken);
    }
    broken
}

/// Where `node` refers to one of `names` other than in the `then` branch of an
/// `!If [condition, …, !Ref AWS::NoValue]`, or has such an `!If` with another `else`.
fn queue_mode_leaks(node: &Node, condition: &str, names: &BTreeSet<&str>, at: &str, out: &mut Vec<String>) {
    if let Some((c, then, otherwise)) = node.if_parts()
        && c == condition
    {
        if otherwise.ref_name() != Some("AWS::NoValue") {
            out.push(format!(
                "[queue-mode] {at}: !If [{condition}, {then}, {otherwise}] gives {otherwise} in sync mode, \
                 not !Ref AWS::NoValue"
            ));
            queue_mode_leaks(otherwise, condition, names, at, out);
        }
        return;
    }
    for name in node.own_references() {
        if names.contains(name) {
            out.push(format!(
                "[queue-mode] {at}: refers to {name} outside !If [{condition}, …, !Ref AWS::NoValue], \
                 so sync mode would change"
            ));
        }
    }
    for child in node.children() {
        queue_mode_leaks(child, condition, names, at, out);
    }
}

/// SQS's largest message, which the code fills before it moves an envelope to S3.
const SQS_MAX_MESSAGE_BYTES: &str = "1048576";

/// The queue the event source mapping reads is the one `DEALHOOK_QUEUE_URL` names on the webhook
/// function and on the worker; it is encrypted, takes 1 MiB messages, keeps them no longer than the
/// dead-letter queue, redrives to it after as many receives as the worker's
/// `DEALHOOK_MAX_RECEIVE_COUNT`, hides a message at least six worker timeouts plus the batching
/// window (AWS's guidance for SQS event sources), is alarmed on the age of its oldest message and is
/// an output, like the worker's name.
fn check_work_queue(t: &Template, _: &Project) -> Vec<String> {
    let f = match t.http_function() {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let mappings = t.event_source_mappings();
    let Some(m) = mappings.first() else {
        return vec!["[work-queue] no AWS::Lambda::EventSourceMapping reads a work queue".to_owned()];
    };
    let (Some(worker_name), Some(queue)) = (m.function, m.queue) else {
        return vec![format!(
            "[work-queue] {}: FunctionName is not !Ref <function> or EventSourceArn is not !GetAtt <queue>.Arn",
            m.name
        )];
    };
    let Some(worker) = t.functions().into_iter().find(|g| g.name == worker_name) else {
        return vec![format!(
            "[work-queue] {}: {worker_name} is not an AWS::Serverless::Function of this template",
            m.name
        )];
    };
    let mut broken = Vec::new();
    let names_queue = |g: &Function| {
        g.env_var("DEALHOOK_QUEUE_URL")
            .map(Node::alternatives)
            .unwrap_or_default()
            .iter()
            .any(|n| n.ref_name() == Some(queue))
    };
    for g in [&f, &worker] {
        if !names_queue(g) {
            broken.push(format!(
                "[work-queue] {}: DEALHOOK_QUEUE_URL is {}, not !Ref {queue}, the queue {} reads",
                g.name,
                shown(g.env_var("DEALHOOK_QUEUE_URL")),
                m.name
            ));
        }
    }
    if t.resource_type(queue) != Some("AWS::SQS::Queue") {
        broken.push(format!(
            "[work-queue] {queue} is not an AWS::SQS::Queue of this template"
        ));
        return broken;
    }
    let property = |q: &str, path: &[&str]| t.resource(q).and_then(|r| r.at(&["Properties"])?.at(path));
    let seconds = |q: &str, key: &str| {
        property(q, &[key])
            .and_then(Node::text)
            .and_then(|s| s.parse::<u64>().ok())
    };
    let encrypted = property(queue, &["SqsManagedSseEnabled"]).is_some_and(|v| v.value == Value::Bool(true))
        || property(queue, &["KmsMasterKeyId"]).is_some();
    if !encrypted {
        broken.push(format!(
            "[work-queue] {queue}: no server-side encryption (SqsManagedSseEnabled: true)"
        ));
    }
    let size = property(queue, &["MaximumMessageSize"]).and_then(Node::text);
    if size != Some(SQS_MAX_MESSAGE_BYTES) {
        broken.push(format!(
            "[work-queue] {queue}: MaximumMessageSize is {}, not {SQS_MAX_MESSAGE_BYTES} (1 MiB, what the code fills \
             before it moves an envelope to S3)",
            size.unwrap_or("(missing: 256 KiB)")
        ));
    }

    // Redrive to the dead-letter queue, after the receives the worker counts.
    let dlq = f
        .env_var("DEALHOOK_DLQ_URL")
        .and_then(Node::ref_name)
        .unwrap_or("DeadLetterQueue");
    let target = property(queue, &["RedrivePolicy", "deadLetterTargetArn"]);
    if target.and_then(Node::get_att) != Some((dlq, "Arn")) {
        broken.push(format!(
            "[work-queue] {queue}: RedrivePolicy.deadLetterTargetArn is {}, not !GetAtt {dlq}.Arn",
            shown(target)
        ));
    }
    let max_receive = property(queue, &["RedrivePolicy", "maxReceiveCount"]).and_then(Node::text);
    let worker_count = worker.env_var("DEALHOOK_MAX_RECEIVE_COUNT").and_then(Node::text);
    if max_receive.is_none() || worker_count != max_receive {
        broken.push(format!(
            "[work-queue] {queue}: RedrivePolicy.maxReceiveCount is {}, {worker_name}'s DEALHOOK_MAX_RECEIVE_COUNT \
             is {}: they must be the same number (the worker dead-letters on the last receive)",
            max_receive.unwrap_or("(missing)"),
            worker_count.unwrap_or("(missing)")
        ));
    }
    match (
        seconds(queue, "MessageRetentionPeriod"),
        seconds(dlq, "MessageRetentionPeriod"),
    ) {
        (Some(work), Some(dead)) if work <= dead => {}
        (work, dead) => broken.push(format!(
            "[work-queue] {queue}: MessageRetentionPeriod {work:?} is not set at most {dlq}'s {dead:?}: a message \
             SQS moves keeps its first enqueue time, and would expire early on the dead-letter queue"
        )),
    }

    // Six worker timeouts and the longest batching window.
    let timeout = worker.property("Timeout").and_then(|n| t.number(n, None));
    let rate = rate_parameter(m);
    let window = m
        .resource
        .at(&["Properties", "MaximumBatchingWindowInSeconds"])
        .map(|n| {
            per_rate(t, n, rate)
                .into_iter()
                .filter_map(|(_, v)| v)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let visibility = seconds(queue, "VisibilityTimeout");
    match (timeout, visibility) {
        (Some(timeout), Some(visibility)) if visibility >= 6 * timeout + window => {}
        _ => broken.push(format!(
            "[work-queue] {queue}: VisibilityTimeout {visibility:?} is not at least 6 x {worker_name}'s Timeout \
             {timeout:?} + the batching window {window} s"
        )),
    }

    let watched = t.resources_of_type("AWS::CloudWatch::Alarm").any(|(_, alarm)| {
        let p = |key: &str| alarm.at(&["Properties", key]);
        let is = |key: &str, expected: &str| p(key).and_then(Node::text) == Some(expected);
        let on_queue = p("Dimensions")
            .map(Node::alternatives)
            .unwrap_or_default()
            .iter()
            .any(|d| {
                d.get("Name").and_then(Node::text) == Some("QueueName")
                    && d.get("Value").and_then(Node::get_att) == Some((queue, "QueueName"))
            });
        is("Namespace", "AWS/SQS")
            && is("MetricName", "ApproximateAgeOfOldestMessage")
            && is("ComparisonOperator", "GreaterThanThreshold")
            && p("Threshold").is_some()
            && p("AlarmActions").is_some()
            && on_queue
    });
    if !watched {
        broken.push(format!(
            "[work-queue] {queue}: no alarm with actions on its ApproximateAgeOfOldestMessage"
        ));
    }

    let condition = t.condition_of(queue).unwrap_or("(missing)");
    for (output, resource) in [("WorkQueueUrl", queue), ("WorkerFunctionName", worker_name)] {
        let o = t.root.at(&["Outputs", output]);
        let value = o.and_then(|o| o.get("Value")).and_then(Node::ref_name);
        let under = o.and_then(|o| o.get("Condition")).and_then(Node::text);
        if value != Some(resource) || under != Some(condition) {
            broken.push(format!(
                "[work-queue] output {output} is not !Ref {resource} under Condition {condition}"
            ));
        }
    }
    broken
}

/// The parameter keying the mapping the event source mapping's `MaximumConcurrency` is read from.
fn rate_parameter<'a>(m: &EventSourceMapping<'a>) -> Option<&'a str> {
    let node = m.resource.at(&["Properties", "ScalingConfig", "MaximumConcurrency"])?;
    node.find_in_map()?.1.ref_name()
}

/// `node` as a number for each allowed value of `rate` (`("-", n)` once when there is no such
/// parameter): `None` where it cannot be read.
fn per_rate<'a>(t: &'a Template, node: &Node, rate: Option<&'a str>) -> Vec<(&'a str, Option<u64>)> {
    match rate {
        Some(parameter) if !t.allowed_values(parameter).is_empty() => t
            .allowed_values(parameter)
            .into_iter()
            .map(|value| (value, t.number(node, Some((parameter, value)))))
            .collect(),
        _ => vec![("-", t.number(node, None))],
    }
}

/// The rate arithmetic (README, "Queue mode"). One HubSpot call's round trip from AWS, in ms: the
/// worker makes one call at a time per instance, so an instance makes at most 10 s / this many
/// calls in HubSpot's 10-second window.
const HUBSPOT_CALL_MS: u64 = 250;
/// Calls one delivery makes on the default plan: contact upsert, company search, company create,
/// deal. Sizes the batch (about 10 s of work), not the rate, which the line above bounds.
const HUBSPOT_CALLS_PER_DELIVERY: u64 = 4;
/// The share of HubSpot's limit the worker may use (the rest: retries, other integrations).
const RATE_SAFETY_PERCENT: u64 = 80;
/// The least `ScalingConfig.MaximumConcurrency` an SQS event source accepts.
const MIN_MAXIMUM_CONCURRENCY: u64 = 2;

/// (MaximumConcurrency, BatchSize, MaximumBatchingWindowInSeconds) for `requests_per_10s`:
/// max(2, ⌊0.8 × R × t / 10 s⌋), ⌊10 s / (k × t)⌋, ⌈BatchSize × k × t / MaximumConcurrency⌉.
fn worker_settings(requests_per_10s: u64) -> (u64, u64, u64) {
    let concurrency =
        (requests_per_10s * RATE_SAFETY_PERCENT * HUBSPOT_CALL_MS / (100 * 10_000)).max(MIN_MAXIMUM_CONCURRENCY);
    let batch = 10_000 / (HUBSPOT_CALLS_PER_DELIVERY * HUBSPOT_CALL_MS);
    let window = (batch * HUBSPOT_CALLS_PER_DELIVERY * HUBSPOT_CALL_MS).div_ceil(concurrency * 1000);
    (concurrency, batch, window)
}

/// Every event source mapping feeds a worker built from `dealhook-worker`, reports partial batch
/// failures, and has, for each allowed value of the HubSpot rate parameter, the concurrency, batch
/// size and window of [`worker_settings`] (never more calls per 10 s than HubSpot allows, never a
/// concurrency under 2); the worker's reserved concurrency is at least its `MaximumConcurrency`, and
/// it may receive, delete, read the attributes of and change the visibility of the queue's messages.
fn check_worker(t: &Template, _: &Project) -> Vec<String> {
    let mappings = t.event_source_mappings();
    if mappings.is_empty() {
        return vec!["[worker] no AWS::Lambda::EventSourceMapping feeds a worker".to_owned()];
    }
    let mut broken = Vec::new();
    for m in mappings {
        let property = |path: &[&str]| m.resource.at(&["Properties"]).and_then(|p| p.at(path));
        let responses = property(&["FunctionResponseTypes"])
            .map(Node::strings)
            .unwrap_or_default();
        if responses != ["ReportBatchItemFailures"] {
            broken.push(format!(
                "[worker] {}: FunctionResponseTypes is {responses:?}, not [ReportBatchItemFailures]: a failed \
                 delivery would bring its whole batch back",
                m.name
            ));
        }
        let worker = m
            .function
            .and_then(|name| t.functions().into_iter().find(|g| g.name == name));
        let Some(worker) = worker else {
            broken.push(format!(
                "[worker] {}: FunctionName is not !Ref <an AWS::Serverless::Function of this template>",
                m.name
            ));
            continue;
        };
        let binary = worker.metadata(&["BuildProperties", "Binary"]).and_then(Node::text);
        if binary != Some("dealhook-worker") {
            broken.push(format!(
                "[worker] {}: Metadata.BuildProperties.Binary is {}, not dealhook-worker",
                worker.name,
                binary.unwrap_or("(missing)")
            ));
        }

        // The rate arithmetic, per HubSpot tier.
        let Some(rate) = rate_parameter(&m).filter(|p| !t.allowed_values(p).is_empty()) else {
            broken.push(format!(
                "[worker] {}: ScalingConfig.MaximumConcurrency is {}, not !FindInMap [<map>, !Ref <parameter>, …] \
                 keyed by a parameter with AllowedValues (HubSpot's requests per 10 s)",
                m.name,
                shown(property(&["ScalingConfig", "MaximumConcurrency"]))
            ));
            continue;
        };
        for value in t.allowed_values(rate) {
            let Ok(requests) = value.parse::<u64>() else {
                broken.push(format!(
                    "[worker] parameter {rate}: allowed value {value} is not a number"
                ));
                continue;
            };
            let (concurrency, batch, window) = worker_settings(requests);
            let read = |node: Option<&Node>| node.and_then(|n| t.number(n, Some((rate, value))));
            let actual = [
                (
                    "ScalingConfig.MaximumConcurrency",
                    read(property(&["ScalingConfig", "MaximumConcurrency"])),
                    concurrency,
                ),
                ("BatchSize", read(property(&["BatchSize"])), batch),
                (
                    "MaximumBatchingWindowInSeconds",
                    read(property(&["MaximumBatchingWindowInSeconds"])),
                    window,
                ),
            ];
            for (key, found, expected) in actual {
                if found != Some(expected) {
                    broken.push(format!(
                        "[worker] {} at {rate}={value}: {key} is {found:?}, not {expected} (README, \"Queue mode\")",
                        m.name
                    ));
                }
            }
            let Some(found) = actual[0].1 else { continue };
            if found < MIN_MAXIMUM_CONCURRENCY {
                broken.push(format!(
                    "[worker] {} at {rate}={value}: MaximumConcurrency {found} is under SQS's minimum of {MIN_MAXIMUM_CONCURRENCY}",
                    m.name
                ));
            }
            let calls = found * 10_000 / HUBSPOT_CALL_MS;
            if calls > requests {
                broken.push(format!(
                    "[worker] {} at {rate}={value}: {found} instances make up to {calls} HubSpot calls per 10 s, over {requests}",
                    m.name
                ));
            }
            let reserved = read(worker.property("ReservedConcurrentExecutions"));
            if reserved.is_none_or(|r| r < found) {
                broken.push(format!(
                    "[worker] {} at {rate}={value}: ReservedConcurrentExecutions is {reserved:?}, under the event \
                     source's MaximumConcurrency {found} (the poller would be throttled)",
                    worker.name
                ));
            }
        }

        // The poller's and the worker's actions on the queue.
        if let Some(queue) = m.queue {
            let mut granted: BTreeSet<&str> = BTreeSet::new();
            for s in own_statements(&worker) {
                if s.resources().iter().any(|r| r.get_att() == Some((queue, "Arn"))) {
                    granted.extend(s.actions());
                }
            }
            let missing: Vec<&str> = CONSUMER_ACTIONS.into_iter().filter(|a| !granted.contains(a)).collect();
            if !missing.is_empty() {
                broken.push(format!(
                    "[worker] {}: no statement allows {missing:?} on {queue}",
                    worker.name
                ));
            }
        }
    }
    broken
}

/// The statements of a policy document, each with the condition it is granted under: for a
/// statement in an `!If [C, statement, …]` of the `Statement` list, `(C, true)` (`(C, false)` in
/// the else branch); `None` for a statement granted always.
fn conditional_statements(document: &Node) -> Vec<(Option<(&str, bool)>, &Node)> {
    let items = match document.get("Statement") {
        Some(statement) => match statement.untagged() {
            Some(Value::Seq(items)) => items.iter().collect(),
            _ => vec![statement],
        },
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for item in items {
        match item.if_parts() {
            // A nested condition is reported as the outer one; the template has none.
            Some((condition, then, otherwise)) => {
                out.extend(then.alternatives().into_iter().map(|s| (Some((condition, true)), s)));
                out.extend(
                    otherwise
                        .alternatives()
                        .into_iter()
                        .map(|s| (Some((condition, false)), s)),
                );
            }
            None => out.extend(item.alternatives().into_iter().map(|s| (None, s))),
        }
    }
    out
}

/// X-Ray is opt-in and follows one parameter: `Tracing` (`Active` | `Disabled`, default `Disabled`), and
/// every function's `Tracing` (own or from `Globals`) is `!Ref Tracing`. SAM resolves that `!Ref` at deploy
/// time and attaches its X-Ray write policy for any value but `Disabled`: a literal, an `!If` or another
/// parameter would grant X-Ray writes in the default stack too.
fn check_tracing(t: &Template, _: &Project) -> Vec<String> {
    let mut broken = Vec::new();
    if !t.is_parameter("Tracing") {
        return vec!["[tracing] no Tracing parameter".to_owned()];
    }
    let default = t.root.at(&["Parameters", "Tracing", "Default"]).and_then(Node::text);
    if default != Some("Disabled") {
        broken.push(format!(
            "[tracing] parameter Tracing: Default is {}, not Disabled (tracing is opt-in)",
            default.unwrap_or("(missing)")
        ));
    }
    let mut allowed = t.allowed_values("Tracing");
    allowed.sort_unstable();
    if allowed != ["Active", "Disabled"] {
        broken.push(format!(
            "[tracing] parameter Tracing: AllowedValues are {allowed:?}, not Active and Disabled"
        ));
    }
    for f in t.functions() {
        match f.property("Tracing") {
            Some(node) if node.ref_name() == Some("Tracing") => {}
            Some(node) => broken.push(format!(
                "[tracing] {}: Tracing is {node}, not !Ref Tracing (SAM grants X-Ray writes unless it resolves to Disabled)",
                f.name
            )),
            None => broken.push(format!("[tracing] {}: no Tracing (own or Globals); not !Ref Tracing", f.name)),
        }
    }
    broken
}

fn check_all(t: &Template, p: &Project) -> Vec<String> {
    CHECKS.iter().flat_map(|(_, check)| check(t, p)).collect()
}

fn assert_holds(rule: &str, broken: Vec<String>) {
    assert!(
        broken.is_empty(),
        "template.yaml breaks the {rule} rules:\n  {}",
        broken.join("\n  ")
    );
}

fn check(rule: &str) {
    let (_, check) = CHECKS.iter().find(|(name, _)| *name == rule).expect("a known rule");
    assert_holds(rule, check(&Template::parse(&template_text()), &Project::load()));
}

// ---------------------------------------------------------------------------------------------
// The template keeps the contract

#[test]
fn the_template_is_read_with_its_short_form_tags_kept() {
    let t = Template::parse(&template_text());
    assert_eq!(
        t.root.get("Transform").and_then(Node::text),
        Some("AWS::Serverless-2016-10-31")
    );
    let f = t.http_function().expect("a webhook function");
    let dlq = f.env_var("DEALHOOK_DLQ_URL").expect("DEALHOOK_DLQ_URL is set");
    assert_eq!(dlq.tag.as_deref(), Some("!Ref"), "{dlq}");
    assert!(
        !t.functions().is_empty() && t.resources_of_type("AWS::SQS::Queue").count() >= 1,
        "resources are read"
    );
}

#[test]
fn every_function_is_built_by_cargo_lambda_from_a_binary_of_this_package_for_provided_al2023() {
    check("build");
}

#[test]
fn the_webhook_function_answers_before_api_gateways_30_second_limit() {
    check("timeout");
}

#[test]
fn webhooks_arrive_as_post_hooks_route_on_a_throttled_http_api() {
    check("event");
}

#[test]
fn every_permission_names_its_resource_the_secret_and_the_queues_the_function_uses() {
    check("iam");
}

#[test]
fn the_dead_letter_queue_is_encrypted_kept_14_days_writable_alarmed_and_output() {
    check("dead-letter-queue");
}

#[test]
fn every_environment_variable_the_template_sets_is_documented_in_the_readme() {
    check("environment");
}

#[test]
fn the_webhook_url_pattern_is_an_output() {
    check("outputs");
}

#[test]
fn every_function_has_its_log_group_with_a_retention() {
    check("logs");
}

#[test]
fn the_payload_bucket_is_encrypted_private_tls_only_expiring_and_writable_under_dealhook_only() {
    check("payload-bucket");
}

#[test]
fn the_lambda_binary_is_found_among_the_package_binaries() {
    let p = Project::load();
    assert!(
        p.bins.contains("dealhook-http") && p.bins.contains("dealhook"),
        "{:?}",
        p.bins
    );
    assert!(
        p.documented_vars.contains("DEALHOOK_DLQ_URL") && p.documented_vars.contains("RUST_LOG"),
        "{:?}",
        p.documented_vars
    );
}

// ---------------------------------------------------------------------------------------------
// The checks bite: the template, broken on purpose

/// The template with `from` replaced by `to` wherever it occurs (`count` times: the webhook function
/// and the worker share some statements), and what breaks.
fn broken_by_each(from: &str, to: &str, count: usize) -> Vec<String> {
    let text = template_text();
    assert_eq!(
        text.matches(from).count(),
        count,
        "the mutation's anchor {from:?} occurs {count} times in template.yaml"
    );
    check_all(&Template::parse(&text.replace(from, to)), &Project::load())
}

/// The template with `from` (which must occur exactly once) replaced by `to`, and what breaks.
fn broken_by(from: &str, to: &str) -> Vec<String> {
    broken_by_each(from, to, 1)
}

fn assert_reports(broken: &[String], rule: &str, detail: &str) {
    assert!(
        broken.iter().any(|m| m.starts_with(rule) && m.contains(detail)),
        "expected a {rule} violation mentioning {detail:?}, got:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn the_template_checks_report_a_binary_the_package_does_not_build() {
    let broken = broken_by("Binary: dealhook-http", "Binary: dealhook-https");
    assert_reports(&broken, "[build]", "dealhook-https");
}

#[test]
fn the_template_checks_report_a_runtime_other_than_provided_al2023() {
    let broken = broken_by("Runtime: provided.al2023", "Runtime: provided.al2");
    assert_reports(&broken, "[build]", "provided.al2,");
}

#[test]
fn the_template_checks_report_a_timeout_at_api_gateways_limit() {
    let broken = broken_by("Timeout: 25", "Timeout: 30");
    assert_reports(&broken, "[timeout]", "30 s is not below");
}

#[test]
fn the_template_checks_report_another_path_or_method() {
    assert_reports(
        &broken_by("Path: /hooks/{route}", "Path: /webhooks/{route}"),
        "[event]",
        "/webhooks/",
    );
    assert_reports(&broken_by("Method: POST", "Method: ANY"), "[event]", "ANY");
}

#[test]
fn the_template_checks_report_a_wildcard_resource_on_anything_but_logs() {
    let broken = broken_by_each("Resource: !GetAtt DeadLetterQueue.Arn", "Resource: \"*\"", 2);
    assert_reports(&broken, "[iam]", "Resource \"*\"");
    assert_reports(&broken, "[dead-letter-queue]", "no statement allows sqs:SendMessage");
}

#[test]
fn the_template_checks_report_a_secret_wildcard_and_a_managed_policy() {
    let broken = broken_by_each("secret:${HubSpotSecret}-??????", "secret:*", 2);
    assert_reports(&broken, "[secret]", "is not the secret parameter HubSpotSecret");
    assert_reports(&broken, "[iam]", "wildcard resource");
    let broken = broken_by_each(
        "      Policies:\n",
        "      Policies:\n        - AmazonSQSFullAccess\n",
        2,
    );
    assert_reports(&broken, "[iam]", "AmazonSQSFullAccess");
}

#[test]
fn the_template_checks_report_a_role_with_a_broad_managed_policy_or_wildcard_statement() {
    let role = "Resources:
  ExtraRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      ManagedPolicyArns: [arn:aws:iam::aws:policy/AdministratorAccess]
      Policies:
        - PolicyName: everything
          PolicyDocument:
            Statement: {Effect: Allow, Action: \"s3:*\", Resource: \"*\"}
";
    let broken = broken_by("Resources:\n", role);
    assert_reports(&broken, "[iam]", "AdministratorAccess");
    assert_reports(&broken, "[iam]", "action s3:* is a wildcard");
    assert_reports(
        &broken,
        "[iam]",
        "only CloudWatch Logs actions may use a wildcard resource",
    );
}

#[test]
fn the_template_checks_report_a_queue_the_function_is_not_configured_with() {
    let broken = broken_by_each(
        "Resource: !GetAtt DeadLetterQueue.Arn",
        "Resource: [!GetAtt DeadLetterQueue.Arn, !GetAtt SomeOtherQueue.Arn]",
        2,
    );
    assert_reports(&broken, "[iam]", "!GetAtt \"SomeOtherQueue.Arn\"");
}

#[test]
fn the_template_checks_report_an_unwatched_short_lived_or_unencrypted_dead_letter_queue() {
    let broken = broken_by(
        "Value: !GetAtt DeadLetterQueue.QueueName",
        "Value: !GetAtt SomeOtherQueue.QueueName",
    );
    assert_reports(&broken, "[dead-letter-queue]", "no alarm");
    let broken = broken_by("MessageRetentionPeriod: 1209600 ", "MessageRetentionPeriod: 345600 ");
    assert_reports(&broken, "[dead-letter-queue]", "14 days");
    let broken = broken_by(
        "SqsManagedSseEnabled: true            # encrypted at rest with SQS-owned keys:",
        "SqsManagedSseEnabled: false            # encrypted at rest with SQS-owned keys:",
    );
    assert_reports(&broken, "[dead-letter-queue]", "encryption");
}

#[test]
fn the_template_checks_report_a_log_level_lambda_and_the_functions_do_not_share() {
    let broken = broken_by(
        "ApplicationLogLevel: !FindInMap [LambdaLogLevel, !Ref LogLevel, Level]",
        "ApplicationLogLevel: TRACE",
    );
    assert_reports(&broken, "[log-level]", "ApplicationLogLevel is");
    let broken = broken_by("    debug: {Level: DEBUG}\n", "    debug: {Level: TRACE}\n");
    assert_reports(&broken, "[log-level]", "LogLevel debug gives ApplicationLogLevel TRACE");
    let broken = broken_by("    info: {Level: INFO}\n", "");
    assert_reports(&broken, "[log-level]", "LogLevel info gives ApplicationLogLevel (none)");
    let broken = broken_by(
        "        DEALHOOK_LOG_PAYLOADS: !Ref LogPayloads\n",
        "        DEALHOOK_LOG_PAYLOADS: !Ref LogPayloads\n        RUST_LOG: trace\n",
    );
    assert_reports(&broken, "[log-level]", "RUST_LOG is set");
    let broken = broken_by("      LogFormat: JSON\n", "      LogFormat: Text\n");
    assert_reports(&broken, "[log-level]", "LogFormat is not JSON");
}

#[test]
fn the_template_checks_report_an_undocumented_environment_variable() {
    let broken = broken_by(
        "        DEALHOOK_LOG_PAYLOADS: !Ref LogPayloads\n",
        "        DEALHOOK_LOG_PAYLOADS: !Ref LogPayloads\n        DEALHOOK_UNDOCUMENTED: \"1\"\n",
    );
    assert_reports(&broken, "[environment]", "DEALHOOK_UNDOCUMENTED");
}

#[test]
fn the_template_checks_accept_long_form_intrinsics_as_the_same_contract() {
    let broken = broken_by(
        "DEALHOOK_DLQ_URL: !Ref DeadLetterQueue",
        "DEALHOOK_DLQ_URL: {Ref: DeadLetterQueue}",
    );
    assert!(broken.is_empty(), "{broken:?}");
    let broken = broken_by_each(
        "Resource: !GetAtt DeadLetterQueue.Arn",
        "Resource: {\"Fn::GetAtt\": [DeadLetterQueue, Arn]}",
        2,
    );
    assert!(broken.is_empty(), "{broken:?}");
}

#[test]
fn idempotency_is_an_opt_in_on_demand_table_keyed_by_id_with_ttl_that_the_function_may_only_get_put_and_delete_in() {
    check("idempotency");
}

#[test]
fn the_template_checks_report_idempotency_that_is_on_by_default_or_outlives_its_condition() {
    let broken = broken_by("Default: disabled", "Default: enabled");
    assert_reports(&broken, "[idempotency]", "Default is enabled, not disabled");
    let broken = broken_by(
        "Type: AWS::DynamoDB::Table\n    Condition: IdempotencyEnabled\n",
        "Type: AWS::DynamoDB::Table\n",
    );
    assert_reports(
        &broken,
        "[idempotency]",
        "Condition is (missing), not IdempotencyEnabled",
    );
    let broken = broken_by(
        "!If [IdempotencyEnabled, !Ref IdempotencyTable, !Ref AWS::NoValue]",
        "!Ref IdempotencyTable",
    );
    assert_reports(
        &broken,
        "[idempotency]",
        "DEALHOOK_IDEMPOTENCY_TABLE is !Ref \"IdempotencyTable\"",
    );
    let broken = broken_by_each(
        "- IdempotencyEnabled\n              - Sid: IdempotencyRecords",
        "- HasAlarmEmail\n              - Sid: IdempotencyRecords",
        2,
    );
    assert_reports(
        &broken,
        "[idempotency]",
        "(IdempotencyRecords): not under !If [IdempotencyEnabled",
    );
    let broken = broken_by("Value: !Ref IdempotencyTable", "Value: !Ref HttpFunction");
    assert_reports(&broken, "[idempotency]", "no output gives IdempotencyTable's name");
    let broken = broken_by("!Ref IdempotencyTtlSeconds", "\"86400\"");
    assert_reports(&broken, "[idempotency]", "DEALHOOK_IDEMPOTENCY_TTL_SECONDS is !If");
    let broken = broken_by("Default: 86400", "Default: 3600");
    assert_reports(&broken, "[idempotency]", "parameter IdempotencyTtlSeconds");
}

#[test]
fn the_template_checks_report_another_key_schema_ttl_attribute_billing_or_no_encryption() {
    let broken = broken_by("AttributeType: S", "AttributeType: N");
    assert_reports(&broken, "[idempotency]", "[(\"id\", \"N\")], not id (S)");
    let broken = broken_by("KeyType: HASH", "KeyType: RANGE");
    assert_reports(&broken, "[idempotency]", "key schema is [(\"id\", \"RANGE\")]");
    let broken = broken_by(
        "          KeyType: HASH\n",
        "          KeyType: HASH\n        - AttributeName: received_at\n          KeyType: RANGE\n",
    );
    assert_reports(&broken, "[idempotency]", "(\"received_at\", \"RANGE\")");
    let broken = broken_by("AttributeName: expires_at", "AttributeName: ttl");
    assert_reports(&broken, "[idempotency]", "not enabled on expires_at");
    let broken = broken_by("BillingMode: PAY_PER_REQUEST", "BillingMode: PROVISIONED");
    assert_reports(&broken, "[idempotency]", "PAY_PER_REQUEST");
    let broken = broken_by("SSEEnabled: true", "SSEEnabled: false");
    assert_reports(&broken, "[idempotency]", "encryption");
}

#[test]
fn the_template_checks_report_dynamodb_actions_beyond_get_put_delete_or_on_anything_but_the_table() {
    let broken = broken_by_each("dynamodb:DeleteItem]", "dynamodb:*]", 2);
    assert_reports(&broken, "[iam]", "action dynamodb:* is a wildcard");
    assert_reports(&broken, "[idempotency]", "actions [\"dynamodb:*\"");
    let broken = broken_by_each(
        "dynamodb:DeleteItem]",
        "dynamodb:DeleteItem, dynamodb:Scan, dynamodb:UpdateItem]",
        2,
    );
    assert_reports(&broken, "[idempotency]", "dynamodb:Scan");
    let broken = broken_by_each("Resource: !GetAtt IdempotencyTable.Arn", "Resource: \"*\"", 2);
    assert_reports(
        &broken,
        "[iam]",
        "only CloudWatch Logs actions may use a wildcard resource",
    );
    assert_reports(
        &broken,
        "[idempotency]",
        "Resource \"*\" is not !GetAtt IdempotencyTable.Arn",
    );
    let broken = broken_by_each(
        "Resource: !GetAtt IdempotencyTable.Arn",
        "Resource: [!GetAtt IdempotencyTable.Arn, !Sub \"${IdempotencyTable.Arn}/index/*\"]",
        2,
    );
    assert_reports(
        &broken,
        "[iam]",
        "only CloudWatch Logs actions may use a wildcard resource",
    );
    assert_reports(&broken, "[idempotency]", "/index/*");
}

#[test]
fn the_template_checks_accept_the_long_form_of_the_idempotency_switch() {
    let broken = broken_by(
        "DEALHOOK_IDEMPOTENCY_TABLE: !If [IdempotencyEnabled, !Ref IdempotencyTable, !Ref AWS::NoValue]",
        "DEALHOOK_IDEMPOTENCY_TABLE: {\"Fn::If\": [IdempotencyEnabled, {Ref: IdempotencyTable}, {Ref: \"AWS::NoValue\"}]}",
    );
    assert!(broken.is_empty(), "{broken:?}");
}

/// The payload bucket's rules, each broken in turn.
mod payload_bucket_breaks {
    use super::*;

    #[test]
    fn a_bucket_the_function_is_not_given_is_reported() {
        let broken = broken_by(
            "DEALHOOK_PAYLOAD_BUCKET: !Ref PayloadBucket",
            "DEALHOOK_PAYLOAD_BUCKET: my-bucket",
        );
        assert_reports(&broken, "[payload-bucket]", "not a !Ref to an AWS::S3::Bucket");
    }

    #[test]
    fn an_unencrypted_bucket_is_reported() {
        let broken = broken_by("SSEAlgorithm: AES256", "SSEAlgorithm: none");
        assert_reports(&broken, "[payload-bucket]", "no BucketEncryption");
    }

    #[test]
    fn a_bucket_open_to_the_public_is_reported() {
        let broken = broken_by("RestrictPublicBuckets: true", "RestrictPublicBuckets: false");
        assert_reports(&broken, "[payload-bucket]", "RestrictPublicBuckets is not true");
    }

    #[test]
    fn objects_expiring_before_their_messages_or_never_are_reported() {
        let broken = broken_by("ExpirationInDays: 15", "ExpirationInDays: 7");
        assert_reports(&broken, "[payload-bucket]", "after 7 days, before the queues' 14-day");
        let broken = broken_by("Prefix: dealhook/", "Prefix: elsewhere/");
        assert_reports(&broken, "[payload-bucket]", "no enabled lifecycle rule");
    }

    #[test]
    fn a_bucket_reachable_without_tls_is_reported() {
        let broken = broken_by("aws:SecureTransport: \"false\"", "aws:SecureTransport: \"true\"");
        assert_reports(&broken, "[payload-bucket]", "without TLS");
    }

    #[test]
    fn s3_permissions_beyond_put_and_get_under_dealhook_are_reported() {
        let anchor = "Resource: !Sub \"${PayloadBucket.Arn}/dealhook/*\"";
        let broken = broken_by_each(anchor, "Resource: \"*\"", 2);
        assert_reports(&broken, "[iam]", "Resource \"*\"");
        assert_reports(&broken, "[payload-bucket]", "no statement allows s3:PutObject");
        let broken = broken_by_each(anchor, "Resource: !Sub \"${PayloadBucket.Arn}/*\"", 2);
        assert_reports(&broken, "[iam]", "wildcard resource");
        let broken = broken_by_each(anchor, "Resource: !Sub \"${PayloadBucket.Arn}/other/*\"", 2);
        assert_reports(&broken, "[payload-bucket]", "with a prefix of dealhook/envelopes/");
        let broken = broken_by("Action: s3:PutObject", "Action: [s3:PutObject, s3:DeleteObject]");
        assert_reports(&broken, "[payload-bucket]", "s3:DeleteObject is not");
        let broken = broken_by("Action: s3:PutObject", "Action: s3:*");
        assert_reports(&broken, "[iam]", "s3:* is a wildcard");
    }
}

#[test]
fn tracing_is_opt_in_and_every_function_follows_the_parameter() {
    check("tracing");
}

#[test]
fn the_template_checks_report_tracing_on_by_default_or_a_function_sam_would_grant_x_ray_writes_anyway() {
    let broken = broken_by("Default: Disabled", "Default: Active");
    assert_reports(&broken, "[tracing]", "Default is Active, not Disabled");
    let broken = broken_by(
        "AllowedValues: [Active, Disabled]",
        "AllowedValues: [Active, PassThrough]",
    );
    assert_reports(&broken, "[tracing]", "AllowedValues are [\"Active\", \"PassThrough\"]");
    let broken = broken_by("Tracing: !Ref Tracing", "Tracing: PassThrough");
    assert_reports(
        &broken,
        "[tracing]",
        "HttpFunction: Tracing is \"PassThrough\", not !Ref Tracing",
    );
    let broken = broken_by("Tracing: !Ref Tracing", "Tracing: !If [IsQueueMode, Active, Disabled]");
    assert_reports(&broken, "[tracing]", "WorkerFunction: Tracing is");
    let broken = broken_by("    Tracing: !Ref Tracing\n", "");
    assert_reports(&broken, "[tracing]", "HttpFunction: no Tracing");
    let broken = broken_by("  Tracing:\n    Type: String", "  TracingMode:\n    Type: String");
    assert_reports(&broken, "[tracing]", "no Tracing parameter");
    // A function's own value wins over Globals.
    let broken = broken_by(
        "      Description: dealhook worker",
        "      Tracing: Active\n      Description: dealhook worker",
    );
    assert_reports(&broken, "[tracing]", "WorkerFunction: Tracing is \"Active\"");
}

#[test]
fn queue_mode_is_opt_in_and_sync_mode_is_the_template_without_it() {
    check("queue-mode");
}

#[test]
fn the_work_queue_is_encrypted_redrives_to_the_dead_letter_queue_outlasts_six_worker_timeouts_and_is_alarmed() {
    check("work-queue");
}

#[test]
fn the_worker_reports_partial_failures_and_stays_under_hubspots_rate_for_each_tier() {
    check("worker");
}

#[test]
fn the_worker_settings_are_the_readme_arithmetic_for_each_hubspot_tier() {
    // Worked by hand (README, "Queue mode"): 0.8 x R x 0.25 s / 10 s instances, at least 2;
    // 10 s / (4 calls x 0.25 s) deliveries a batch; the batch's 10 s of calls spread over the instances.
    assert_eq!(worker_settings(100), (2, 10, 5));
    assert_eq!(worker_settings(110), (2, 10, 5));
    assert_eq!(worker_settings(190), (3, 10, 4));
    // A lower limit still gets SQS's minimum concurrency; a higher one more instances.
    assert_eq!(worker_settings(50), (2, 10, 5));
    assert_eq!(worker_settings(500), (10, 10, 1));
}

#[test]
fn the_readme_queue_mode_table_is_the_templates_arithmetic() {
    let readme = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Queue mode"))
        .expect("the README has a \"## Queue mode\" section");
    let t = Template::parse(&template_text());
    let rates = t.allowed_values("HubSpotRequestsPer10s");
    assert!(!rates.is_empty(), "HubSpotRequestsPer10s has AllowedValues");
    for rate in rates {
        let row = section
            .lines()
            .find(|line| line.starts_with(&format!("| {rate} |")))
            .unwrap_or_else(|| panic!("the Queue mode table has no row for R = {rate}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (concurrency, batch, window) = worker_settings(rate.parse().expect("a number"));
        // | R | tier | 0.8 R | MaximumConcurrency | calls | BatchSize | window | deliveries |
        let expected = [
            (4, concurrency),
            (5, concurrency * 10_000 / HUBSPOT_CALL_MS),
            (6, batch),
            (7, window),
            (8, concurrency * 10_000 / HUBSPOT_CALL_MS / HUBSPOT_CALLS_PER_DELIVERY),
        ];
        for (column, value) in expected {
            assert_eq!(
                cells.get(column),
                Some(&value.to_string().as_str()),
                "column {column} of {row}"
            );
        }
    }
}

/// Queue mode's rules, each broken in turn.
mod queue_mode_breaks {
    use super::*;

    #[test]
    fn a_mode_variable_set_in_sync_mode_is_reported() {
        let broken = broken_by(
            "DEALHOOK_MODE: !If [IsQueueMode, queue, !Ref AWS::NoValue]",
            "DEALHOOK_MODE: !If [IsQueueMode, queue, sync]",
        );
        assert_reports(&broken, "[queue-mode]", "gives \"sync\" in sync mode");
        let broken = broken_by(
            "DEALHOOK_MODE: !If [IsQueueMode, queue, !Ref AWS::NoValue]",
            "DEALHOOK_MODE: !Ref Mode",
        );
        assert_reports(&broken, "[queue-mode]", "DEALHOOK_MODE is !Ref \"Mode\"");
    }

    #[test]
    fn queue_mode_on_by_default_is_reported() {
        let broken = broken_by("    Default: sync\n", "    Default: queue\n");
        assert_reports(&broken, "[queue-mode]", "Default is queue, not sync");
    }

    #[test]
    fn a_queue_mode_resource_without_the_condition_is_reported() {
        let broken = broken_by(
            "Type: AWS::SQS::Queue\n    Condition: IsQueueMode\n",
            "Type: AWS::SQS::Queue\n",
        );
        assert_reports(
            &broken,
            "[queue-mode]",
            "WorkQueue (the work queue): Condition is (missing)",
        );
        let broken = broken_by(
            "Type: AWS::Lambda::EventSourceMapping\n    Condition: IsQueueMode\n",
            "Type: AWS::Lambda::EventSourceMapping\n",
        );
        assert_reports(
            &broken,
            "[queue-mode]",
            "WorkerEventSourceMapping (an event source mapping)",
        );
        let broken = broken_by(
            "Type: AWS::Logs::LogGroup\n    Condition: IsQueueMode\n",
            "Type: AWS::Logs::LogGroup\n",
        );
        assert_reports(
            &broken,
            "[queue-mode]",
            "resource WorkerFunctionLogGroup: refers to WorkerFunction",
        );
    }

    #[test]
    fn a_reference_to_queue_mode_outside_its_condition_is_reported() {
        let broken = broken_by(
            "- IsQueueMode\n              - Sid: EnqueueWorkItems",
            "- HasAlarmEmail\n              - Sid: EnqueueWorkItems",
        );
        assert_reports(&broken, "[queue-mode]", "resource HttpFunction: refers to WorkQueue");
        let broken = broken_by("  WorkQueueUrl:\n    Condition: IsQueueMode\n", "  WorkQueueUrl:\n");
        assert_reports(&broken, "[queue-mode]", "output WorkQueueUrl: refers to WorkQueue");
        assert_reports(&broken, "[work-queue]", "output WorkQueueUrl is not !Ref WorkQueue");
        let broken = broken_by(
            "        DEALHOOK_LOG_PAYLOADS: !Ref LogPayloads\n",
            "        DEALHOOK_LOG_PAYLOADS: !Ref LogPayloads\n        DEALHOOK_RATE: !Ref HubSpotRequestsPer10s\n",
        );
        assert_reports(&broken, "[queue-mode]", "Globals: refers to HubSpotRequestsPer10s");
        let broken = broken_by(
            "  IsQueueMode: !Equals [!Ref Mode, queue]\n",
            "  IsQueueMode: !Equals [!Ref Mode, queue]\n  IsSyncMode: !Equals [!Ref Mode, sync]\n",
        );
        assert_reports(&broken, "[queue-mode]", "condition IsSyncMode: refers to Mode");
        let broken = broken_by(
            "  HttpApiAccessLogGroup:\n    Type: AWS::Logs::LogGroup\n",
            "  HttpApiAccessLogGroup:\n    Type: AWS::Logs::LogGroup\n    DependsOn: [WorkerFunction]\n",
        );
        assert_reports(&broken, "[queue-mode]", "DependsOn WorkerFunction");
    }

    #[test]
    fn a_work_queue_that_redrives_elsewhere_or_counts_receives_unlike_the_worker_is_reported() {
        let broken = broken_by(
            "deadLetterTargetArn: !GetAtt DeadLetterQueue.Arn",
            "deadLetterTargetArn: !GetAtt WorkQueue.Arn",
        );
        assert_reports(&broken, "[work-queue]", "not !GetAtt DeadLetterQueue.Arn");
        let broken = broken_by("maxReceiveCount: 10", "maxReceiveCount: 5");
        assert_reports(&broken, "[work-queue]", "must be the same number");
    }

    #[test]
    fn a_work_queue_hiding_a_batch_too_briefly_is_reported() {
        // 6 x 120 s + a 5 s window is 725 s.
        let broken = broken_by("VisibilityTimeout: 900", "VisibilityTimeout: 720");
        assert_reports(
            &broken,
            "[work-queue]",
            "VisibilityTimeout Some(720) is not at least 6 x",
        );
        let at_the_bound = broken_by("VisibilityTimeout: 900", "VisibilityTimeout: 725");
        assert!(
            !at_the_bound.iter().any(|m| m.starts_with("[work-queue]")),
            "{at_the_bound:?}"
        );
    }

    #[test]
    fn a_small_unencrypted_or_unwatched_work_queue_is_reported() {
        let broken = broken_by(
            "MaximumMessageSize: 1048576           # 1 MiB, SQS's maximum: bigger",
            "MaximumMessageSize: 262144           # 1 MiB, SQS's maximum: bigger",
        );
        assert_reports(&broken, "[work-queue]", "MaximumMessageSize is 262144");
        let broken = broken_by(
            "SqsManagedSseEnabled: true            # encrypted at rest with SQS-owned keys, like",
            "SqsManagedSseEnabled: false            # encrypted at rest with SQS-owned keys, like",
        );
        assert_reports(&broken, "[work-queue]", "no server-side encryption");
        let broken = broken_by(
            "MetricName: ApproximateAgeOfOldestMessage",
            "MetricName: NumberOfMessagesSent",
        );
        assert_reports(
            &broken,
            "[work-queue]",
            "no alarm with actions on its ApproximateAgeOfOldestMessage",
        );
        let broken = broken_by(
            "MessageRetentionPeriod: 1209600       # 14 days",
            "MessageRetentionPeriod: 604800       # 14 days",
        );
        assert_reports(&broken, "[work-queue]", "would expire early on the dead-letter queue");
    }

    #[test]
    fn a_worker_told_about_another_queue_is_reported() {
        let broken = broken_by(
            "DEALHOOK_QUEUE_URL: !Ref WorkQueue",
            "DEALHOOK_QUEUE_URL: !Ref DeadLetterQueue",
        );
        assert_reports(
            &broken,
            "[work-queue]",
            "WorkerFunction: DEALHOOK_QUEUE_URL is !Ref \"DeadLetterQueue\"",
        );
    }

    #[test]
    fn an_event_source_without_partial_batch_responses_is_reported() {
        let broken = broken_by(
            "FunctionResponseTypes: [ReportBatchItemFailures]",
            "FunctionResponseTypes: []",
        );
        assert_reports(&broken, "[worker]", "not [ReportBatchItemFailures]");
    }

    #[test]
    fn worker_settings_off_the_arithmetic_or_over_the_limit_are_reported() {
        let broken = broken_by("\"190\": {MaximumConcurrency: 3,", "\"190\": {MaximumConcurrency: 6,");
        assert_reports(
            &broken,
            "[worker]",
            "at HubSpotRequestsPer10s=190: ScalingConfig.MaximumConcurrency is Some(6), not 3",
        );
        assert_reports(&broken, "[worker]", "up to 240 HubSpot calls per 10 s, over 190");
        let broken = broken_by("\"100\": {MaximumConcurrency: 2,", "\"100\": {MaximumConcurrency: 1,");
        assert_reports(&broken, "[worker]", "under SQS's minimum of 2");
        let broken = broken_by(
            "\"110\": {MaximumConcurrency: 2, BatchSize: 10,",
            "\"110\": {MaximumConcurrency: 2, BatchSize: 100,",
        );
        assert_reports(&broken, "[worker]", "=110: BatchSize is Some(100), not 10");
        let broken = broken_by("AllowedValues: [100, 110, 190]", "AllowedValues: [100, 110, 190, 250]");
        assert_reports(
            &broken,
            "[worker]",
            "=250: ScalingConfig.MaximumConcurrency is None, not 5",
        );
        let broken = broken_by(
            "        MaximumConcurrency: !FindInMap [WorkerByHubSpotRate, !Ref HubSpotRequestsPer10s, MaximumConcurrency]",
            "        MaximumConcurrency: 10",
        );
        assert_reports(
            &broken,
            "[worker]",
            "ScalingConfig.MaximumConcurrency is 10, not !FindInMap",
        );
        let broken = broken_by(
            "ReservedConcurrentExecutions: !FindInMap [WorkerByHubSpotRate, !Ref HubSpotRequestsPer10s, MaximumConcurrency]",
            "ReservedConcurrentExecutions: 1",
        );
        assert_reports(&broken, "[worker]", "ReservedConcurrentExecutions is Some(1)");
    }

    #[test]
    fn a_worker_that_cannot_consume_its_queue_or_consumes_another_is_reported() {
        let broken = broken_by(
            "Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes, sqs:ChangeMessageVisibility]",
            "Action: [sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes]",
        );
        assert_reports(
            &broken,
            "[worker]",
            "WorkerFunction: no statement allows [\"sqs:ChangeMessageVisibility\"] on WorkQueue",
        );
        let broken = broken_by(
            "Resource: !GetAtt WorkQueue.Arn\n            - Sid: WriteDeadLetters",
            "Resource: \"*\"\n            - Sid: WriteDeadLetters",
        );
        assert_reports(
            &broken,
            "[iam]",
            "only CloudWatch Logs actions may use a wildcard resource",
        );
        assert_reports(
            &broken,
            "[iam]",
            "not the ARN of a queue an event source mapping feeds WorkerFunction from",
        );
        let broken = broken_by_each(
            "Action: sqs:SendMessage\n              Resource: !GetAtt DeadLetterQueue.Arn",
            "Action: [sqs:SendMessage, sqs:ReceiveMessage]\n              Resource: !GetAtt DeadLetterQueue.Arn",
            2,
        );
        assert_reports(&broken, "[iam]", "not the ARN of a queue an event source mapping feeds");
        let broken = broken_by(
            "sqs:GetQueueAttributes, sqs:ChangeMessageVisibility]",
            "sqs:GetQueueAttributes, sqs:PurgeQueue]",
        );
        assert_reports(
            &broken,
            "[iam]",
            "sqs:PurgeQueue is neither sqs:SendMessage nor one of the consumer's",
        );
    }

    #[test]
    fn a_sam_sqs_event_and_its_managed_policy_are_reported() {
        let broken = broken_by(
            "      Description: dealhook worker",
            "      Events:\n        Work:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt WorkQueue.Arn\n      Description: dealhook worker",
        );
        assert_reports(&broken, "[iam]", "event Work is a SAM SQS event");
    }

    #[test]
    fn a_worker_that_cannot_dead_letter_or_read_big_work_items_is_reported() {
        let broken = broken_by(
            "Resource: !GetAtt DeadLetterQueue.Arn\n            # Read big work items back",
            "Resource: !GetAtt WorkQueue.Arn\n            # Read big work items back",
        );
        assert_reports(
            &broken,
            "[dead-letter-queue]",
            "WorkerFunction: no statement allows sqs:SendMessage on DeadLetterQueue",
        );
        let broken = broken_by("Action: [s3:GetObject, s3:PutObject]", "Action: s3:PutObject");
        assert_reports(
            &broken,
            "[payload-bucket]",
            "WorkerFunction: no statement allows s3:GetObject",
        );
    }
}
