//! `dpgui lint CONFIG [--json]`: the Config tab's findings without the terminal UI.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::settings::Settings;
use crate::trainer::lint::{
    self, ConfigKind, Diagnostic, RealFs, Severity, config_kind, lint_dataset, lint_main,
};

/// Config values are anyone's text: control characters shown as `\xNN`.
fn escaped(s: &str) -> String {
    crate::units::escape_controls(s, false).into_owned()
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// One finding as `file:line:column: severity[code]: message` and an indented fix line.
pub fn format_diagnostic(d: &Diagnostic) -> String {
    let mut s = format!(
        "{}:{}:{}: {}[{}]: {}",
        escaped(&d.file.to_string_lossy()),
        d.line,
        d.column,
        severity_word(d.severity),
        d.code,
        escaped(&d.message)
    );
    if let Some(fix) = &d.fix {
        s.push_str("\n  fix: ");
        s.push_str(&escaped(fix));
    }
    s
}

/// Reads a config (for `dpgui lint`, `dpgui dataset` and the Datasets tab's scans): a clear
/// message for a missing, unreadable, special (a FIFO would block), oversized or binary file.
pub fn read_config(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{}: no such file", path.display()),
        _ => format!("{}: cannot be read: {e}", path.display()),
    })?;
    if meta.is_dir() {
        return Err(format!("{}: is a directory", path.display()));
    }
    if !meta.is_file() {
        return Err(format!("{}: is not a regular file", path.display()));
    }
    let binary = || format!("{}: is a binary file, not a TOML config", path.display());
    let unreadable = |e: std::io::Error| format!("{}: cannot be read: {e}", path.display());
    // What the file is comes first (a binary says so whatever its size), then its size.
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    std::io::Read::by_ref(&mut file)
        .take(8192)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.contains(&0) {
        return Err(binary());
    }
    if meta.len() > lint::MAX_CONFIG_BYTES {
        return Err(format!(
            "{}: {} bytes, too big for a config (at most {})",
            path.display(),
            meta.len(),
            lint::MAX_CONFIG_BYTES
        ));
    }
    file.take(lint::MAX_CONFIG_BYTES)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.contains(&0) {
        return Err(binary());
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{}: is not UTF-8 text (invalid byte at offset {}); TOML configs are UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// The diffusion-pipe checkout, absolute: relative paths in configs resolve against it.
fn checkout(settings: &Settings) -> PathBuf {
    std::path::absolute(&settings.diffusion_pipe)
        .unwrap_or_else(|_| settings.diffusion_pipe.clone())
}

/// `dpgui lint`: exit status 1 when there is an error, 2 when the file cannot be read.
pub fn lint(settings: &Settings, path: &Path, json: bool) -> color_eyre::Result<i32> {
    let text = match read_config(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dpgui lint: {}", escaped(&e));
            return Ok(2);
        }
    };
    let base = checkout(settings);
    let kind = config_kind(&text);
    let diagnostics = match kind {
        ConfigKind::Dataset => lint_dataset(path, &text, &base, &RealFs),
        ConfigKind::Main | ConfigKind::Unknown => {
            if kind == ConfigKind::Unknown && !json {
                eprintln!(
                    "dpgui lint: {} looks like neither a main nor a dataset config; linting it as a main config",
                    escaped(&path.to_string_lossy())
                );
            }
            lint_main(path, &text, &base, &RealFs, None).diagnostics
        }
    };
    let (errors, warnings, infos) = lint::counts(&diagnostics);
    if json {
        super::print_json(&diagnostics)?;
    } else {
        let mut out = std::io::stdout().lock();
        for d in &diagnostics {
            writeln!(out, "{}", format_diagnostic(d))?;
        }
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        writeln!(
            out,
            "{}: {}, {}, {} ({} config; relative paths resolved against {})",
            escaped(&path.to_string_lossy()),
            plural(errors, "error"),
            plural(warnings, "warning"),
            plural(infos, "note"),
            if kind == ConfigKind::Dataset {
                "dataset"
            } else {
                "main"
            },
            escaped(&base.to_string_lossy()),
        )?;
    }
    Ok(i32::from(errors > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_print_on_two_lines_with_control_characters_escaped() {
        let d = Diagnostic {
            file: PathBuf::from("a\u{1b}.toml"),
            line: 3,
            column: 7,
            severity: Severity::Error,
            code: "path-missing",
            message: "x\ny".into(),
            fix: Some("do it".into()),
        };
        assert_eq!(
            format_diagnostic(&d),
            "a\\x1b.toml:3:7: error[path-missing]: x\\x0ay\n  fix: do it"
        );
    }

    #[test]
    fn unreadable_files_get_clear_messages() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        assert!(read_config(&missing).unwrap_err().contains("no such file"));
        let bin = dir.path().join("b.toml");
        std::fs::write(&bin, b"a = 1\0\x01").unwrap();
        assert!(read_config(&bin).unwrap_err().contains("binary"));
        let latin = dir.path().join("l.toml");
        std::fs::write(&latin, b"a = '\xe9'").unwrap();
        assert!(read_config(&latin).unwrap_err().contains("UTF-8"));
        assert!(read_config(dir.path()).unwrap_err().contains("directory"));
        // A FIFO is refused, not waited on.
        let fifo = dir.path().join("f.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(
            read_config(&fifo)
                .unwrap_err()
                .contains("not a regular file")
        );
    }
}
