//! The syntax of `router!`.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;
use syn::{braced, bracketed, Attribute, Expr, Ident, LitStr, Path, Token, Visibility};

mod kw {
    syn::custom_keyword!(pipeline);
    syn::custom_keyword!(plug);
    syn::custom_keyword!(scope);
    syn::custom_keyword!(pipe_through);
    syn::custom_keyword!(get);
    syn::custom_keyword!(post);
    syn::custom_keyword!(put);
    syn::custom_keyword!(patch);
    syn::custom_keyword!(delete);
    syn::custom_keyword!(options);
    syn::custom_keyword!(head);
    syn::custom_keyword!(resources);
    syn::custom_keyword!(forward);
    syn::custom_keyword!(socket);
    syn::custom_keyword!(state);
    syn::custom_keyword!(live);
}

/// The keywords that start an item (`match` is a Rust keyword, never taken for a name).
const ITEM_KEYWORDS: [&str; 15] = [
    "state",
    "pipeline",
    "scope",
    "pipe_through",
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "options",
    "head",
    "resources",
    "forward",
    "socket",
    "live",
];

pub(crate) struct RouterInput {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) name: Ident,
    /// `state T;`: the type `new` takes and actions read as `State<T>`.
    pub(crate) state: Option<syn::Type>,
    pub(crate) items: Vec<Item>,
}

pub(crate) enum Item {
    Pipeline(PipelineDef),
    Scope(ScopeDef),
    PipeThrough(Vec<Ident>),
    Route(RouteDef),
    Resources(ResourcesDef),
    Forward(ForwardDef),
    Socket(ForwardDef),
}

pub(crate) struct PipelineDef {
    pub(crate) name: Ident,
    pub(crate) plugs: Vec<Expr>,
}

pub(crate) struct ScopeDef {
    pub(crate) path: LitStr,
    pub(crate) items: Vec<Item>,
}

/// The method of a route; `Any` is `match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Head,
    Any,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Head => "HEAD",
            Self::Any => "*",
        }
    }

    pub(crate) fn variant(self) -> &'static str {
        match self {
            Self::Get => "Get",
            Self::Post => "Post",
            Self::Put => "Put",
            Self::Patch => "Patch",
            Self::Delete => "Delete",
            Self::Options => "Options",
            Self::Head => "Head",
            Self::Any => "Any",
        }
    }
}

pub(crate) struct RouteDef {
    pub(crate) method: Method,
    pub(crate) path: LitStr,
    pub(crate) action: Path,
    pub(crate) helper: Option<Ident>,
    /// `live "/path" => View;`: the view, which the route renders and the live socket serves.
    pub(crate) live: Option<syn::Type>,
}

pub(crate) struct ResourcesDef {
    pub(crate) path: LitStr,
    pub(crate) controller: Path,
    pub(crate) only: Option<Vec<Ident>>,
    pub(crate) except: Option<Vec<Ident>>,
    pub(crate) helper: Option<Ident>,
    pub(crate) nested: Vec<Item>,
}

pub(crate) struct ForwardDef {
    pub(crate) path: LitStr,
    pub(crate) service: Expr,
}

impl Parse for RouterInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let name: Ident = input.parse().map_err(|e| {
            syn::Error::new(e.span(), "expected the router's name first, as in `pub AppRouter;`")
        })?;
        // Without a name, the first item's keyword would be taken for it.
        if !input.peek(Token![;]) && ITEM_KEYWORDS.contains(&name.to_string().as_str()) {
            return Err(syn::Error::new(
                name.span(),
                "expected the router's name first, as in `pub AppRouter;`",
            ));
        }
        input.parse::<Token![;]>()?;
        let state = if input.peek(kw::state) {
            input.parse::<kw::state>()?;
            let ty: syn::Type = input.parse()?;
            input.parse::<Token![;]>()?;
            Some(ty)
        } else {
            None
        };
        let items = parse_items(input)?;
        Ok(Self { attrs, vis, name, state, items })
    }
}

fn parse_items(input: ParseStream<'_>) -> syn::Result<Vec<Item>> {
    let mut items = Vec::new();
    while !input.is_empty() {
        items.push(input.parse()?);
    }
    Ok(items)
}

fn parse_block(input: ParseStream<'_>) -> syn::Result<Vec<Item>> {
    let content;
    braced!(content in input);
    parse_items(&content)
}

fn parse_method(input: ParseStream<'_>) -> Option<Method> {
    let method = if input.peek(kw::get) {
        Method::Get
    } else if input.peek(kw::post) {
        Method::Post
    } else if input.peek(kw::put) {
        Method::Put
    } else if input.peek(kw::patch) {
        Method::Patch
    } else if input.peek(kw::delete) {
        Method::Delete
    } else if input.peek(kw::options) {
        Method::Options
    } else if input.peek(kw::head) {
        Method::Head
    } else if input.peek(Token![match]) {
        Method::Any
    } else {
        return None;
    };
    Some(method)
}

/// `, as: name` after a route or resources.
fn parse_helper(input: ParseStream<'_>) -> syn::Result<Ident> {
    input.parse::<Token![as]>()?;
    input.parse::<Token![:]>()?;
    input.parse()
}

