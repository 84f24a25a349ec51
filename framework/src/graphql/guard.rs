//! What a document must pass before async-graphql runs it, on every transport.
//!
//! async-graphql's parser recurses once per bracket before its own depth check, and its
//! validation re-walks every fragment spread without remembering what it found: a document
//! nested deep enough overflows a thread's stack, which ends the process, and a few hundred
//! bytes of fragments that each spread the next twice cost minutes of CPU. So, before the
//! schema sees a document:
//!
//! - its brackets (`{`, `(`, `[`, counted everywhere, comments and strings included, so no
//!   lexical trick hides one) nest [`MAX_NESTING`] deep at most;
//! - it is parsed once (the executor reuses the parse);
//! - it defines [`MAX_FRAGMENTS`] fragments at most, none spreading itself through others;
//! - every operation and fragment selects [`MAX_SELECTIONS`] fields at most with its
//!   fragments expanded, counted once per fragment so the count itself is cheap;
//! - a subscription selects exactly one root field, as the spec has it: each root field
//!   would be a subscription of its own, and aliases would multiply one into thousands.

use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};

/// How deeply brackets (`{`, `(`, `[`) may nest in a document. Real queries nest a few
/// levels; the schema's `limit_depth` is the limit on what a query may ask.
pub const MAX_NESTING: usize = 128;

/// The most fragments a document may define.
pub const MAX_FRAGMENTS: usize = 100;

/// The most fields an operation (or a fragment) may select, its fragments expanded.
pub const MAX_SELECTIONS: usize = 5_000;

/// How deeply brackets nest in `document`, stopping at [`MAX_NESTING`] + 1. Every bracket
/// counts, in comments and strings too: a count that skipped them would have to agree with
/// the parser on where each ends, and one disagreement (a comment ending at `\r`) would let
/// the parser recurse unbounded.
pub(crate) fn nesting(document: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for byte in document.bytes() {
        match byte {
            b'{' | b'(' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > MAX_NESTING {
                    return deepest;
                }
            }
            b'}' | b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Checks `request` as the module says, parsing it once; the type of the operation it runs
/// (`None` when it does not parse or names no operation: the executor reports that).
///
/// # Errors
///
/// What is wrong with the document, for the client.
pub(crate) fn admit(request: &mut async_graphql::Request) -> Result<Option<OperationType>, String> {
    if nesting(&request.query) > MAX_NESTING {
        return Err(format!("the document nests brackets more than {MAX_NESTING} deep"));
    }
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else { return Ok(None) };
    if document.fragments.len() > MAX_FRAGMENTS {
        return Err(format!("the document defines more than {MAX_FRAGMENTS} fragments"));
    }
    let sizes = fragment_sizes(document)?;
    let too_many = || format!("the document selects more than {MAX_SELECTIONS} fields");
    if sizes.values().any(|&size| size > MAX_SELECTIONS) {
        return Err(too_many());
    }
    let mut chosen = None;
    for (operation_name, operation) in document.operations.iter() {
        let operation = &operation.node;
        if selections(&operation.selection_set.node, &sizes) > MAX_SELECTIONS {
            return Err(too_many());
        }
        if operation.ty == OperationType::Subscription
            && root_fields(&operation.selection_set.node, document, 0) != 1
        {
            return Err("a subscription selects exactly one root field".to_owned());
        }
        let named = operation_name.map(|n| n.as_str());
        let picked = match (&name, &document.operations) {
            (Some(name), _) => named == Some(name.as_str()),
            (None, DocumentOperations::Single(_)) => true,
            (None, DocumentOperations::Multiple(operations)) => operations.len() == 1,
        };
        if picked {
            chosen = Some(operation.ty);
        }
    }
    Ok(chosen)
}

/// The fields a selection set selects directly, and the fragments it spreads (at any depth
/// of its own nesting, which brackets bound), each as often as it is spread.
fn local(set: &SelectionSet, fields: &mut usize, spreads: &mut Vec<String>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                *fields += 1;
                local(&field.node.selection_set.node, fields, spreads);
            }
            Selection::InlineFragment(fragment) => {
                local(&fragment.node.selection_set.node, fields, spreads);
            }
            Selection::FragmentSpread(spread) => {
                spreads.push(spread.node.fragment_name.node.to_string());
            }
        }
    }
}

