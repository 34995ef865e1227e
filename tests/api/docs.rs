//! The documentation's mappings load: every ```yaml block in README.md and docs/*.md whose first line
//! (after comments) is `version: 1` is a whole mapping and goes through the mapping loader, so an
//! example cannot drift from the language. Blocks that are parts of a route are not checked here.

use std::path::{Path, PathBuf};

use dealhook::mapping::Mapping;

/// The Markdown files a user reads: README.md and every file in docs/.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The ```yaml blocks of `text` that are whole mappings, with the line their text starts on.
fn whole_mappings(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut block: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let fence = line.trim_start();
        match &mut block {
            None if fence.starts_with("```yaml") => block = Some((index + 2, String::new())),
            Some(_) if fence.starts_with("```") => {
                if let Some((start, body)) = block.take() {
                    let first = body
                        .lines()
                        .map(str::trim)
                        .find(|l| !l.is_empty() && !l.starts_with('#'));
                    if first == Some("version: 1") {
                        found.push((start, body));
                    }
                }
            }
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    found
}

#[test]
fn every_whole_mapping_in_the_docs_loads() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, yaml) in whole_mappings(&text) {
            checked += 1;
            let origin = format!("{}:{line}", file.display());
            if let Err(e) = Mapping::from_yaml(&yaml, &origin) {
                failures.push(format!("{origin} (the block's lines count from its first):\n{e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // docs/mapping.md alone has several: a reader that found none would check nothing.
    assert!(checked >= 5, "only {checked} whole mappings found in the docs");
}

/// The reader itself: a block is a whole mapping by its first line, inside ```yaml fences only.
#[test]
fn the_docs_reader_takes_whole_mappings_and_nothing_else() {
    let text = "intro\n```yaml\n# a comment\nversion: 1\nroutes: {}\n```\n\
                ```yaml\n        amount: 1\n```\n```json\nversion: 1\n```\n";
    let found = whole_mappings(text);
    assert_eq!(found, vec![(3, "# a comment\nversion: 1\nroutes: {}\n".to_owned())]);
}

/// The names declared in a top-level section of template.yaml (`Parameters:`, `Outputs:`), in order:
/// its keys indented by two spaces.
fn template_section_names<'a>(template: &'a str, section: &str) -> Vec<&'a str> {
    template
        .lines()
        .skip_while(|l| *l != section)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|name| name.chars().all(char::is_alphanumeric))
        .collect()
}

/// deploy.md's table of `sam deploy --guided` prompts lists every parameter of template.yaml, in the
/// template's order (the order SAM asks in), and no other: a parameter added to the template must be
/// explained there.
#[test]
fn the_guided_deploy_prompts_in_deploy_md_are_the_template_parameters_in_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
    let parameters = template_section_names(&template, "Parameters:");
    assert!(
        parameters.len() >= 10,
        "template.yaml's parameters not found: {parameters:?}"
    );
    let deploy = std::fs::read_to_string(root.join("docs/deploy.md")).unwrap();
    let mut prompted: Vec<&str> = Vec::new();
    for row in deploy.lines().filter(|l| l.starts_with("| `Parameter ")) {
        let cell = row.split('|').nth(1).unwrap_or("");
        for part in cell.split("`Parameter ").skip(1) {
            prompted.extend(part.split_whitespace().next());
        }
        // A row may name two parameters: "`Parameter A [x]`, `B [y]`".
        for part in cell.split(", `").skip(1) {
            prompted.extend(part.split_whitespace().next());
        }
    }
    assert_eq!(
        prompted, parameters,
        "docs/deploy.md, section 4: the prompts and template.yaml's parameters differ"
    );
}

/// deploy.md's table of the stack's outputs names every output of template.yaml, and no other: an
/// output added to the template must be explained there.
#[test]
fn the_outputs_table_in_deploy_md_is_the_template_outputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
    let mut outputs = template_section_names(&template, "Outputs:");
    assert!(outputs.len() >= 5, "template.yaml's outputs not found: {outputs:?}");
    let deploy = std::fs::read_to_string(root.join("docs/deploy.md")).unwrap();
    let table: Vec<&str> = deploy
        .lines()
        .skip_while(|l| *l != "| Output | Use |")
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let mut documented: Vec<&str> = table
        .iter()
        .filter_map(|row| row.split('|').nth(1))
        .flat_map(|cell| cell.split(',').map(|name| name.trim().trim_matches('`')))
        .collect();
    outputs.sort_unstable();
    documented.sort_unstable();
    assert_eq!(
        documented, outputs,
        "docs/deploy.md, section 4: the outputs table and template.yaml's outputs differ"
    );
}
