//! Embeds the demo workspace (config, queries, intents, prompts, manifests, demo files) into the
//! binary, so `lazyops chat` works with nothing else on disk. The file list is read from the
//! directories, never kept by hand.

use std::fmt::Write as _;
use std::path::Path;

/// (directory in the repo, where it lands in the materialised workspace)
const DIRS: &[(&str, &str)] = &[
    ("queries", "queries"),
    ("intents", "intents"),
    ("prompts", "prompts"),
    ("examples/manifests", "manifests"),
    ("examples/demo", "demo"),
];

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut out = String::from("/// (path in the workspace, contents)\npub static FILES: &[(&str, &str)] = &[\n");
    let config = Path::new(&root).join("examples/lazyops.toml");
    println!("cargo:rerun-if-changed={}", config.display());
    writeln!(out, "    (\"lazyops.toml\", include_str!({:?})),", config.display().to_string()).ok();
    for (dir, target) in DIRS {
        let full = Path::new(&root).join(dir);
        println!("cargo:rerun-if-changed={}", full.display());
        let mut files = Vec::new();
        collect(&full, &mut files);
        files.sort();
        for f in files {
            let rel = f.strip_prefix(&full).expect("collected under dir").display().to_string();
            writeln!(out, "    (\"{target}/{rel}\", include_str!({:?})),", f.display().to_string()).ok();
        }
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            println!("cargo:rerun-if-changed={}", p.display());
            collect(&p, files);
        } else {
            files.push(p);
        }
    }
}
