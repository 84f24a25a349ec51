//! The path params of a matched route, stored without copying what the path already holds.

use std::ops::Range;
use std::sync::Arc;

/// Param names come from the route, shared by every request to it; values are byte ranges of
/// the request path unless they had to be percent-decoded. A deep route then costs one small
/// allocation per request instead of two strings per param.
#[derive(Default)]
pub(crate) struct PathParams {
    names: Option<Arc<[Box<str>]>>,
    values: Vec<Segment>,
}

enum Segment {
    /// Bytes of the request path, which needed no decoding.
    InPath(Range<usize>),
    Owned(String),
}

impl PathParams {
    /// `found` are the params a route lookup returned, in route order, as slices of `path`.
    pub(crate) fn from_lookup<'a>(
        names: Arc<[Box<str>]>,
        path: &str,
        found: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let base = path.as_ptr() as usize;
        let values = found
            .zip(names.iter())
            .map(|((key, value), name)| {
                debug_assert_eq!(key, &**name, "route param names out of order");
                // Where the value sits in the path; checked, so a value from elsewhere is
                // copied rather than misread.
                let start = (value.as_ptr() as usize).wrapping_sub(base);
                let range = start..start.saturating_add(value.len());
                if path.get(range.clone()) == Some(value) && !value.contains('%') {
                    Segment::InPath(range)
                } else {
                    Segment::Owned(decode(value))
                }
            })
            .collect();
        Self { names: Some(names), values }
    }

    /// Params given as owned pairs.
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let names: Arc<[Box<str>]> = pairs.iter().map(|(k, _)| k.as_str().into()).collect();
        let values = pairs.into_iter().map(|(_, v)| Segment::Owned(v)).collect();
        Self { names: Some(names), values }
    }

    /// The params as `(name, value)`, reading in-path values from `path`.
    pub(crate) fn iter<'a>(&'a self, path: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        let names = self.names.as_deref().unwrap_or_default();
        names.iter().zip(&self.values).map(move |(name, value)| {
            let value = match value {
                Segment::InPath(range) => path.get(range.clone()).unwrap_or_default(),
                Segment::Owned(value) => value.as_str(),
            };
            (&**name, value)
        })
    }

    /// Copies the values out of `path`, before the request's URI changes.
    pub(crate) fn detach(&mut self, path: &str) {
        for value in &mut self.values {
            if let Segment::InPath(range) = value {
                *value = Segment::Owned(path.get(range.clone()).unwrap_or_default().to_owned());
            }
        }
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// The names of the params of a route written in matchit's syntax (`/rooms/{id}/{*rest}`), in
/// order; `None` when it has none.
pub(crate) fn names(path: &str) -> Option<Arc<[Box<str>]>> {
    let mut names: Vec<Box<str>> = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        // `{{` is a literal brace.
        if rest[open + 1..].starts_with('{') {
            rest = &rest[open + 2..];
            continue;
        }
        let Some(close) = rest[open..].find('}') else { break };
        let name = &rest[open + 1..open + close];
        names.push(name.trim_start_matches('*').into());
        rest = &rest[open + close + 1..];
    }
    (!names.is_empty()).then(|| names.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_matchit_path() {
        assert!(names("/rooms").is_none());
        let got = names("/rooms/{room_id}/files/{*path}").unwrap();
        assert_eq!(got.iter().map(|n| &**n).collect::<Vec<_>>(), ["room_id", "path"]);
        let got = names("/a{{b}}/{id}").unwrap();
        assert_eq!(got.iter().map(|n| &**n).collect::<Vec<_>>(), ["id"]);
    }

    #[test]
    fn values_borrow_the_path_unless_decoded() {
        let path = "/users/42/posts/a%20b";
        let found = [("id", &path[7..9]), ("post_id", &path[16..])];
        let mut params = PathParams::from_lookup(
            names("/users/{id}/posts/{post_id}").unwrap(),
            path,
            found.into_iter(),
        );
        assert!(matches!(params.values[0], Segment::InPath(_)));
        assert!(matches!(params.values[1], Segment::Owned(_)));
        let pairs: Vec<_> = params.iter(path).collect();
        assert_eq!(pairs, [("id", "42"), ("post_id", "a b")]);
        params.detach(path);
        let pairs: Vec<_> = params.iter("/changed").collect();
        assert_eq!(pairs, [("id", "42"), ("post_id", "a b")]);
    }
}
