//! `router!`: checks a router declaration at compile time and expands it into calls to
//! `fawkes::router::Builder`, plus path helpers.
//!
//! Everything that can be known before the program runs is checked here, with the error on the
//! user's own token: unknown pipelines, malformed paths, duplicate or conflicting routes (with
//! matchit itself, the same tree the runtime uses), unknown resources actions, clashing path
//! helpers.

mod parse;
mod path;

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Path};

use parse::{Item, Method, ResourcesDef, RouterInput};
use path::RoutePath;

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: RouterInput = syn::parse2(input)?;
    let mut cx = Context::default();
    // Pipelines are declared at the top level and may be used by scopes above them.
    for item in &input.items {
        if let Item::Pipeline(def) = item {
            let name = def.name.to_string();
            if cx.pipelines.contains_key(&name) {
                return Err(syn::Error::new_spanned(
                    &def.name,
                    format!("pipeline `{name}` is defined more than once"),
                ));
            }
            cx.pipelines.insert(name, def.plugs.clone());
        }
    }
    let mut pipes = Vec::new();
    cx.walk(&input.items, "/", &mut pipes, &[], true)?;
    cx.check_conflicts()?;
    let helpers = cx.helpers()?;
    Ok(cx.generate(&input, &helpers))
}

#[derive(Default)]
struct Context {
    pipelines: HashMap<String, Vec<Expr>>,
    routes: Vec<Resolved>,
}

enum Target {
    Action(Path),
    Forward(Expr),
    Socket(Expr),
}

struct Resolved {
    method: Method,
    path: RoutePath,
    /// The token errors about this route point at.
    lit: LitStr,
    target: Target,
    pipes: Vec<Ident>,
    /// The helper's base name (without `_path`), and whether the user chose it.
    helper: Option<(String, bool)>,
    /// A live route's view.
    live: Option<syn::Type>,
}

const RESOURCE_ACTIONS: [&str; 7] = ["index", "new", "create", "show", "edit", "update", "delete"];

impl Context {
    fn walk(
        &mut self,
        items: &[Item],
        prefix: &str,
        pipes: &mut Vec<Ident>,
        helper_prefix: &[String],
        top: bool,
    ) -> syn::Result<()> {
        let depth = pipes.len();
        for item in items {
            match item {
                Item::Pipeline(def) => {
                    if !top {
                        return Err(syn::Error::new_spanned(
                            &def.name,
                            "pipelines are declared at the top level of `router!`, not in a scope",
                        ));
                    }
                }
                Item::PipeThrough(names) => {
                    for name in names {
                        if !self.pipelines.contains_key(&name.to_string()) {
                            let known: Vec<&str> =
                                self.pipelines.keys().map(String::as_str).collect();
                            let hint = if known.is_empty() {
                                "no pipeline is declared".to_owned()
                            } else {
                                let mut known = known;
                                known.sort_unstable();
                                format!("declared pipelines: {}", known.join(", "))
                            };
                            return Err(syn::Error::new_spanned(
                                name,
                                format!("unknown pipeline `{name}`; {hint}"),
                            ));
                        }
                        pipes.push(name.clone());
                    }
                }
                Item::Scope(def) => {
                    path::check_literal(&def.path.value())
                        .map_err(|msg| syn::Error::new_spanned(&def.path, msg))?;
                    let prefix = path::join(prefix, &def.path.value());
                    let mut inner = pipes.clone();
                    self.walk(&def.items, &prefix, &mut inner, helper_prefix, false)?;
                }
                Item::Route(def) => {
                    let full = route_path(prefix, &def.path)?;
                    let helper = match &def.helper {
                        Some(name) => Some((name.to_string(), true)),
                        None => Some((derived_helper(&def.action), false)),
                    };
                    self.routes.push(Resolved {
                        method: def.method,
                        path: full,
                        lit: def.path.clone(),
                        target: Target::Action(def.action.clone()),
                        pipes: pipes.clone(),
                        helper,
                        live: def.live.clone(),
                    });
                }
                Item::Forward(def) | Item::Socket(def) => {
                    if matches!(item, Item::Socket(_)) && !pipes.is_empty() {
                        let names: Vec<String> = pipes.iter().map(|p| format!("`{p}`")).collect();
                        return Err(syn::Error::new_spanned(
                            &def.path,
                            format!(
                                "a socket runs outside pipelines (as in Phoenix, where sockets \
                                 belong to the endpoint), so the plugs of {} would not run for \
                                 it: declare the socket outside the scope that pipes through \
                                 them, and check what they check in the socket's `connect`",
                                names.join(", ")
                            ),
                        ));
                    }
                    let full = route_path(prefix, &def.path)?;
                    if !full.params.is_empty() {
                        return Err(syn::Error::new_spanned(
                            &def.path,
                            "a forward or socket path cannot have params",
                        ));
                    }
                    self.routes.push(Resolved {
                        method: Method::Any,
                        path: full,
                        lit: def.path.clone(),
                        target: match item {
                            Item::Socket(_) => Target::Socket(def.service.clone()),
                            _ => Target::Forward(def.service.clone()),
                        },
                        // A socket runs outside pipelines (refused above inside one), as in
                        // Phoenix where sockets live in the endpoint.
                        pipes: pipes.clone(),
                        helper: None,
                        live: None,
                    });
                }
                Item::Resources(def) => self.resources(def, prefix, pipes, helper_prefix)?,
            }
        }
        pipes.truncate(depth);
        Ok(())
    }

