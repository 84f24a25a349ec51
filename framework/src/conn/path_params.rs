//! The path params of a matched route, stored without copying what the path already holds.

use std::ops::Range;
use std::sync::Arc;

/// How many values a request keeps without allocating; deeper routes are rare.
const INLINE: usize = 4;

/// Param names come from the route, shared by every request to it; values are byte ranges of
/// the request path unless they had to be percent-decoded. A route of up to [`INLINE`] params
/// whose values need no decoding then costs no allocation at all.
#[derive(Default)]
pub(crate) struct PathParams {
    names: Option<Arc<[Box<str>]>>,
    values: Values,
}

enum Values {
    /// Byte ranges of the request path, which needed no decoding.
    InPath { len: usize, ranges: [(usize, usize); INLINE] },
    /// Any other case: more values, or values that were decoded.
    Mixed(Vec<Segment>),
}

impl Default for Values {
    fn default() -> Self {
        Self::InPath { len: 0, ranges: [(0, 0); INLINE] }
    }
}

enum Segment {
    /// Bytes of the request path, which needed no decoding.
    InPath(Range<usize>),
    Owned(String),
}

/// What a route knows about its params, computed once when the route is added.
pub(crate) struct RouteParams {
    names: Arc<[Box<str>]>,
    /// For each param, in order, the index of the path segment it takes (the path's
    /// `/`-separated parts, counted from the one after the leading `/`) and whether it is a
    /// wildcard taking the rest of the path. `None` when a param shares its segment with other
    /// text (matchit allows `/{name}.json`): its value then comes from matchit.
    segments: Option<Box<[(usize, bool)]>>,
}

impl RouteParams {
    /// The params of a route written in matchit's syntax (`/rooms/{id}/{*rest}`); `None` when
    /// it has none.
    pub(crate) fn of(path: &str) -> Option<Self> {
        let names = names(path)?;
        Some(Self { segments: segments(path, names.len()), names })
    }
}

