//! Human-readable figures shared by the views and the headless output.

/// "512 MiB", "40.2 GiB": binary units, one decimal from GiB up.
pub fn format_bytes(b: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = b as f64;
    if f >= KIB * KIB * KIB * KIB {
        format!("{:.1} TiB", f / (KIB * KIB * KIB * KIB))
    } else if f >= KIB * KIB * KIB {
        format!("{:.1} GiB", f / (KIB * KIB * KIB))
    } else if f >= KIB * KIB {
        format!("{:.0} MiB", f / (KIB * KIB))
    } else if f >= KIB {
        format!("{:.0} KiB", f / KIB)
    } else {
        format!("{b} B")
    }
}

/// `s` for a terminal: control characters (escape sequences, newlines that could fake extra
/// lines) shown as `\xNN`, as `ps` does; tabs too unless `keep_tab`. Any user chooses their argv,
/// log lines and config values. Borrowed when there is nothing to escape.
pub fn escape_controls(s: &str, keep_tab: bool) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && !(keep_tab && c == '\t');
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Truncates to `width` display columns with an ellipsis (char-based; the data here is ASCII
/// paths and command lines, and a stray wide char only costs alignment, never a panic).
pub fn ellipsize(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_tabs_on_request() {
        assert!(matches!(
            escape_controls("plain", false),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(escape_controls("a\x1b[2Jb\nc", false), "a\\x1b[2Jb\\x0ac");
        assert_eq!(escape_controls("a\tb", true), "a\tb");
        assert_eq!(escape_controls("a\tb", false), "a\\x09b");
    }

    #[test]
    fn bytes_and_ellipsis() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 * 1024 * 1024), "3 MiB");
        assert_eq!(format_bytes(80 * 1024 * 1024 * 1024), "80.0 GiB");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("abc", 4), "abc");
        assert_eq!(ellipsize("abc", 0), "");
    }
}
