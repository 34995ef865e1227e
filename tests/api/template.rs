//! The SAM template (`template.yaml`) read as data and held to the project's contract: every
//! function is built from one of this package's binaries for the custom runtime; the webhook
//! function answers on `POST /hooks/{route}` before API Gateway gives up; it may read only its
//! secret and send only to the queues its environment names; and the queue `DEALHOOK_DLQ_URL`
//! names is the one that is encrypted, kept 14 days, allowed by the policy and alarmed on; and
//! idempotency is opt-in, its table keyed as the code expects (`id`, TTL on `expires_at`) and
//! only readable and writable item by item (`template_schema.rs` gives that key to other tests); and
//! the bucket `DEALHOOK_PAYLOAD_BUCKET` names (dead letters too big for a message) is encrypted,
//! private, TLS-only, expires objects no sooner than the queue drops messages, and may be written
//! only under the envelopes' prefix.
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
    fn sub_text(&self) -> Option<&str> {
        match self.call()? {
            (name, Value::Str(s)) if name == "Fn::Sub" => Some(s),
            (name, Value::Seq(items)) if name == "Fn::Sub" => items.first()?.text(),
            _ => None,
        }
    }

    /// (condition, then, else) of `!If [C, a, b]`.
    fn if_parts(&self) -> Option<(&str, &Node, &Node)> {
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

    fn resource_type(&self, name: &str) -> Option<&str> {
        self.resource(name)?.get("Type")?.text()
    }

    fn resources_of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
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

const CHECKS: [(&str, Check); 10] = [
    ("build", check_build),
    ("timeout", check_timeout),
    ("event", check_http_event),
    ("iam", check_iam),
    ("dead-letter-queue", check_dead_letter_queue),
    ("environment", check_environment),
    ("outputs", check_outputs),
    ("logs", check_log_groups),
    ("idempotency", check_idempotency),
    ("payload-bucket", check_payload_bucket),
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

impl Statement<'_> {
    fn actions(&self) -> Vec<&str> {
        self.node.get("Action").map(Node::strings).unwrap_or_default()
    }

    fn resources(&self) -> Vec<&Node> {
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

/// `sqs:SendMessage` only, and only on queues the function's environment names (`!Ref Queue`).
fn check_queue_statements(t: &Template, f: &Function, statements: &[Statement]) -> Vec<String> {
    let queues: BTreeSet<&str> = f
        .env()
        .into_iter()
        .filter_map(|(_, value)| value.ref_name())
        .filter(|name| t.resource_type(name) == Some("AWS::SQS::Queue"))
        .collect();
    let mut broken = Vec::new();
    for s in statements
        .iter()
        .filter(|s| s.actions().iter().any(|a| a.starts_with("sqs:")))
    {
        if s.actions() != ["sqs:SendMessage"] {
            broken.push(format!(
                "[iam] {}: {:?}, not only sqs:SendMessage",
                s.origin,
                s.actions()
            ));
        }
        for resource in s.resources() {
            let queue = resource
                .get_att()
                .filter(|(_, attribute)| *attribute == "Arn")
                .map(|(q, _)| q);
            if !queue.is_some_and(|q| queues.contains(q)) {
                broken.push(format!(
                    "[iam] {}: Resource {resource} is not the ARN of a queue {}'s environment names {queues:?}",
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
    let mut own = Vec::new();
    for (i, policy) in f.policies().into_iter().enumerate() {
        statements_of(policy, &format!("{} Policies[{i}]", f.name), &mut own);
    }
    let may_send = own.iter().any(|s| {
        s.actions().contains(&"sqs:SendMessage") && s.resources().iter().any(|r| r.get_att() == Some((queue, "Arn")))
    });
    if !may_send {
        broken.push(format!(
            "[dead-letter-queue] {}: no statement allows sqs:SendMessage on {queue}",
            f.name
        ));
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

    // The dead-letter queue's retention, in days: an object must not expire before its message.
    let retention_days = f
        .env_var("DEALHOOK_DLQ_URL")
        .and_then(Node::ref_name)
        .and_then(|q| t.resource(q)?.at(&["Properties", "MessageRetentionPeriod"])?.text())
        .and_then(|s| s.parse::<u64>().ok())
        .map(|seconds| seconds.div_ceil(86_400))
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
            "[payload-bucket] {bucket}: objects expire after {days} days, before the dead-letter queue's \
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

    let mut own = Vec::new();
    for (i, policy) in f.policies().into_iter().enumerate() {
        statements_of(policy, &format!("{} Policies[{i}]", f.name), &mut own);
    }
    let mut may_put = false;
    for s in own.iter().filter(|s| s.actions().iter().any(|a| a.starts_with("s3:"))) {
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
            f.name
        ));
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

/// The template with `from` (which must occur exactly once) replaced by `to`, and what breaks.
fn broken_by(from: &str, to: &str) -> Vec<String> {
    let text = template_text();
    assert_eq!(
        text.matches(from).count(),
        1,
        "the mutation's anchor {from:?} occurs once in template.yaml"
    );
    check_all(&Template::parse(&text.replacen(from, to, 1)), &Project::load())
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
    let broken = broken_by("Resource: !GetAtt DeadLetterQueue.Arn", "Resource: \"*\"");
    assert_reports(&broken, "[iam]", "Resource \"*\"");
    assert_reports(&broken, "[dead-letter-queue]", "no statement allows sqs:SendMessage");
}

#[test]
fn the_template_checks_report_a_secret_wildcard_and_a_managed_policy() {
    let broken = broken_by("secret:${HubSpotSecret}-??????", "secret:*");
    assert_reports(&broken, "[secret]", "is not the secret parameter HubSpotSecret");
    assert_reports(&broken, "[iam]", "wildcard resource");
    let broken = broken_by("      Policies:\n", "      Policies:\n        - AmazonSQSFullAccess\n");
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
    let broken = broken_by(
        "Resource: !GetAtt DeadLetterQueue.Arn",
        "Resource: [!GetAtt DeadLetterQueue.Arn, !GetAtt SomeOtherQueue.Arn]",
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
    let broken = broken_by("MessageRetentionPeriod: 1209600", "MessageRetentionPeriod: 345600");
    assert_reports(&broken, "[dead-letter-queue]", "14 days");
    let broken = broken_by("SqsManagedSseEnabled: true", "SqsManagedSseEnabled: false");
    assert_reports(&broken, "[dead-letter-queue]", "encryption");
}

#[test]
fn the_template_checks_report_an_undocumented_environment_variable() {
    let broken = broken_by(
        "        RUST_LOG: !Ref LogLevel\n",
        "        RUST_LOG: !Ref LogLevel\n        DEALHOOK_UNDOCUMENTED: \"1\"\n",
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
    let broken = broken_by(
        "Resource: !GetAtt DeadLetterQueue.Arn",
        "Resource: {\"Fn::GetAtt\": [DeadLetterQueue, Arn]}",
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
    let broken = broken_by(
        "- IdempotencyEnabled\n              - Sid: IdempotencyRecords",
        "- HasAlarmEmail\n              - Sid: IdempotencyRecords",
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
    let broken = broken_by("dynamodb:DeleteItem]", "dynamodb:*]");
    assert_reports(&broken, "[iam]", "action dynamodb:* is a wildcard");
    assert_reports(&broken, "[idempotency]", "actions [\"dynamodb:*\"");
    let broken = broken_by(
        "dynamodb:DeleteItem]",
        "dynamodb:DeleteItem, dynamodb:Scan, dynamodb:UpdateItem]",
    );
    assert_reports(&broken, "[idempotency]", "dynamodb:Scan");
    let broken = broken_by("Resource: !GetAtt IdempotencyTable.Arn", "Resource: \"*\"");
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
    let broken = broken_by(
        "Resource: !GetAtt IdempotencyTable.Arn",
        "Resource: [!GetAtt IdempotencyTable.Arn, !Sub \"${IdempotencyTable.Arn}/index/*\"]",
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
        assert_reports(
            &broken,
            "[payload-bucket]",
            "after 7 days, before the dead-letter queue's 14-day",
        );
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
        let broken = broken_by(anchor, "Resource: \"*\"");
        assert_reports(&broken, "[iam]", "Resource \"*\"");
        assert_reports(&broken, "[payload-bucket]", "no statement allows s3:PutObject");
        let broken = broken_by(anchor, "Resource: !Sub \"${PayloadBucket.Arn}/*\"");
        assert_reports(&broken, "[iam]", "wildcard resource");
        let broken = broken_by(anchor, "Resource: !Sub \"${PayloadBucket.Arn}/other/*\"");
        assert_reports(&broken, "[payload-bucket]", "with a prefix of dealhook/envelopes/");
        let broken = broken_by("Action: s3:PutObject", "Action: [s3:PutObject, s3:DeleteObject]");
        assert_reports(&broken, "[payload-bucket]", "s3:DeleteObject is not");
        let broken = broken_by("Action: s3:PutObject", "Action: s3:*");
        assert_reports(&broken, "[iam]", "s3:* is a wildcard");
    }
}
