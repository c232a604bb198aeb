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
    link_layout(Path::new(&root));
}

/// Release binaries for x86_64 Linux, which the toolchain links with rust-lld: the functions a
/// server runs to start and answer go first in .text (`link/order.txt`, made by
/// `link/order.sh`), so the kernel's 64 KB fault-around maps a few MB of code instead of most
/// of the 20 MB; relative relocations are packed (RELR) when the build machine has glibc 2.36+,
/// so the loader reads a few KB of them instead of ~1 MB. Idle RSS of `lazyops serve`: see README, "Measured".
fn link_layout(root: &Path) {
    let order = root.join("link/order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").unwrap_or_default();
    // A linker chosen in cargo's config (RUSTC_LINKER) or flags may not be lld: leave it be.
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = std::env::var_os("RUSTC_LINKER").is_some()
        || ["fuse-ld", "link-self-contained", "linker"].iter().any(|f| flags.contains(f));
    if !release || target != "x86_64-unknown-linux-gnu" || own_linker {
        return;
    }
    if host_glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    if order.is_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
        // Symbols renamed since the file was made are skipped; they only pack less.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Packed relocations need glibc 2.36 where the binary runs; a binary runs where it is built
/// far more often than not, so the build machine's glibc decides (older: plain relocations).
fn host_glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = std::process::Command::new("getconf").arg("GNU_LIBC_VERSION").output() else { return false };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text.trim().trim_start_matches("glibc ").split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (version.next().unwrap_or(0), version.next().unwrap_or(0)) >= (major, minor)
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
