//! ZooKeeper path rules.

/// Checks a znode path as ZooKeeper does: absolute, no empty, `.` or `..` segments, no trailing
/// slash (but for the root), and none of the characters it refuses (see [`is_refused`]).
pub fn validate_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must start with /"));
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(format!("path {path:?} must not end with /"));
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() {
            return Err(format!("path {path:?} has an empty segment"));
        }
        if segment == "." || segment == ".." {
            return Err(format!("path {path:?} has a relative segment"));
        }
    }
    if path.chars().any(is_refused) {
        return Err(format!("path {path:?} has an invalid character"));
    }
    Ok(())
}

/// Characters ZooKeeper refuses in a path: NUL, controls (U+0001–U+001F, U+007F–U+009F),
/// U+E000–U+F8FF and U+FFF0–U+FFFF. It checks UTF-16 units and also refuses U+D800–U+DFFF,
/// which makes every character beyond U+FFFF (a surrogate pair there) refused too.
fn is_refused(c: char) -> bool {
    matches!(c,
        '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..)
}

/// The parent of a path; `None` for the root or a path without a slash.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 { "/" } else { &path[..i] })
}