    fn resources(
        &mut self,
        def: &ResourcesDef,
        prefix: &str,
        pipes: &[Ident],
        helper_prefix: &[String],
    ) -> syn::Result<()> {
        for list in [&def.only, &def.except].into_iter().flatten() {
            for action in list {
                if !RESOURCE_ACTIONS.contains(&action.to_string().as_str()) {
                    return Err(syn::Error::new_spanned(
                        action,
                        format!(
                            "unknown resources action `{action}`; expected one of {}",
                            RESOURCE_ACTIONS.join(", ")
                        ),
                    ));
                }
            }
        }
        let base = match &def.helper {
            Some(name) => name.to_string(),
            None => resource_name(&def.controller),
        };
        let mut names = helper_prefix.to_vec();
        names.push(base.clone());
        let helper_base = names.join("_");
        let collection = route_path(prefix, &def.path)?;
        let member_param = "id";
        let wanted = |action: &str| {
            let listed = |list: &Option<Vec<Ident>>| {
                list.as_ref().is_some_and(|l| l.iter().any(|i| i == action))
            };
            match (&def.only, &def.except) {
                (Some(_), _) => listed(&def.only),
                (None, Some(_)) => !listed(&def.except),
                (None, None) => true,
            }
        };
        let member = format!("{}/:{member_param}", collection.phoenix);
        let table: [(&str, Method, String); 8] = [
            ("index", Method::Get, collection.phoenix.clone()),
            ("new", Method::Get, format!("{}/new", collection.phoenix)),
            ("create", Method::Post, collection.phoenix.clone()),
            ("show", Method::Get, member.clone()),
            ("edit", Method::Get, format!("{member}/edit")),
            ("update", Method::Patch, member.clone()),
            ("update", Method::Put, member.clone()),
            ("delete", Method::Delete, member),
        ];
        for (action, method, full) in table {
            if !wanted(action) {
                continue;
            }
            let full = path::parse(&full).map_err(|msg| syn::Error::new_spanned(&def.path, msg))?;
            let mut action_path = def.controller.clone();
            action_path
                .segments
                .push(syn::PathSegment::from(Ident::new(action, def.controller.span())));
            self.routes.push(Resolved {
                method,
                path: full,
                lit: def.path.clone(),
                target: Target::Action(action_path),
                pipes: pipes.to_vec(),
                helper: Some((format!("{helper_base}_{action}"), true)),
                live: None,
            });
        }
        if !def.nested.is_empty() {
            let nested_prefix = format!("{}/:{base}_id", collection.phoenix);
            let mut inner = pipes.to_vec();
            self.walk(&def.nested, &nested_prefix, &mut inner, &names, false)?;
        }
        Ok(())
    }

    fn check_conflicts(&self) -> syn::Result<()> {
        let mut trees: HashMap<Method, (matchit::Router<usize>, HashMap<String, usize>)> =
            HashMap::new();
        for (index, route) in self.routes.iter().enumerate() {
            let (tree, seen) = trees.entry(route.method).or_default();
            let paths = match &route.target {
                Target::Action(_) => vec![route.path.matchit.clone()],
                Target::Forward(_) | Target::Socket(_) => {
                    let prefix = route.path.matchit.trim_end_matches('/');
                    let exact = if prefix.is_empty() { "/".to_owned() } else { prefix.to_owned() };
                    vec![exact, format!("{prefix}/{{*__forward_rest}}")]
                }
            };
            for p in paths {
                if let Err(err) = tree.insert(p.clone(), index) {
                    let other = match &err {
                        matchit::InsertError::Conflict { with } => seen.get(with).copied(),
                        _ => None,
                    };
                    let this = describe(route);
                    let msg = match other.map(|i| &self.routes[i]) {
                        Some(other) if other.path.phoenix == route.path.phoenix => {
                            format!("route `{this}` is defined more than once")
                        }
                        Some(other) => {
                            format!("route `{this}` conflicts with `{}`", describe(other))
                        }
                        None => format!("route `{this}` cannot be added: {err}"),
                    };
                    return Err(syn::Error::new_spanned(&route.lit, msg));
                }
                seen.insert(p, index);
            }
        }
        Ok(())
    }

