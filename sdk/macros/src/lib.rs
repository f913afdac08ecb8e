//! `#[derive(Features)]` for [`hookhost-sdk`](../hookhost_sdk/index.html).
//!
//! Use it through the SDK (`hookhost_sdk::Features`), not directly. The derive only reads the
//! struct's shape: every column's type, nullability and value conversion comes from the SDK's
//! `FeatureColumn` trait, so an unsupported field type is reported by the compiler at that field.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Expr, ExprLit, Fields, Ident, Lit, LitStr, Meta};

/// Longest feature name the WIT contract allows, in bytes.
const MAX_FEATURE_NAME: usize = 40;
/// Longest column name the WIT contract allows, in bytes.
const MAX_COLUMN_NAME: usize = 64;

/// Derives `hookhost_sdk::Features` for a struct with named fields.
///
/// The struct needs `#[features(name = "...", cardinality = "one" | "many")]`; each field is a
/// column named after the field (or `#[column(rename = "...")]`), described by its doc comment.
#[proc_macro_derive(Features, attributes(features, column))]
pub fn derive_features(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => &fields.named,
            _ => return Err(error(input, "Features needs a struct with named fields")),
        },
        _ => return Err(error(input, "Features can only be derived for a struct")),
    };
    if !input.generics.params.is_empty() {
        return Err(error(
            &input.generics,
            "Features cannot be derived for a generic struct",
        ));
    }
    if fields.is_empty() {
        return Err(error(input, "a feature row needs at least one column"));
    }
    let (feature, cardinality) = struct_attr(input)?;

    let mut names = Vec::new();
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for field in fields {
        let ident = field.ident.as_ref().expect("named field");
        let name = column_name(field, ident)?;
        if names.contains(&name) {
            return Err(error(field, format!("duplicate column name `{name}`")));
        }
        let ty = &field.ty;
        let description = match doc_text(&field.attrs) {
            Some(text) => quote!(::core::option::Option::Some(#text)),
            None => quote!(::core::option::Option::None),
        };
        // Spanned on the type, so an unsupported type is reported at the field's type.
        columns.push(quote_spanned! {ty.span()=>
            ::hookhost_sdk::__private::column::<#ty>(#name, #description)
        });
        values.push(quote_spanned! {ty.span()=>
            ::hookhost_sdk::FeatureColumn::into_value(self.#ident)
        });
        names.push(name);
    }

    let ident = &input.ident;
    Ok(quote! {
        impl ::hookhost_sdk::Features for #ident {
            fn contract() -> ::hookhost_sdk::Contract {
                ::hookhost_sdk::Contract {
                    feature: ::std::string::String::from(#feature),
                    cardinality: ::hookhost_sdk::Cardinality::#cardinality,
                    columns: ::std::vec![#(#columns),*],
                }
            }

            fn into_row(self) -> ::std::vec::Vec<::hookhost_sdk::Value> {
                ::std::vec![#(#values),*]
            }
        }
    })
}

/// Reads `#[features(name = "...", cardinality = "...")]`; both keys are required.
fn struct_attr(input: &DeriveInput) -> syn::Result<(String, Ident)> {
    const USAGE: &str = r#"expected #[features(name = "...", cardinality = "one" | "many")]"#;
    let attr = input
        .attrs
        .iter()
        .find(|a| a.path().is_ident("features"))
        .ok_or_else(|| error(&input.ident, format!("missing attribute: {USAGE}")))?;
    let mut name = None;
    let mut cardinality = None;
    attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("name") {
            let lit: LitStr = meta.value()?.parse()?;
            check_name(&lit, MAX_FEATURE_NAME)?;
            name = Some(lit.value());
        } else if meta.path.is_ident("cardinality") {
            let lit: LitStr = meta.value()?.parse()?;
            let variant = match lit.value().as_str() {
                "one" => "One",
                "many" => "Many",
                _ => {
                    return Err(syn::Error::new(
                        lit.span(),
                        "cardinality is \"one\" or \"many\"",
                    ));
                }
            };
            cardinality = Some(Ident::new(variant, Span::call_site()));
        } else {
            return Err(meta.error(format!("unknown key: {USAGE}")));
        }
        Ok(())
    })?;
    match (name, cardinality) {
        (Some(name), Some(cardinality)) => Ok((name, cardinality)),
        (None, _) => Err(error(attr, format!("missing `name`: {USAGE}"))),
        (_, None) => Err(error(attr, format!("missing `cardinality`: {USAGE}"))),
    }
}

/// The field's column name: `#[column(rename = "...")]`, else the field name.
fn column_name(field: &syn::Field, ident: &Ident) -> syn::Result<String> {
    let mut rename = None;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("column")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let lit: LitStr = meta.value()?.parse()?;
                check_name(&lit, MAX_COLUMN_NAME)?;
                rename = Some(lit.value());
                Ok(())
            } else {
                Err(meta.error(r#"expected #[column(rename = "...")]"#))
            }
        })?;
    }
    match rename {
        Some(name) => Ok(name),
        None => {
            let name = ident.to_string();
            let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
            check_name(&LitStr::new(&name, ident.span()), MAX_COLUMN_NAME)?;
            Ok(name)
        }
    }
}

/// Names in a contract are `[a-z][a-z0-9_]*` and at most `max` bytes.
fn check_name(lit: &LitStr, max: usize) -> syn::Result<()> {
    let name = lit.value();
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !well_formed || name.len() > max {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{name}` is not a valid name: expected [a-z][a-z0-9_]*, at most {max} bytes"),
        ));
    }
    Ok(())
}

/// The field's doc comment as one string (lines joined with `\n`), if it has one.
fn doc_text(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_owned()
        })
        .collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn error(tokens: impl quote::ToTokens, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new_spanned(tokens, message)
}