impl Parse for Item {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(kw::state) {
            return Err(input.error(
                "`state T;` comes once, right after the router's name: `pub App; state AppState;`",
            ));
        }
        if input.peek(kw::pipeline) {
            input.parse::<kw::pipeline>()?;
            let name: Ident = input.parse()?;
            let content;
            braced!(content in input);
            let mut plugs = Vec::new();
            while !content.is_empty() {
                content.parse::<kw::plug>().map_err(|e| {
                    syn::Error::new(e.span(), "expected `plug <expr>;` inside a pipeline")
                })?;
                plugs.push(content.parse()?);
                content.parse::<Token![;]>()?;
            }
            return Ok(Item::Pipeline(PipelineDef { name, plugs }));
        }
        if input.peek(kw::scope) {
            input.parse::<kw::scope>()?;
            let path: LitStr = input.parse()?;
            let items = parse_block(input)?;
            return Ok(Item::Scope(ScopeDef { path, items }));
        }
        if input.peek(kw::pipe_through) {
            input.parse::<kw::pipe_through>()?;
            let names = if input.peek(syn::token::Bracket) {
                let content;
                bracketed!(content in input);
                Punctuated::<Ident, Token![,]>::parse_terminated(&content)?.into_iter().collect()
            } else {
                Punctuated::<Ident, Token![,]>::parse_separated_nonempty(input)?
                    .into_iter()
                    .collect()
            };
            input.parse::<Token![;]>()?;
            return Ok(Item::PipeThrough(names));
        }
        if input.peek(kw::forward) {
            input.parse::<kw::forward>()?;
            let path: LitStr = input.parse()?;
            input.parse::<Token![=>]>()?;
            let service: Expr = input.parse()?;
            input.parse::<Token![;]>()?;
            return Ok(Item::Forward(ForwardDef { path, service }));
        }
        if input.peek(kw::socket) {
            input.parse::<kw::socket>()?;
            let path: LitStr = input.parse()?;
            input.parse::<Token![=>]>()?;
            let service: Expr = input.parse()?;
            input.parse::<Token![;]>()?;
            return Ok(Item::Socket(ForwardDef { path, service }));
        }
        if input.peek(kw::resources) {
            input.parse::<kw::resources>()?;
            return parse_resources(input).map(Item::Resources);
        }
        if let Some(method) = parse_method(input) {
            let _: proc_macro2::TokenTree = input.parse()?;
            let path: LitStr = input.parse()?;
            input.parse::<Token![=>]>()?;
            let action: Path = input.parse()?;
            let mut helper = None;
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
                helper = Some(parse_helper(input)?);
            }
            input.parse::<Token![;]>()?;
            return Ok(Item::Route(RouteDef { method, path, action, helper, live: None }));
        }
        if input.peek(kw::live) {
            input.parse::<kw::live>()?;
            let path: LitStr = input.parse()?;
            input.parse::<Token![=>]>()?;
            let view: syn::Type = input.parse()?;
            let mut helper = None;
            if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
                helper = Some(parse_helper(input)?);
            }
            input.parse::<Token![;]>()?;
            // The route renders the page; its state is the router's, inferred.
            let action: Path = syn::parse_quote_spanned! {view.span()=>
                ::fawkes::live::page::<#view, _>
            };
            let helper = helper.or_else(|| live_helper(&view));
            return Ok(Item::Route(RouteDef {
                method: Method::Get,
                path,
                action,
                helper,
                live: Some(view),
            }));
        }
        Err(input.error(
            "expected `pipeline`, `scope`, `pipe_through`, `get`, `post`, `put`, `patch`, \
             `delete`, `options`, `head`, `match`, `resources`, `forward`, `socket` or `live`",
        ))
    }
}

/// A live route's helper name: the view's, in snake case (`CounterLive` → `counter_live`).
fn live_helper(view: &syn::Type) -> Option<Ident> {
    let syn::Type::Path(path) = view else { return None };
    let last = path.path.segments.last()?;
    Some(Ident::new(&super::snake_case(&last.ident.to_string()), last.ident.span()))
}

fn parse_resources(input: ParseStream<'_>) -> syn::Result<ResourcesDef> {
    let path: LitStr = input.parse()?;
    input.parse::<Token![=>]>()?;
    let controller: Path = input.parse()?;
    let (mut only, mut except, mut helper) = (None, None, None);
    while input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
        if input.peek(Token![as]) {
            let ident = input.fork().parse::<Token![as]>()?;
            if helper.is_some() {
                return Err(syn::Error::new(ident.span, "`as` specified more than once"));
            }
            helper = Some(parse_helper(input)?);
            continue;
        }
        let key: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let content;
        bracketed!(content in input);
        let actions: Vec<Ident> =
            Punctuated::<Ident, Token![,]>::parse_terminated(&content)?.into_iter().collect();
        let slot = match key.to_string().as_str() {
            "only" => &mut only,
            "except" => &mut except,
            _ => {
                return Err(syn::Error::new_spanned(
                    &key,
                    "unknown resources option: expected `only`, `except` or `as`",
                ))
            }
        };
        if slot.is_some() {
            return Err(syn::Error::new_spanned(&key, format!("`{key}` specified more than once")));
        }
        *slot = Some(actions);
        if only.is_some() && except.is_some() {
            return Err(syn::Error::new_spanned(
                &key,
                "`only` and `except` cannot be used together",
            ));
        }
    }
    let nested = if input.peek(syn::token::Brace) {
        parse_block(input)?
    } else {
        input.parse::<Token![;]>()?;
        Vec::new()
    };
    Ok(ResourcesDef { path, controller, only, except, helper, nested })
}