    /// One helper per name; routes that share a name must share the path (PATCH and PUT).
    fn helpers(&self) -> syn::Result<Vec<(Ident, &Resolved)>> {
        let mut out: Vec<(Ident, &Resolved)> = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for route in &self.routes {
            let Some((base, chosen)) = &route.helper else { continue };
            let name = format!("{base}_path");
            if let Some(&i) = by_name.get(&name) {
                let (_, first) = &out[i];
                if first.path.phoenix == route.path.phoenix {
                    continue;
                }
                if *chosen || !matches!(first.helper, Some((_, false))) {
                    return Err(syn::Error::new_spanned(
                        &route.lit,
                        format!(
                            "path helper `{name}` would be defined twice, for `{}` and `{}`; \
                             name this route with `, as: <name>`",
                            first.path.phoenix, route.path.phoenix
                        ),
                    ));
                }
                // Two derived names clash (one action mounted at two paths): the first route
                // keeps the helper; name the other with `as:` to get one.
                continue;
            }
            let ident = syn::parse_str::<Ident>(&name).map_err(|_| {
                syn::Error::new_spanned(&route.lit, format!("`{name}` is not a valid helper name"))
            })?;
            by_name.insert(name, out.len());
            out.push((ident, route));
        }
        Ok(out)
    }

