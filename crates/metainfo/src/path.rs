//! Which names may become a file or folder name on disk.
//!
//! A torrent's `name` and every element of a file's `path` must be exactly one plain component, so that
//! joining them under the download folder can never leave it: `PathBuf::push("/etc/x")` replaces the whole
//! path, `..` climbs out, and `a/b` inside one element smuggles in a separator.

/// Checks one path component, returning why it is refused.
pub fn check_component(component: &str) -> Result<(), &'static str> {
    if component.is_empty() {
        return Err("empty path component");
    }
    if component == "." || component == ".." {
        return Err("`.` or `..` path component");
    }
    if component.contains(['/', '\\']) {
        return Err("path component contains a separator");
    }
    if component.chars().any(char::is_control) {
        return Err("path component contains a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_component;

    #[test]
    fn plain_names_pass_and_escapes_do_not() {
        for good in ["a", "file.txt", ".hidden", "...", "ünïcødé ✓", "a b", "CON"] {
            assert_eq!(check_component(good), Ok(()), "{good:?}");
        }
        for bad in ["", ".", "..", "/", "/etc/passwd", "a/b", "a\\b", "..\\..", "nul\0byte", "line\nbreak", "\u{7f}"] {
            assert!(check_component(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
