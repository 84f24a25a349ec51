//! Phoenix-style route paths (`/rooms/:id`, `/files/*path`), checked and translated to
//! matchit's syntax (`/rooms/{id}`, `/files/{*path}`).

/// A checked route path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoutePath {
    /// As the user writes it, joined with its scopes: `/api/rooms/:id`.
    pub(crate) phoenix: String,
    /// For matchit: `/api/rooms/{id}`.
    pub(crate) matchit: String,
    /// The params in order, with whether each is a wildcard.
    pub(crate) params: Vec<(String, bool)>,
}

/// Joins a scope prefix and a path: `/api` + `/rooms` → `/api/rooms`, `/` + `/` → `/`.
pub(crate) fn join(prefix: &str, path: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    let path = path.trim_start_matches('/');
    match (prefix.is_empty(), path.is_empty()) {
        (true, true) => "/".to_owned(),
        (true, false) => format!("/{path}"),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}/{path}"),
    }
}

/// Checks a path literal (a scope prefix or a route) on its own.
pub(crate) fn check_literal(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("path `{path}` must start with `/`"));
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err(format!("path `{path}` must not end with `/`"));
    }
    Ok(())
}

/// Checks and translates a full path.
pub(crate) fn parse(path: &str) -> Result<RoutePath, String> {
    check_literal(path)?;
    let mut matchit = String::new();
    let mut params = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    if path == "/" {
        return Ok(RoutePath { phoenix: path.to_owned(), matchit: "/".to_owned(), params });
    }
    for (i, segment) in segments.iter().enumerate() {
        matchit.push('/');
        if segment.is_empty() {
            return Err(format!("path `{path}` has an empty segment (`//`)"));
        }
        if let Some(c) = segment.chars().find(|c| "{}?#\\ ".contains(*c) || c.is_control()) {
            return Err(format!("path `{path}` has an invalid character `{c}`"));
        }
        let (wildcard, name) = match segment.as_bytes()[0] {
            b':' => (false, &segment[1..]),
            b'*' => (true, &segment[1..]),
            _ => {
                if segment.contains(':') || segment.contains('*') {
                    return Err(format!(
                        "path `{path}`: a param must fill its segment, as in `/:name` or `/*name`"
                    ));
                }
                matchit.push_str(segment);
                continue;
            }
        };
        // A param becomes an argument of the path helper, so it must be a usable binding:
        // `self`, `Self`, `super`, `crate` and `_` cannot be one, not even as raw identifiers.
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !matches!(name, "_" | "self" | "Self" | "super" | "crate");
        if !valid {
            return Err(format!("path `{path}`: `{segment}` is not a valid param name"));
        }
        if wildcard && i + 1 != segments.len() {
            return Err(format!(
                "path `{path}`: the wildcard `{segment}` must be the last segment"
            ));
        }
        if params.iter().any(|(p, _)| p == name) {
            return Err(format!("path `{path}`: param `{name}` appears more than once"));
        }
        matchit.push('{');
        if wildcard {
            matchit.push('*');
        }
        matchit.push_str(name);
        matchit.push('}');
        params.push((name.to_owned(), wildcard));
    }
    Ok(RoutePath { phoenix: path.to_owned(), matchit, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_and_rejects() {
        let p = parse("/api/rooms/:room_id/files/*path").unwrap();
        assert_eq!(p.matchit, "/api/rooms/{room_id}/files/{*path}");
        assert_eq!(p.params, vec![("room_id".into(), false), ("path".into(), true)]);
        assert_eq!(parse("/").unwrap().matchit, "/");
        for bad in [
            "rooms",
            "/rooms/",
            "/a//b",
            "/a/:1x",
            "/a/*p/b",
            "/a/:id/:id",
            "/a/x:y",
            "/{x}",
            "/a/:",
            "/a/:self",
            "/a/:_",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(join("/", "/"), "/");
        assert_eq!(join("/api", "/"), "/api");
        assert_eq!(join("/", "/rooms"), "/rooms");
        assert_eq!(join("/api", "/rooms"), "/api/rooms");
    }
}
