//! `html!`: a template split into statics and dynamics at compile time.
//!
//! The template is a string literal. `{expr}` shows a value (escaped, unless it is already a
//! rendered part); `{#if cond}…{:else if cond}…{:else}…{/if}` and `{#for pat in expr}…{/for}`
//! are blocks; `{{` and `}}` are literal braces. Each template and block body becomes a
//! `static` array of strings, so a render allocates only its dynamics, and the client is sent
//! the statics once. Tags must balance in every template and block body; a mismatch is a
//! compile error.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::Parser as _;
use syn::{Expr, LitStr, Pat, Token};

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let lit: LitStr = syn::parse2(input)?;
    let source = lit.value();
    let span = lit.span();
    let mut parser = Parser { src: &source, pos: 0, span };
    let body = parser.nodes(&[])?;
    if parser.pos < source.len() {
        return Err(parser.error(&format!("unexpected `{}`", parser.rest_head())));
    }
    template(&body, span)
}

/// A piece of a template.
enum Node {
    Text(String),
    Expr(Box<Expr>),
    If { branches: Vec<(Expr, Vec<Node>)>, otherwise: Vec<Node> },
    Match { scrutinee: Box<Expr>, arms: Vec<(Pat, Vec<Node>)> },
    For { pat: Box<Pat>, iter: Box<Expr>, body: Vec<Node> },
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    span: Span,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> syn::Error {
        syn::Error::new(
            self.span,
            format!("html!: {message} (at byte {} of the template)", self.pos),
        )
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn rest_head(&self) -> String {
        self.rest().chars().take(20).collect()
    }

    /// Nodes up to (not including) a tag in `stop` (`{/if}`, `{:else`…) or the end.
    fn nodes(&mut self, stop: &[&str]) -> syn::Result<Vec<Node>> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        while self.pos < self.src.len() {
            let rest = self.rest();
            if stop.iter().any(|s| rest.starts_with(s)) {
                break;
            }
            if rest.starts_with("{{") {
                text.push('{');
                self.pos += 2;
            } else if rest.starts_with("}}") {
                text.push('}');
                self.pos += 2;
            } else if rest.starts_with('}') {
                return Err(self.error("a `}` with no `{`: write `}}` for a literal brace"));
            } else if rest.starts_with("{#if ") {
                flush(&mut nodes, &mut text);
                nodes.push(self.if_block()?);
            } else if rest.starts_with("{#for ") {
                flush(&mut nodes, &mut text);
                nodes.push(self.for_block()?);
            } else if rest.starts_with("{#match ") {
                flush(&mut nodes, &mut text);
                nodes.push(self.match_block()?);
            } else if rest.starts_with("{:") || rest.starts_with("{/") || rest.starts_with("{#") {
                // A block's own tags end its body: they are handled by the block.
                return Err(self.error(&format!("unexpected `{}`", self.rest_head())));
            } else if rest.starts_with('{') {
                flush(&mut nodes, &mut text);
                let inner = self.braced()?;
                nodes.push(Node::Expr(Box::new(self.expr(&inner)?)));
            } else {
                let c = rest.chars().next().expect("not at the end");
                text.push(c);
                self.pos += c.len_utf8();
            }
        }
        flush(&mut nodes, &mut text);
        Ok(nodes)
    }

