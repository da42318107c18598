//! The repository stands alone and its README tells the truth: no link or citation points
//! outside the checkout, the compose file publishes nothing beyond this machine and builds
//! from the checkout, and the README names the Rust version that the crate declares.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every text file below `dir` (relative to the crate), recursively: not the screenshots.
fn files_under(dir: &str) -> Vec<PathBuf> {
    fn walk(path: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, found)
            } else if path.extension().is_none_or(|e| e != "png") {
                found.push(path)
            }
        }
    }
    let mut found = vec![];
    walk(&root().join(dir), &mut found);
    found
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn nothing_in_the_readme_the_docs_or_the_code_points_outside_the_repository() {
    let mut files = vec![root().join("README.md")];
    files.extend(files_under("docs"));
    files.extend(files_under("src"));
    let mut offending = vec![];
    for file in files {
        let text = read(&file);
        for (number, line) in text.lines().enumerate() {
            if line.contains("shared/") || line.to_lowercase().contains("contract") {
                offending.push(format!("{}:{}: {}", file.display(), number + 1, line.trim()));
            }
        }
    }
    assert!(offending.is_empty(), "lines pointing outside the repository:\n{}", offending.join("\n"));
}

#[test]
fn the_docs_speak_to_users_not_about_how_the_work_went() {
    let mut files = vec![root().join("README.md")];
    files.extend(files_under("docs"));
    let mut offending = vec![];
    for file in files {
        let text = read(&file);
        for (number, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            let words = ["this session", "previous session", "issue #", "run of record"];
            if words.iter().any(|w| lower.contains(w)) {
                offending.push(format!("{}:{}: {}", file.display(), number + 1, line.trim()));
            }
        }
    }
    assert!(offending.is_empty(), "lines about the work rather than the product:\n{}", offending.join("\n"));
}

#[test]
fn compose_binds_every_port_to_loopback_and_builds_from_the_checkout() {
    let compose = read(&root().join("docker-compose.yml"));
    let mut in_ports = false;
    let mut ports = vec![];
    for line in compose.lines() {
        let trimmed = line.trim();
        if trimmed == "ports:" {
            in_ports = true;
        } else if in_ports && trimmed.starts_with("- ") {
            ports.push(trimmed.trim_start_matches("- ").trim_matches('"').to_owned());
        } else if !trimmed.is_empty() {
            in_ports = false;
        }
    }
    assert!(ports.len() >= 4, "the compose file publishes RabbitMQ, its UI, PostgreSQL and the API: {ports:?}");
    for port in &ports {
        assert!(port.starts_with("127.0.0.1:"), "port {port} is published beyond this machine");
    }
    assert!(compose.contains("pull_policy: build"), "the worker's image must be built, never pulled");
    let readme = read(&root().join("README.md"));
    assert!(readme.contains("    docker compose up --build\n"), "the README's first command builds the image");
}

#[test]
fn the_readme_names_the_rust_version_the_crate_needs() {
    let manifest = read(&root().join("Cargo.toml"));
    let version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .expect("Cargo.toml declares rust-version")
        .trim_matches('"');
    let readme = read(&root().join("README.md"));
    assert!(readme.contains(&format!("Rust {version} or newer")), "the README must say: Rust {version} or newer");
}