impl PathParams {
    /// The params of a request to a route with `route`'s params, whose path (without a
    /// trailing slash the router ignored) is `path`. `found` are the params the route lookup
    /// returned, read only when the route's params cannot be found by segment.
    pub(crate) fn from_match<'a, I>(
        route: &RouteParams,
        path: &str,
        found: impl FnOnce() -> I,
    ) -> Self
    where
        I: Iterator<Item = (&'a str, &'a str)>,
    {
        match &route.segments {
            Some(segments) => Self::from_segments(route.names.clone(), segments, path),
            None => Self::from_lookup(route.names.clone(), path, found()),
        }
    }

    /// Cuts the values out of `path` by segment. matchit matched `path` against the route, so
    /// segment `i` of the path is what the route's segment `i` matched.
    fn from_segments(names: Arc<[Box<str>]>, segments: &[(usize, bool)], path: &str) -> Self {
        let mut ranges = [(0, 0); INLINE];
        // Set once a value does not fit the inline ranges; every later one goes there too.
        let mut spilled: Option<Vec<Segment>> = None;
        // Segment `index` starts at byte `start`.
        let (mut index, mut start) = (0, 1);
        for (n, &(wanted, wildcard)) in segments.iter().enumerate() {
            while index < wanted {
                start = next_segment(path, start);
                index += 1;
            }
            let end = if wildcard { path.len() } else { next_segment(path, start) - 1 };
            let start = start.min(path.len());
            let range = (start, end.clamp(start, path.len()));
            if spilled.is_none() && n < INLINE && !path[range.0..range.1].contains('%') {
                ranges[n] = range;
                continue;
            }
            spilled
                .get_or_insert_with(|| Self::spill(&ranges, n.min(INLINE)))
                .push(Segment::in_path(path, range));
        }
        let values = match spilled {
            Some(values) => Values::Mixed(values),
            None => Values::InPath { len: segments.len(), ranges },
        };
        Self { names: Some(names), values }
    }

    fn spill(ranges: &[(usize, usize)], len: usize) -> Vec<Segment> {
        let mut vec = Vec::with_capacity(len + 1);
        vec.extend(ranges[..len].iter().map(|&(start, end)| Segment::InPath(start..end)));
        vec
    }

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
        Self { names: Some(names), values: Values::Mixed(values) }
    }

    /// Params given as owned pairs.
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let names: Arc<[Box<str>]> = pairs.iter().map(|(k, _)| k.as_str().into()).collect();
        let values = pairs.into_iter().map(|(_, v)| Segment::Owned(v)).collect();
        Self { names: Some(names), values: Values::Mixed(values) }
    }

    /// The value of the param `name`, reading an in-path value from `path`.
    pub(crate) fn get<'a>(&'a self, path: &'a str, name: &str) -> Option<&'a str> {
        let index = self.names.as_deref()?.iter().position(|n| **n == *name)?;
        self.value(path, index)
    }

    fn value<'a>(&'a self, path: &'a str, index: usize) -> Option<&'a str> {
        match &self.values {
            Values::InPath { len, ranges } => {
                let &(start, end) = ranges[..*len].get(index)?;
                path.get(start..end)
            }
            Values::Mixed(values) => match values.get(index)? {
                Segment::InPath(range) => path.get(range.clone()),
                Segment::Owned(value) => Some(value.as_str()),
            },
        }
    }

    /// The params as `(name, value)`, reading in-path values from `path`.
    pub(crate) fn iter<'a>(&'a self, path: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        let names = self.names.as_deref().unwrap_or_default();
        names
            .iter()
            .enumerate()
            .map_while(move |(index, name)| Some((&**name, self.value(path, index)?)))
    }

    /// Copies the values out of `path`, before the request's URI changes.
    pub(crate) fn detach(&mut self, path: &str) {
        let mut values = match std::mem::take(&mut self.values) {
            Values::InPath { len, ranges } => Self::spill(&ranges, len),
            Values::Mixed(values) => values,
        };
        for value in &mut values {
            if let Segment::InPath(range) = value {
                *value = Segment::Owned(path.get(range.clone()).unwrap_or_default().to_owned());
            }
        }
        self.values = Values::Mixed(values);
    }
}

impl Segment {
    fn in_path(path: &str, (start, end): (usize, usize)) -> Self {
        match path.get(start..end) {
            Some(value) if value.contains('%') => Self::Owned(decode(value)),
            _ => Self::InPath(start..end),
        }
    }
}

/// Where the segment after the one starting at `start` starts: past the next `/`, or one past
/// the end of `path` when there is none.
fn next_segment(path: &str, start: usize) -> usize {
    let rest = path.as_bytes().get(start..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'/') {
        Some(slash) => start + slash + 1,
        None => path.len() + 1,
    }
}

