//! Rewrites the generated documentation: `man/*.8` and `completions/`, from the clap
//! definitions in `src/commands` and the hand-written sections in `man/sections`.
//!
//!     cargo run --example gen_docs
//!
//! `tests/docs.rs` fails while a checked-in file differs from what this writes.

use std::path::Path;
use std::process::ExitCode;

mod docs;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = match docs::generate(root) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("gen_docs: {e}");
            return ExitCode::FAILURE;
        }
    };
    for stray in docs::strays(root, &files) {
        if let Err(e) = std::fs::remove_file(root.join(&stray)) {
            eprintln!("gen_docs: {}: {e}", stray.display());
            return ExitCode::FAILURE;
        }
        println!("removed {}", stray.display());
    }
    for file in &files {
        let path = root.join(&file.path);
        if std::fs::read(&path).is_ok_and(|old| old == file.content) {
            continue;
        }
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &file.content));
        if let Err(e) = written {
            eprintln!("gen_docs: {}: {e}", file.path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", file.path.display());
    }
    ExitCode::SUCCESS
}