/// Every fragment's size, its spreads expanded: each computed once, in an order where a
/// fragment comes after those it spreads, with no recursion through fragments.
///
/// # Errors
///
/// When fragments spread each other in a cycle.
fn fragment_sizes(document: &ExecutableDocument) -> Result<HashMap<String, usize>, String> {
    let mut local_of: HashMap<String, (usize, Vec<String>)> = HashMap::new();
    for (name, fragment) in &document.fragments {
        let (mut fields, mut spreads) = (0, Vec::new());
        local(&fragment.node.selection_set.node, &mut fields, &mut spreads);
        // Spreads of fragments the document does not define are the executor's to report.
        spreads.retain(|target| document.fragments.keys().any(|n| n.as_str() == target));
        local_of.insert(name.to_string(), (fields, spreads));
    }
    // Kahn's order over "spreads": a fragment is ready once every fragment it spreads is.
    let mut waiting: HashMap<&str, usize> = HashMap::new();
    let mut spread_by: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, (_, spreads)) in &local_of {
        waiting.insert(name, spreads.len());
        for target in spreads {
            spread_by.entry(target.as_str()).or_default().push(name);
        }
    }
    let mut ready: Vec<&str> =
        waiting.iter().filter(|(_, &n)| n == 0).map(|(&name, _)| name).collect();
    let mut sizes: HashMap<String, usize> = HashMap::new();
    while let Some(name) = ready.pop() {
        let (fields, spreads) = &local_of[name];
        let size = spreads
            .iter()
            .fold(*fields, |total, target| total.saturating_add(sizes[target.as_str()]));
        sizes.insert(name.to_owned(), size);
        for &by in spread_by.get(name).map(Vec::as_slice).unwrap_or_default() {
            let left = waiting.get_mut(by).expect("every fragment waits");
            *left -= 1;
            if *left == 0 {
                ready.push(by);
            }
        }
    }
    if sizes.len() < local_of.len() {
        return Err("the document's fragments spread each other in a cycle".to_owned());
    }
    Ok(sizes)
}

/// The fields `set` selects, its fragments expanded (by their sizes).
fn selections(set: &SelectionSet, sizes: &HashMap<String, usize>) -> usize {
    let (mut fields, mut spreads) = (0, Vec::new());
    local(set, &mut fields, &mut spreads);
    spreads.iter().fold(fields, |total, target| {
        total.saturating_add(sizes.get(target.as_str()).copied().unwrap_or(0))
    })
}

/// The fields `set` selects at its own level, through inline fragments and spreads; `depth`
/// counts the fragments entered (fewer than [`MAX_FRAGMENTS`], as they form no cycle).
fn root_fields(set: &SelectionSet, document: &ExecutableDocument, depth: usize) -> usize {
    if depth > MAX_FRAGMENTS {
        return usize::MAX;
    }
    set.items.iter().fold(0usize, |total, item| {
        let more = match &item.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(fragment) => {
                root_fields(&fragment.node.selection_set.node, document, depth + 1)
            }
            Selection::FragmentSpread(spread) => document
                .fragments
                .iter()
                .find(|(name, _)| name.as_str() == spread.node.fragment_name.node.as_str())
                .map_or(0, |(_, fragment)| {
                    root_fields(&fragment.node.selection_set.node, document, depth + 1)
                }),
        };
        total.saturating_add(more)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str) -> Result<Option<OperationType>, String> {
        admit(&mut async_graphql::Request::new(query))
    }

    #[test]
    fn brackets_count_everywhere_so_no_comment_or_string_hides_them() {
        let deep = "[".repeat(MAX_NESTING + 1);
        for query in [
            format!("{{ a(x: {deep}) }}"),
            format!("#\r{{ a(x: {deep}) }}"),
            format!("# a comment\n{{ a(x: {deep}) }}"),
            format!("{{ a(x: \"{deep}\") }}"),
            format!("{{ a(x: \"\"\"{deep}\"\"\") }}"),
        ] {
            assert!(check(&query).unwrap_err().contains("nests"), "{query:?}");
        }
        assert_eq!(nesting("{ a { b(x: [1, [2]]) } }"), 5);
    }

    #[test]
    fn fragments_are_bounded_in_number_size_and_shape() {
        // A chain of unused fragments, each spreading the next: too many.
        let chain: String = (0..=MAX_FRAGMENTS)
            .map(|i| format!("fragment f{i} on Query {{ ...f{} }} ", i + 1))
            .collect();
        assert!(check(&format!("{{ a }} {chain}")).unwrap_err().contains("fragments"));
        // A bomb: each fragment spreads the next twice, 2^30 fields from 30 fragments.
        let mut bomb: String = (0..30)
            .map(|i| format!("fragment f{i} on Query {{ ...f{n} ...f{n} }} ", n = i + 1))
            .collect();
        bomb.push_str("fragment f30 on Query { a }");
        let refused = check(&format!("{{ ...f0 }} {bomb}")).unwrap_err();
        assert!(refused.contains("selects more than"), "{refused}");
        // Even unused, it would cost the validation the same.
        assert!(check(&format!("{{ a }} {bomb}")).is_err());
        // A cycle.
        let cycle = "{ ...a } fragment a on Query { ...b } fragment b on Query { x ...a }";
        assert!(check(cycle).unwrap_err().contains("cycle"));
        // What real clients send passes, and says what it runs.
        let fine = "query Q { user { ...u friends { ...u } } } fragment u on User { id name }";
        assert_eq!(check(fine), Ok(Some(OperationType::Query)));
        assert_eq!(check("mutation { a }"), Ok(Some(OperationType::Mutation)));
        assert_eq!(check("{ a"), Ok(None), "a parse error is the executor's to report");
    }

    #[test]
    fn a_subscription_has_one_root_field() {
        assert_eq!(check("subscription { a }"), Ok(Some(OperationType::Subscription)));
        assert_eq!(check("subscription { ... on S { a } }"), Ok(Some(OperationType::Subscription)));
        for query in [
            "subscription { a b }",
            "subscription { a0: a a1: a }",
            "subscription { ...f } fragment f on S { a b }",
        ] {
            assert!(check(query).unwrap_err().contains("one root field"), "{query}");
        }
    }
}