    fn generate(&self, input: &RouterInput, helpers: &[(Ident, &Resolved)]) -> TokenStream {
        let RouterInput { attrs, vis, name, state, .. } = input;
        let mut names: Vec<&String> = self.pipelines.keys().collect();
        names.sort();
        // Each plug is evaluated once and shared by the routes that pipe through it; each route
        // composes its plugs and action into one type, so a request runs them in one future.
        let pipeline_lets = names.iter().flat_map(|pipeline| {
            self.pipelines[*pipeline].iter().enumerate().map(|(index, plug)| {
                let var = stage_var(pipeline, index);
                let typed = quote_spanned! {plug.span()=>
                    ::fawkes::plug::IntoStage::typed(#plug)
                };
                quote! { let #var = #typed; }
            })
        });
        let routes = self.routes.iter().map(|route| {
            let pattern = &route.path.phoenix;
            let matchit = &route.path.matchit;
            let vars: Vec<Ident> = route
                .pipes
                .iter()
                .flat_map(|p| {
                    let name = p.to_string();
                    (0..self.pipelines[&name].len()).map(move |index| stage_var(&name, index))
                })
                .collect();
            let erased = quote! {
                ::std::vec![#( ::fawkes::plug::TypedStage::to_stage(&#vars) ),*]
            };
            match &route.target {
                Target::Action(action) => {
                    let method = format_ident!("{}", route.method.variant());
                    // Nested pairs, `(first, (second, ()))`, so any number of stages makes one
                    // type the runtime composes with the action.
                    let stages = vars.iter().rev().fold(quote! { () }, |rest, var| {
                        quote! { (::std::clone::Clone::clone(&#var), #rest) }
                    });
                    // The whole call carries the action's span, so a function that is not an
                    // action gets one error, on the user's path.
                    let call = quote_spanned! {action.span()=>
                        builder.route_chain(
                            ::fawkes::router::MethodFilter::#method, #matchit, #pattern,
                            &__fawkes_state, #action, #stages,
                        )
                    };
                    quote! { let builder = #call; }
                }
                Target::Forward(service) => {
                    let service = quote_spanned! {service.span()=> #service };
                    quote! { let builder = builder.forward(#matchit, #pattern, #erased, #service); }
                }
                Target::Socket(socket) => {
                    let transport = quote_spanned! {socket.span()=>
                        ::fawkes::socket::IntoTransport::into_transport(#socket)
                    };
                    quote! { let builder = builder.forward(#matchit, #pattern, #erased, #transport); }
                }
            }
        });
        let helper_fns = helpers.iter().map(|(ident, route)| helper_fn(ident, route));
        // The state is shared by every action that asks for it; pipelines' plug expressions
        // and socket expressions read it as `state`, a `&T`.
        let (new_doc, new_args, state_lets, default_impl) = match state {
            Some(ty) => (
                quote! {
                    /// Builds the router with its state: evaluates every plug once (the
                    /// pipelines' expressions see the state as `state`) and adds every route.
                },
                quote! { state: #ty },
                quote! {
                    let __fawkes_state: ::std::sync::Arc<#ty> = ::std::sync::Arc::new(state);
                    #[allow(unused_variables)]
                    let state: &#ty = &*__fawkes_state;
                },
                quote! {},
            ),
            None => (
                quote! {
                    /// Builds the router: evaluates every plug once and adds every route.
                },
                quote! {},
                quote! {
                    let __fawkes_state: ::std::sync::Arc<()> = ::std::sync::Arc::new(());
                },
                quote! {
                    impl ::std::default::Default for #name {
                        fn default() -> Self {
                            Self::new()
                        }
                    }
                },
            ),
        };
        // The live views, by their full paths, for the app's live socket.
        let live_state = match state {
            Some(ty) => quote! { #ty },
            None => quote! { () },
        };
        let live_views = self.routes.iter().filter_map(|r| {
            let view = r.live.as_ref()?;
            let path = &r.path.phoenix;
            Some(quote! { let live = live.view::<#view>(#path); })
        });
        let table = self.routes.iter().map(|r| {
            let (m, p) = (r.method.as_str(), &r.path.phoenix);
            quote! { (#m, #p) }
        });
        let helper_names: std::collections::HashSet<String> =
            helpers.iter().map(|(ident, _)| ident.to_string()).collect();
        let infos = self.routes.iter().map(|r| {
            let (m, p) = (r.method.as_str(), &r.path.phoenix);
            let target = target_text(r);
            let helper = match &r.helper {
                Some((base, _)) if helper_names.contains(&format!("{base}_path")) => {
                    let name = format!("{base}_path");
                    quote! { ::std::option::Option::Some(#name) }
                }
                _ => quote! { ::std::option::Option::None },
            };
            let pipes = r.pipes.iter().map(ToString::to_string);
            quote! {
                ::fawkes::router::RouteInfo {
                    method: #m,
                    path: #p,
                    target: #target,
                    helper: #helper,
                    pipelines: &[#(#pipes),*],
                }
            }
        });
        quote! {
            #(#attrs)*
            #[derive(Clone, Debug)]
            #vis struct #name {
                router: ::fawkes::Router,
            }

            impl #name {
                /// Every route as `(method, path)`, in declaration order (`*` for any method).
                pub const ROUTES: &'static [(&'static str, &'static str)] = &[#(#table),*];

                /// Every route with what serves it, its helper and its pipelines, in
                /// declaration order: what `fawkes::router::route_table` prints.
                pub const ROUTE_TABLE: &'static [::fawkes::router::RouteInfo] = &[#(#infos),*];

                #new_doc
                #[must_use]
                pub fn new(#new_args) -> Self {
                    #state_lets
                    #(#pipeline_lets)*
                    let builder = ::fawkes::router::Builder::new();
                    #(#routes)*
                    Self { router: builder.build() }
                }

                /// The router.
                pub fn router(&self) -> &::fawkes::Router {
                    &self.router
                }

                /// Adds this router's `live` routes (each view at its full path) to `live`,
                /// the socket their pages join: `socket "/live" =>
                /// Self::live_views(fawkes::live::socket(...))`.
                #[must_use]
                pub fn live_views(
                    live: ::fawkes::live::Live<#live_state>,
                ) -> ::fawkes::live::Live<#live_state> {
                    #(#live_views)*
                    live
                }

                #(#helper_fns)*
            }

            #default_impl

            impl ::std::convert::From<#name> for ::fawkes::Router {
                fn from(value: #name) -> Self {
                    value.router
                }
            }
        }
    }
}

fn route_path(prefix: &str, lit: &LitStr) -> syn::Result<RoutePath> {
    path::check_literal(&lit.value()).map_err(|msg| syn::Error::new_spanned(lit, msg))?;
    path::parse(&path::join(prefix, &lit.value())).map_err(|msg| syn::Error::new_spanned(lit, msg))
}

fn describe(route: &Resolved) -> String {
    let kind = match route.target {
        Target::Forward(_) => "forward ",
        Target::Socket(_) => "socket ",
        Target::Action(_) => "",
    };
    format!("{kind}{} {}", route.method.as_str(), route.path.phoenix)
}

/// What serves a route, as the route table shows it: the action's path as written, `live
/// View`, `forward <expression>` or `socket <expression>` (spaces of the token stream removed).
fn target_text(route: &Resolved) -> String {
    let compact = |tokens: TokenStream| {
        let text = tokens.to_string();
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        let mut prev = ' ';
        while let Some(c) = chars.next() {
            // Keep a space only between two words (`dyn Trait`), drop the token stream's others
            // (and the line breaks it puts in long expressions).
            if c.is_whitespace() {
                let next = chars.peek().copied().unwrap_or(' ');
                if prev.is_alphanumeric() && next.is_alphanumeric() {
                    out.push(' ');
                }
                continue;
            }
            out.push(c);
            prev = c;
        }
        out
    };
    if let Some(view) = &route.live {
        return format!("live {}", compact(quote! { #view }));
    }
    // A mounted service or socket is an expression, maybe a long chain of settings: its
    // start says what it is.
    let clipped = |tokens: TokenStream| {
        let text = compact(tokens);
        match text.char_indices().nth(MAX_TARGET_CHARS) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text,
        }
    };
    match &route.target {
        Target::Action(action) => compact(quote! { #action }),
        Target::Forward(service) => format!("forward {}", clipped(quote! { #service })),
        Target::Socket(socket) => format!("socket {}", clipped(quote! { #socket })),
    }
}

/// The longest a mounted expression is shown in the route table.
const MAX_TARGET_CHARS: usize = 48;

fn stage_var(pipeline: &str, index: usize) -> Ident {
    format_ident!("__fawkes_pipeline_{}_{}", pipeline, index)
}

/// `RoomController` → `room`, `MessagesController` → `messages`, `rooms` → `rooms`.
fn resource_name(controller: &Path) -> String {
    let last = controller.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
    let last = last.strip_suffix("Controller").unwrap_or(&last);
    let snake = snake_case(last);
    snake.strip_suffix("_controller").unwrap_or(&snake).to_owned()
}

/// `PageController::index` → `page_index`, `hello` → `hello`.
fn derived_helper(action: &Path) -> String {
    let segments: Vec<String> = action.segments.iter().map(|s| s.ident.to_string()).collect();
    match segments.as_slice() {
        [.., owner, action] => {
            let owner =
                resource_name(&syn::parse_str(owner).unwrap_or_else(|_| action_path(owner)));
            format!("{owner}_{action}")
        }
        [action] => action.clone(),
        [] => "route".to_owned(),
    }
}

fn action_path(name: &str) -> Path {
    Path::from(Ident::new(name, Span::call_site()))
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn helper_fn(ident: &Ident, route: &Resolved) -> TokenStream {
    let doc = format!(
        "The path of `{} {}`, with params percent-encoded.",
        route.method.as_str(),
        route.path.phoenix
    );
    let args: Vec<Ident> = route
        .path
        .params
        .iter()
        .map(|(p, _)| {
            syn::parse_str::<Ident>(p).unwrap_or_else(|_| Ident::new_raw(p, Span::call_site()))
        })
        .collect();
    // Mixed-site hygiene keeps the buffer apart from a param of the same name (`/*path`).
    let path = Ident::new("path", Span::mixed_site());
    let mut pushes = Vec::new();
    if route.path.phoenix == "/" {
        pushes.push(quote! { #path.push('/'); });
    }
    for segment in route.path.phoenix.split('/').skip(1).filter(|s| !s.is_empty()) {
        if let Some(name) = segment.strip_prefix(':').or_else(|| segment.strip_prefix('*')) {
            let index = route.path.params.iter().position(|(p, _)| p == name).unwrap_or_default();
            let arg = &args[index];
            let wildcard = route.path.params[index].1;
            pushes.push(quote! {
                #path.push('/');
                ::fawkes::__private::push_param(&mut #path, &#arg, #wildcard);
            });
        } else {
            let text = format!("/{segment}");
            pushes.push(quote! { #path.push_str(#text); });
        }
    }
    quote! {
        #[doc = #doc]
        #[allow(clippy::too_many_arguments)]
        pub fn #ident(#(#args: impl ::std::fmt::Display),*) -> ::std::string::String {
            let mut #path = ::std::string::String::new();
            #(#pushes)*
            #path
        }
    }
}
