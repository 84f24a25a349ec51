//! Procedural macros for Fawkes. Use them through the `fawkes` crate, which re-exports them.
//!
//! Every macro here expands only to `::fawkes` paths, never to this crate's.

mod html;
mod router;

use proc_macro::TokenStream;

/// Declares a router. See `fawkes::router!` for the documentation.
#[proc_macro]
pub fn router(input: TokenStream) -> TokenStream {
    router::expand(input.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// A LiveView template. See `fawkes::live::html!` for the documentation.
#[proc_macro]
pub fn html(input: TokenStream) -> TokenStream {
    html::expand(input.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}
