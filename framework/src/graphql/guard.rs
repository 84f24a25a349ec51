//! What a document must pass before async-graphql runs it, on every transport.
//!
//! async-graphql's parser recurses once per bracket before its own depth check, and its
//! validation re-walks every fragment spread without remembering what it found: a document
//! nested deep enough overflows a thread's stack, which ends the process, and a few hundred
//! bytes of fragments that each spread the next twice cost minutes of CPU. So, before the
//! schema sees a document:
//!
//! - its brackets (`{`, `(`, `[`), read with the parser's own lexical rules, nest
//!   [`MAX_NESTING`] deep at most, and whatever could make the two readings differ is refused;
//! - it is parsed once (the executor reuses the parse);
//! - it defines [`MAX_FRAGMENTS`] fragments at most, none spreading itself through others;
//! - it makes [`MAX_SELECTIONS`] selections at most over all its operations and fragments,
//!   each fragment expanded where it is spread, counted once per fragment so the count itself
//!   is cheap; a spread of a fragment it does not define is refused;
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

/// The most selections (fields, inline fragments, spreads, with their arguments and
/// directives) a document may make, over all its operations and fragments, each fragment
/// expanded where it is spread.
pub const MAX_SELECTIONS: usize = 5_000;

/// How deeply brackets nest in `document`, read with GraphQL's lexical rules exactly as the
/// parser reads them (async-graphql's grammar): a `#` comment ends at `\n` or `\r`; a string
/// ends at its unescaped `"` and may hold no line break; a block string ends at `"""` not
/// escaped as `\"""`. Brackets inside those do not count, and what could make this reading
/// part from the parser's is refused instead: a string left open, a line break or an unknown
/// escape in a string, a closing bracket that does not match. The parser fails on each of
/// them too, no deeper than where this stops.
///
/// # Errors
///
/// What is wrong, for the client: nested too deep, or not lexically GraphQL.
pub(crate) fn nesting(document: &str) -> Result<usize, String> {
    let bytes = document.as_bytes();
    let mut open: Vec<u8> = Vec::new();
    let mut deepest = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'(' | b'[' => {
                open.push(bytes[i]);
                deepest = deepest.max(open.len());
                if deepest > MAX_NESTING {
                    return Err(format!(
                        "the document nests brackets more than {MAX_NESTING} deep"
                    ));
                }
            }
            close @ (b'}' | b')' | b']') => {
                let opener = match close {
                    b'}' => b'{',
                    b')' => b'(',
                    _ => b'[',
                };
                if open.pop() != Some(opener) {
                    return Err(format!(
                        "the document closes a `{}` it did not open",
                        close as char
                    ));
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                loop {
                    if i >= bytes.len() {
                        return Err("the document leaves a block string open".to_owned());
                    }
                    if bytes[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                    } else if bytes[i..].starts_with(b"\"\"\"") {
                        i += 3;
                        break;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None | Some(b'\n' | b'\r') => {
                            return Err("the document has a string that does not end on its line"
                                .to_owned());
                        }
                        Some(b'"') => break,
                        Some(b'\\') => match bytes.get(i + 1) {
                            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                            Some(b'u') => i += 2,
                            _ => {
                                return Err(
                                    "the document has an unknown escape in a string".to_owned()
                                )
                            }
                        },
                        Some(_) => i += 1,
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(deepest)
}

/// What [`admit`] found of a request it let through.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admitted {
    /// The type of the operation it runs: `None` when it does not parse or names no
    /// operation (the executor reports that).
    pub(crate) kind: Option<OperationType>,
    /// The selections of the whole document, fragments expanded where spread.
    pub(crate) selections: usize,
}

/// Checks `request` as the module says, parsing it once, and drops the variables the chosen
/// operation does not declare (nothing reads them, and a subscription would keep them).
///
/// # Errors
///
/// What is wrong with the document, for the client.
pub(crate) fn admit(request: &mut async_graphql::Request) -> Result<Admitted, String> {
    nesting(&request.query)?;
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return Ok(Admitted { kind: None, selections: 0 });
    };
    if document.fragments.len() > MAX_FRAGMENTS {
        return Err(format!("the document defines more than {MAX_FRAGMENTS} fragments"));
    }
    let sizes = fragment_sizes(document)?;
    // The whole document counts, every operation and fragment: async-graphql validates all
    // of them, whichever one runs.
    let too_many = || format!("the document selects more than {MAX_SELECTIONS} fields");
    let mut total = sizes.values().fold(0usize, |total, &size| total.saturating_add(size));
    for (_, operation) in document.operations.iter() {
        let size = selections(&operation.node.selection_set.node, &sizes)?;
        total = total.saturating_add(size);
    }
    if total > MAX_SELECTIONS {
        return Err(too_many());
    }
    let mut chosen = None;
    let mut declared = Vec::new();
    for (operation_name, operation) in document.operations.iter() {
        let operation = &operation.node;
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
            declared = operation
                .variable_definitions
                .iter()
                .map(|definition| definition.node.name.node.clone())
                .collect();
        }
    }
    if chosen.is_some() {
        request.variables.retain(|name, _| declared.contains(name));
    }
    Ok(Admitted { kind: chosen, selections: total })
}

/// The selections a selection set makes itself (fields, inline fragments and spreads, each
/// counting one: a fragment of nothing but spreads costs a walk all the same), and the
/// fragments it spreads (at any depth of its own nesting, which brackets bound), each as often
/// as it is spread.
fn local(set: &SelectionSet, count: &mut usize, spreads: &mut Vec<String>) {
    for item in &set.items {
        *count += 1;
        match &item.node {
            Selection::Field(field) => {
                // Arguments and directives count too: async-graphql compares the arguments of
                // two fields of one name pairwise, so thousands of them on a field cost
                // their square.
                let field = &field.node;
                *count += field.arguments.len() + directives(&field.directives);
                local(&field.selection_set.node, count, spreads);
            }
            Selection::InlineFragment(fragment) => {
                *count += directives(&fragment.node.directives);
                local(&fragment.node.selection_set.node, count, spreads);
            }
            Selection::FragmentSpread(spread) => {
                *count += directives(&spread.node.directives);
                spreads.push(spread.node.fragment_name.node.to_string());
            }
        }
    }
}

/// What directives count: one each, and one for each of their arguments.
fn directives(
    directives: &[async_graphql::Positioned<async_graphql::parser::types::Directive>],
) -> usize {
    directives.iter().map(|d| 1 + d.node.arguments.len()).sum()
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
        let (mut count, mut spreads) = (0, Vec::new());
        local(&fragment.node.selection_set.node, &mut count, &mut spreads);
        if let Some(unknown) = spreads.iter().find(|t| !document.fragments.contains_key(t.as_str()))
        {
            return Err(format!("the document spreads `{unknown}`, which it does not define"));
        }
        local_of.insert(name.to_string(), (count, spreads));
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

/// The selections `set` makes, its fragments expanded (by their sizes).
///
/// # Errors
///
/// When it spreads a fragment the document does not define.
fn selections(set: &SelectionSet, sizes: &HashMap<String, usize>) -> Result<usize, String> {
    let (mut count, mut spreads) = (0, Vec::new());
    local(set, &mut count, &mut spreads);
    spreads.iter().try_fold(count, |total, target| match sizes.get(target.as_str()) {
        Some(size) => Ok(total.saturating_add(*size)),
        None => Err(format!("the document spreads `{target}`, which it does not define")),
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
            // Every spread is of a defined fragment, and the document's selections with its
            // fragments expanded are bounded already: this walk visits no more than that.
            Selection::FragmentSpread(spread) => {
                document.fragments.get(&spread.node.fragment_name.node).map_or(0, |fragment| {
                    root_fields(&fragment.node.selection_set.node, document, depth + 1)
                })
            }
        };
        total.saturating_add(more)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str) -> Result<Option<OperationType>, String> {
        admit(&mut async_graphql::Request::new(query)).map(|admitted| admitted.kind)
    }

    /// The chosen operation keeps the variables it declares; the rest are dropped.
    #[test]
    fn undeclared_variables_are_dropped() {
        let vars = serde_json::json!({"a": 1, "pad": [0, 0, 0], "b": "x"});
        let mut request = async_graphql::Request::new(
            "query Q($a: Int) { x(a: $a) } query R($b: String) { y(b: $b) }",
        )
        .variables(async_graphql::Variables::from_json(vars.clone()))
        .operation_name("Q");
        let admitted = admit(&mut request).unwrap();
        assert_eq!(admitted.kind, Some(OperationType::Query));
        // Each field and each argument.
        assert_eq!(admitted.selections, 4);
        let kept: Vec<_> = request.variables.keys().map(|k| k.as_str().to_owned()).collect();
        assert_eq!(kept, ["a"]);
        // An operation the document does not have: the executor says so, nothing is dropped.
        let mut request = async_graphql::Request::new("query Q { x }")
            .variables(async_graphql::Variables::from_json(vars))
            .operation_name("Nope");
        assert_eq!(admit(&mut request).unwrap().kind, None);
        assert_eq!(request.variables.len(), 3);
    }

    #[test]
    fn brackets_are_read_as_the_parser_reads_them() {
        let deep = "[".repeat(MAX_NESTING + 1);
        // Comments end at `\n` and at `\r`, as the grammar has it.
        for query in [
            format!("{{ a(x: {deep}) }}"),
            format!("#\r{{ a(x: {deep}) }}"),
            format!("# a comment\n{{ a(x: {deep}) }}"),
            format!("# a comment\r\n{{ a(x: {deep}) }}"),
        ] {
            assert!(check(&query).unwrap_err().contains("nests"), "{query:?}");
        }
        // Closing brackets in strings and comments do not cancel real ones.
        let hidden: String =
            (0..30).map(|_| format!("{}\"{}\"", "[".repeat(100), "]".repeat(100))).collect();
        assert!(check(&format!("{{ a(x: {hidden}) }}")).unwrap_err().contains("nests"));
        let commented: String =
            (0..30).map(|_| format!("{}#{}\n", "[".repeat(100), "]".repeat(100))).collect();
        assert!(check(&format!("{{ a(x: {commented}) }}")).unwrap_err().contains("nests"));
        let blocks: String = (0..30)
            .map(|_| format!("{}\"\"\"{}\"\"\"", "[".repeat(100), "]".repeat(100)))
            .collect();
        assert!(check(&format!("{{ a(x: {blocks}) }}")).unwrap_err().contains("nests"));
        // A closer that does not match its opener, a string left open or broken by a line, an
        // unknown escape: the parser fails on them too, and the readings could part there.
        for query in [
            format!("{{ a(x: {}) }}", "[(".repeat(10)),
            "{ a(x: \"open) }".to_owned(),
            "{ a(x: \"a\nb\") }".to_owned(),
            "{ a(x: \"a\\qb\") }".to_owned(),
            "{ a(x: \"\"\"open) }".to_owned(),
        ] {
            assert!(check(&query).is_err(), "{query:?}");
        }
        // Brackets in strings and comments are text.
        let text = format!("{{ a(x: \"{deep}\", y: \"\"\"{deep}\\\"\"\"\"\"\") # {deep}\n }}");
        assert!(check(&text).is_ok(), "{text:?}");
        assert_eq!(nesting("{ a { b(x: [1, [2]]) } }"), Ok(5));
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
        // Fragments of nothing but spreads (of a fragment nobody defines) cost a walk too.
        let mut empty: String = (0..30)
            .map(|i| format!("fragment f{i} on Query {{ ...f{n} ...f{n} }} ", n = i + 1))
            .collect();
        empty.push_str("fragment f30 on Query { ...nope }");
        assert!(check(&format!("{{ ...f0 }} {empty}")).is_err());
        assert!(check("{ ...nope }").unwrap_err().contains("does not define"));
        let subscription: String = (0..60)
            .map(|i| format!("fragment s{i} on S {{ ...s{n} ...s{n} }} ", n = i + 1))
            .collect();
        assert!(check(&format!(
            "subscription {{ ...s0 }} {subscription} fragment s60 on S {{ a }}"
        ))
        .is_err());
        // Thousands of arguments on two fields of one name (compared pairwise by validation).
        let arguments: String = (0..3000).map(|i| format!("a{i}: 1 ")).collect();
        let pair = format!("{{ x: f({arguments}) x: f({arguments}) }}");
        assert!(check(&pair).unwrap_err().contains("selects more than"));
        // Many operations sharing one large fragment: the document counts as a whole.
        let fields: String = (0..50).map(|i| format!("a{i}: a ")).collect();
        let operations: String = (0..200).map(|i| format!("query o{i} {{ ...big }} ")).collect();
        let shared = format!("{operations} fragment big on Query {{ {fields} }}");
        assert!(check(&shared).unwrap_err().contains("selects more than"));
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