    /// The text inside the `{…}` at the cursor, braces balanced and string literals skipped;
    /// the cursor ends after the closing brace.
    fn braced(&mut self) -> syn::Result<String> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut depth = 0usize;
        let mut i = self.pos;
        let mut in_str = false;
        while i < bytes.len() {
            let b = bytes[i];
            if in_str {
                match b {
                    b'\\' => i += 1,
                    b'"' => in_str = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => in_str = true,
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            self.pos = i + 1;
                            return Ok(self.src[start + 1..i].to_owned());
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        Err(self.error("a `{` that is never closed"))
    }

    fn expr(&self, code: &str) -> syn::Result<Expr> {
        if code.trim().is_empty() {
            return Err(self.error("an empty `{}`: write `{{}}` for literal braces"));
        }
        syn::parse_str::<Expr>(code)
            .map_err(|err| self.error(&format!("`{}` is not an expression: {err}", code.trim())))
    }

    fn if_block(&mut self) -> syn::Result<Node> {
        let head = self.braced()?;
        let cond = self.expr(head.trim_start_matches("#if "))?;
        let mut branches = vec![(cond, self.nodes(&["{:else", "{/if}"])?)];
        let mut otherwise = Vec::new();
        loop {
            let rest = self.rest();
            if rest.starts_with("{/if}") {
                self.pos += "{/if}".len();
                break;
            } else if rest.starts_with("{:else if ") {
                let head = self.braced()?;
                let cond = self.expr(head.trim_start_matches(":else if "))?;
                branches.push((cond, self.nodes(&["{:else", "{/if}"])?));
            } else if rest.starts_with("{:else}") {
                self.pos += "{:else}".len();
                otherwise = self.nodes(&["{/if}", "{:else"])?;
                if !self.rest().starts_with("{/if}") {
                    return Err(self.error("`{:else}` must be the last branch, closed by `{/if}`"));
                }
            } else {
                return Err(self.error("an `{#if}` is never closed with `{/if}`"));
            }
        }
        Ok(Node::If { branches, otherwise })
    }

    fn match_block(&mut self) -> syn::Result<Node> {
        let head = self.braced()?;
        let scrutinee = self.expr(head.trim_start_matches("#match "))?;
        // Only whitespace may stand between `{#match}` and its first `{:case}`.
        let lead = self.rest().len() - self.rest().trim_start().len();
        self.pos += lead;
        let mut arms = Vec::new();
        while self.rest().starts_with("{:case ") {
            let head = self.braced()?;
            let pattern = head.trim_start_matches(":case ");
            let pat = Pat::parse_multi_with_leading_vert.parse_str(pattern).map_err(|err| {
                self.error(&format!("`{{:case {pattern}}}`: not a pattern: {err}"))
            })?;
            let body = self.nodes(&["{:case ", "{/match}"])?;
            arms.push((pat, body));
        }
        if arms.is_empty() {
            return Err(self.error("a `{#match}` needs `{:case pattern}` arms"));
        }
        if !self.rest().starts_with("{/match}") {
            return Err(self.error("a `{#match}` is never closed with `{/match}`"));
        }
        self.pos += "{/match}".len();
        Ok(Node::Match { scrutinee: Box::new(scrutinee), arms })
    }

    fn for_block(&mut self) -> syn::Result<Node> {
        let head = self.braced()?;
        let head = head.trim_start_matches("#for ");
        let parse = |input: syn::parse::ParseStream<'_>| {
            let pat = Pat::parse_single(input)?;
            input.parse::<Token![in]>()?;
            let iter: Expr = input.parse()?;
            Ok((pat, iter))
        };
        let (pat, iter) = parse.parse_str(head).map_err(|err| {
            self.error(&format!("`{{#for {head}}}`: expected `pattern in expression`: {err}"))
        })?;
        let body = self.nodes(&["{/for}"])?;
        if !self.rest().starts_with("{/for}") {
            return Err(self.error("a `{#for}` is never closed with `{/for}`"));
        }
        self.pos += "{/for}".len();
        Ok(Node::For { pat: Box::new(pat), iter: Box::new(iter), body })
    }
}

fn flush(nodes: &mut Vec<Node>, text: &mut String) {
    if !text.is_empty() {
        nodes.push(Node::Text(std::mem::take(text)));
    }
}

/// The statics of `nodes` and the expressions of their dynamics.
fn split(nodes: &[Node], span: Span) -> syn::Result<(Vec<String>, Vec<TokenStream>)> {
    let mut statics = vec![String::new()];
    let mut dynamics = Vec::new();
    for node in nodes {
        match node {
            Node::Text(text) => statics.last_mut().expect("one at least").push_str(text),
            Node::Expr(expr) => {
                dynamics.push(quote! { ::fawkes::live::ToDynamic::to_dynamic(&(#expr)) });
                statics.push(String::new());
            }
            Node::If { branches, otherwise } => {
                let mut arms = Vec::new();
                for (cond, body) in branches {
                    let body = template(body, span)?;
                    arms.push(quote! { if #cond { #body } });
                }
                let otherwise = template(otherwise, span)?;
                dynamics.push(quote! {
                    ::fawkes::live::Dynamic::Nested(#(#arms else)* { #otherwise })
                });
                statics.push(String::new());
            }
            Node::Match { scrutinee, arms } => {
                let mut cases = Vec::new();
                for (pat, body) in arms {
                    let body = template(body, span)?;
                    cases.push(quote! { #pat => #body, });
                }
                dynamics.push(quote! {
                    ::fawkes::live::Dynamic::Nested(match #scrutinee { #(#cases)* })
                });
                statics.push(String::new());
            }
            Node::For { pat, iter, body } => {
                let (body_statics, body_dynamics) = split(body, span)?;
                check_tags(&body_statics, span, "the `{#for}` body")?;
                let count = body_statics.len();
                dynamics.push(quote! {
                    ::fawkes::live::Dynamic::List({
                        static STATICS: [&str; #count] = [#(#body_statics),*];
                        ::fawkes::live::List::new(
                            &STATICS,
                            ::std::iter::IntoIterator::into_iter(#iter)
                                .map(|#pat| ::std::vec![#(#body_dynamics),*])
                                .collect(),
                        )
                    })
                });
                statics.push(String::new());
            }
        }
    }
    Ok((statics, dynamics))
}

/// A `Rendered` of `nodes`.
fn template(nodes: &[Node], span: Span) -> syn::Result<TokenStream> {
    let (statics, dynamics) = split(nodes, span)?;
    check_tags(&statics, span, "the template")?;
    let count = statics.len();
    Ok(quote! {
        {
            static STATICS: [&str; #count] = [#(#statics),*];
            ::fawkes::live::Rendered::new(&STATICS, ::std::vec![#(#dynamics),*])
        }
    })
}

/// Elements that have no end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "!doctype",
];

/// Checks that the tags of a template (its statics; dynamics are whole parts) balance.
fn check_tags(statics: &[String], span: Span, what: &str) -> syn::Result<()> {
    // A dynamic inside a tag (an attribute value) is joined over; one between tags is a part.
    let html = statics.join("\u{0}");
    let mut open: Vec<String> = Vec::new();
    let mut rest = html.as_str();
    while let Some(start) = rest.find('<') {
        rest = &rest[start..];
        if let Some(after) = rest.strip_prefix("<!--") {
            let Some(end) = after.find("-->") else {
                return Err(syn::Error::new(span, format!("html!: an unclosed comment in {what}")));
            };
            rest = &after[end + 3..];
            continue;
        }
        let Some(end) = rest.find('>') else {
            return Err(syn::Error::new(span, format!("html!: an unclosed `<` in {what}")));
        };
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/' && *c != '>')
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '!') {
            // `a < b` in text, not a tag.
            continue;
        }
        if closing {
            match open.pop() {
                Some(top) if top == name => {}
                Some(top) => {
                    return Err(syn::Error::new(
                        span,
                        format!("html!: `</{name}>` closes `<{top}>` in {what}"),
                    ));
                }
                None => {
                    return Err(syn::Error::new(
                        span,
                        format!("html!: `</{name}>` closes nothing in {what}"),
                    ));
                }
            }
        } else if !tag.ends_with('/') && !VOID.contains(&name.as_str()) {
            if name == "script" || name == "style" {
                // Their content is not HTML: skip to the end tag.
                let end_tag = format!("</{name}");
                let Some(end) = rest.to_ascii_lowercase().find(&end_tag) else {
                    return Err(syn::Error::new(
                        span,
                        format!("html!: `<{name}>` is never closed in {what}"),
                    ));
                };
                rest = &rest[end..];
            }
            open.push(name);
        }
    }
    match open.pop() {
        Some(top) => {
            Err(syn::Error::new(span, format!("html!: `<{top}>` is never closed in {what}")))
        }
        None => Ok(()),
    }
}