/// The segment of each param of a matchit path, when every param is a whole segment (or a
/// final wildcard) and no static segment holds an escaped brace.
fn segments(path: &str, count: usize) -> Option<Box<[(usize, bool)]>> {
    let parts: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let mut segments = Vec::with_capacity(count);
    for (index, part) in parts.iter().enumerate() {
        if !part.contains(['{', '}']) {
            continue;
        }
        let name = part.strip_prefix('{')?.strip_suffix('}')?;
        if name.contains(['{', '}', '/']) || name.is_empty() {
            return None;
        }
        let wildcard = name.starts_with('*');
        if wildcard && index + 1 != parts.len() {
            return None;
        }
        segments.push((index, wildcard));
    }
    (segments.len() == count).then(|| segments.into())
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
        let Values::Mixed(values) = &params.values else { panic!("lookups keep a vector") };
        assert!(matches!(values[0], Segment::InPath(_)));
        assert!(matches!(values[1], Segment::Owned(_)));
        let pairs: Vec<_> = params.iter(path).collect();
        assert_eq!(pairs, [("id", "42"), ("post_id", "a b")]);
        params.detach(path);
        let pairs: Vec<_> = params.iter("/changed").collect();
        assert_eq!(pairs, [("id", "42"), ("post_id", "a b")]);
    }

    /// The params found by segment against those matchit returns, for the same match.
    fn by_segment_and_by_lookup(route: &str, path: &str) -> (Vec<(String, String)>, PathParams) {
        let mut router = matchit::Router::new();
        router.insert(route, ()).unwrap();
        let matched = router.at(path).unwrap_or_else(|_| panic!("{route} matches {path}"));
        let params = RouteParams::of(route).unwrap();
        let segments = params.segments.as_deref().expect("whole-segment params");
        let by_segment = PathParams::from_segments(params.names.clone(), segments, path);
        let by_lookup = PathParams::from_lookup(params.names.clone(), path, matched.params.iter());
        let pairs = |p: &PathParams| -> Vec<(String, String)> {
            p.iter(path).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
        };
        assert_eq!(pairs(&by_segment), pairs(&by_lookup), "{route} on {path}");
        assert_eq!(by_segment.iter(path).count(), params.names.len(), "{route} on {path}");
        (pairs(&by_segment), by_segment)
    }

    #[test]
    fn values_found_by_segment_are_those_matchit_found() {
        for (route, path) in [
            ("/users/{id}", "/users/42"),
            ("/api/v1/users/{id}/posts/{post_id}", "/api/v1/users/42/posts/7"),
            ("/{a}/{b}/{c}/{d}", "/1/2/3/4"),
            ("/{a}/{b}/{c}/{d}/{e}/x/{f}", "/1/2/3/4/5/x/6"),
            ("/{a}/{b}/{c}/{d}/{e}", "/1/2/3/a%2Fb/5"),
            ("/files/{*path}", "/files/a/b/c.txt"),
            ("/files/{id}/{*path}", "/files/7/a%20b/c"),
            ("/{*path}", "/anything/at/all"),
            ("/rooms/{id}", "/rooms/caf%C3%A9"),
            ("/rooms/{id}/messages", "/rooms/%/messages"),
        ] {
            by_segment_and_by_lookup(route, path);
        }
    }

    #[test]
    fn a_short_route_without_encoded_values_keeps_ranges_inline() {
        let (pairs, params) = by_segment_and_by_lookup("/a/{x}/b/{y}", "/a/1/b/two");
        assert_eq!(pairs, [("x".into(), "1".into()), ("y".into(), "two".into())]);
        assert!(matches!(params.values, Values::InPath { len: 2, .. }));
        let (pairs, params) = by_segment_and_by_lookup("/a/{x}/b/{y}", "/a/1/b/t%20o");
        assert_eq!(pairs[1], ("y".into(), "t o".into()));
        assert!(matches!(params.values, Values::Mixed(_)));
        assert_eq!(params.get("/a/1/b/t%20o", "x"), Some("1"));
        assert_eq!(params.get("/a/1/b/t%20o", "z"), None);
    }

    #[test]
    fn params_that_share_a_segment_are_left_to_matchit() {
        assert!(RouteParams::of("/files/{name}.json").unwrap().segments.is_none());
        assert!(RouteParams::of("/{{x}}/{id}").unwrap().segments.is_none());
        assert!(RouteParams::of("/a/{id}").unwrap().segments.is_some());
        assert!(RouteParams::of("/a").is_none());
        let route = RouteParams::of("/files/{name}.json").unwrap();
        let path = "/files/report.json";
        let params = PathParams::from_match(&route, path, || [("name", &path[7..13])].into_iter());
        assert_eq!(params.get(path, "name"), Some("report"));
    }

    #[test]
    fn detached_inline_values_survive_a_new_path() {
        let route = RouteParams::of("/users/{id}/posts/{post_id}").unwrap();
        let path = "/users/42/posts/7";
        let mut params = PathParams::from_match(&route, path, std::iter::empty);
        params.detach(path);
        assert_eq!(params.iter("/x").collect::<Vec<_>>(), [("id", "42"), ("post_id", "7")]);
    }
}
