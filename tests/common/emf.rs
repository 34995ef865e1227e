//! A validator of CloudWatch Embedded Metric Format lines, written from the specification
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>),
//! shared by the unit tests (src/metrics.rs) and the integration tests (tests/api/metrics.rs). It
//! checks every rule a line must keep for CloudWatch to extract its metrics, and gives back the data
//! points the line holds so that tests can count them.

use std::collections::BTreeMap;

use serde_json::Value;

/// The units the specification allows (CloudWatch's `StandardUnit`).
pub const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// At most this many dimensions in one dimension set.
pub const MAX_DIMENSIONS: usize = 30;
/// At most this many metrics in one directive.
pub const MAX_METRICS: usize = 100;
/// At most this many values in one metric's array.
pub const MAX_VALUES: usize = 100;

/// One metric of one dimension set of a line: what CloudWatch would store.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The directive's namespace.
    pub namespace: String,
    /// The metric's name.
    pub name: String,
    /// Its unit (`None` when the line gives none).
    pub unit: Option<String>,
    /// The dimension set's names with the line's values.
    pub dimensions: BTreeMap<String, String>,
    /// The values (one for a number, several for an array).
    pub values: Vec<f64>,
    /// `_aws.Timestamp`, ms since the epoch.
    pub timestamp: i64,
}

/// Checks one line against the specification; its points, or the first rule it breaks.
pub fn validate_line(line: &str) -> Result<Vec<Point>, String> {
    let root: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
    let root = root.as_object().ok_or("the root is not an object")?;
    let aws = root.get("_aws").and_then(Value::as_object).ok_or("no `_aws` object")?;
    let timestamp = aws
        .get("Timestamp")
        .and_then(Value::as_i64)
        .ok_or("`_aws.Timestamp` is not an integer")?;
    // Milliseconds since the epoch: after 2001-09-09 (1e12 ms), before the year 2286 (1e13 ms).
    if !(1_000_000_000_000..10_000_000_000_000).contains(&timestamp) {
        return Err(format!(
            "`_aws.Timestamp` {timestamp} is not milliseconds since the epoch"
        ));
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("`_aws.CloudWatchMetrics` is not an array")?;
    if directives.is_empty() {
        return Err("`_aws.CloudWatchMetrics` is empty".into());
    }
    let mut points = Vec::new();
    for (d, directive) in directives.iter().enumerate() {
        let at = format!("CloudWatchMetrics[{d}]");
        let directive = directive.as_object().ok_or(format!("{at} is not an object"))?;
        let namespace = directive
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or(format!("{at}.Namespace is not a string"))?;
        if namespace.is_empty() || namespace.len() > 255 {
            return Err(format!("{at}.Namespace must be 1 to 255 characters"));
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or(format!("{at}.Dimensions is not an array"))?;
        let mut dimension_sets = Vec::new();
        for (s, set) in sets.iter().enumerate() {
            let set = set.as_array().ok_or(format!("{at}.Dimensions[{s}] is not an array"))?;
            if set.len() > MAX_DIMENSIONS {
                return Err(format!(
                    "{at}.Dimensions[{s}] has {} dimensions (at most {MAX_DIMENSIONS})",
                    set.len()
                ));
            }
            let mut dimensions = BTreeMap::new();
            for name in set {
                let name = name
                    .as_str()
                    .ok_or(format!("{at}.Dimensions[{s}] holds a name that is not a string"))?;
                if name.is_empty() || name.len() > 250 {
                    return Err(format!("dimension name {name:?} must be 1 to 250 characters"));
                }
                let value = root
                    .get(name)
                    .ok_or(format!("dimension {name:?} is not a member of the root"))?
                    .as_str()
                    .ok_or(format!("dimension {name:?}'s value is not a string"))?;
                if value.trim().is_empty() || value.len() > 1024 {
                    return Err(format!(
                        "dimension {name:?}'s value {value:?} is blank or over 1024 characters"
                    ));
                }
                if dimensions.insert(name.to_owned(), value.to_owned()).is_some() {
                    return Err(format!("{at}.Dimensions[{s}] names {name:?} twice"));
                }
            }
            dimension_sets.push(dimensions);
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or(format!("{at}.Metrics is not an array"))?;
        if metrics.len() > MAX_METRICS {
            return Err(format!(
                "{at}.Metrics has {} metrics (at most {MAX_METRICS})",
                metrics.len()
            ));
        }
        let mut seen = Vec::new();
        for (m, metric) in metrics.iter().enumerate() {
            let metric = metric
                .as_object()
                .ok_or(format!("{at}.Metrics[{m}] is not an object"))?;
            let name = metric
                .get("Name")
                .and_then(Value::as_str)
                .ok_or(format!("{at}.Metrics[{m}].Name is not a string"))?;
            if name.is_empty() || name.len() > 1024 {
                return Err(format!("metric name {name:?} must be 1 to 1024 characters"));
            }
            if seen.contains(&name) {
                return Err(format!("{at}.Metrics names {name:?} twice"));
            }
            seen.push(name);
            let unit = match metric.get("Unit") {
                None => None,
                Some(unit) => {
                    let unit = unit.as_str().ok_or(format!("{name}'s Unit is not a string"))?;
                    if !UNITS.contains(&unit) {
                        return Err(format!("{name}'s Unit {unit:?} is not a CloudWatch unit"));
                    }
                    Some(unit.to_owned())
                }
            };
            if let Some(resolution) = metric.get("StorageResolution")
                && resolution.as_i64() != Some(1)
                && resolution.as_i64() != Some(60)
            {
                return Err(format!("{name}'s StorageResolution is not 1 or 60"));
            }
            let values = match root.get(name) {
                None => return Err(format!("metric {name:?} is not a member of the root")),
                Some(Value::Number(n)) => vec![n.as_f64().ok_or(format!("{name}'s value is not a number"))?],
                Some(Value::Array(values)) => {
                    if values.is_empty() || values.len() > MAX_VALUES {
                        return Err(format!("{name} has {} values (1 to {MAX_VALUES})", values.len()));
                    }
                    values
                        .iter()
                        .map(|v| v.as_f64().ok_or(format!("{name} holds a value that is not a number")))
                        .collect::<Result<Vec<_>, _>>()?
                }
                Some(other) => return Err(format!("metric {name:?}'s value {other} is not a number or an array")),
            };
            if dimension_sets.is_empty() {
                return Err(format!("{at}.Dimensions is empty: CloudWatch would extract no metric"));
            }
            for dimensions in &dimension_sets {
                points.push(Point {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    unit: unit.clone(),
                    dimensions: dimensions.clone(),
                    values: values.clone(),
                    timestamp,
                });
            }
        }
    }
    Ok(points)
}

/// Every line of `text` validated ([`validate_line`]): all their points, or the first broken rule with
/// the line's number.
pub fn validate(text: &str) -> Result<Vec<Point>, String> {
    let mut points = Vec::new();
    for (n, line) in text.lines().enumerate() {
        points.extend(validate_line(line).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    Ok(points)
}

/// The sum of the values of `name` stored under exactly `dimensions` (names and values).
pub fn sum(points: &[Point], name: &str, dimensions: &[(&str, &str)]) -> f64 {
    let wanted: BTreeMap<String, String> = dimensions
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    points
        .iter()
        .filter(|p| p.name == name && p.dimensions == wanted)
        .flat_map(|p| p.values.iter())
        .sum()
}

/// How many values of `name` are stored under exactly `dimensions`.
pub fn samples(points: &[Point], name: &str, dimensions: &[(&str, &str)]) -> usize {
    let wanted: BTreeMap<String, String> = dimensions
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    points
        .iter()
        .filter(|p| p.name == name && p.dimensions == wanted)
        .map(|p| p.values.len())
        .sum()
}
