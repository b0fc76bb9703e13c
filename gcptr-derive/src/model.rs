//! Parses a `DeriveInput` and checks its `#[gc(...)]` attributes into a small
//! model of plain data. Every mistake becomes a [`syn::Error`] spanned at the
//! token at fault; independent mistakes are reported together.
//!
//! Nothing here emits code: that is `expand`'s job.

use proc_macro2::{Span, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, Generics, Ident, Member, Path, Token, Type};
use syn::{LitStr, WherePredicate};

/// A type to derive `Trace` for.
pub struct Input<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub attrs: TypeAttrs,
    pub body: Body<'a>,
}

/// The `#[gc(...)]` attributes of the type itself.
#[derive(Default)]
pub struct TypeAttrs {
    /// `#[gc(crate = "path")]`: where the generated code finds `gcptr`.
    pub krate: Option<Path>,
    /// `#[gc(bound = "...")]`: replaces the inferred `T: Trace` bounds.
    pub bound: Option<Vec<WherePredicate>>,
    /// `#[gc(finalize)]`: the type implements `Finalize`. The span of the
    /// word `finalize`, where a missing impl is reported.
    pub finalize: Option<Span>,
}

pub enum Body<'a> {
    Struct(Variant<'a>),
    Enum(Vec<Variant<'a>>),
}

/// A struct's fields, or one enum variant.
pub struct Variant<'a> {
    /// `None` for a struct.
    pub ident: Option<&'a Ident>,
    pub fields: Vec<Field<'a>>,
}

pub struct Field<'a> {
    /// The field's name, or its index in a tuple struct or variant.
    pub member: Member,
    pub ty: &'a Type,
    /// `#[gc(skip)]`: not traced, and its type needs no `Trace` impl.
    pub skip: bool,
}

impl<'a> Variant<'a> {
    /// The fields that `trace` visits.
    pub fn traced_fields(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|field| !field.skip)
    }
}

impl<'a> Body<'a> {
    pub fn variants(&self) -> &[Variant<'a>] {
        match self {
            Body::Struct(variant) => core::slice::from_ref(variant),
            Body::Enum(variants) => variants,
        }
    }
}

/// Collects errors so that one derive reports all its independent mistakes.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(errors) => Err(errors),
            None => Ok(value),
        }
    }
}

impl<'a> Input<'a> {
    pub fn from_syn(input: &'a DeriveInput) -> syn::Result<Self> {
        let mut errors = Errors::default();
        check_not_packed(&input.attrs, &mut errors);
        let attrs = TypeAttrs::from_attrs(&input.attrs, &mut errors);
        let body = match &input.data {
            Data::Struct(data) => {
                Body::Struct(Variant::from_fields(None, &data.fields, &mut errors))
            }
            Data::Enum(data) => Body::Enum(
                data.variants
                    .iter()
                    .map(|variant| {
                        for attr in variant.attrs.iter().filter(|attr| is_gc(attr)) {
                            errors.push(syn::Error::new_spanned(
                                attr,
                                "`gc` attributes are not allowed on enum variants; \
                                 put `#[gc(skip)]` on the fields instead",
                            ));
                        }
                        Variant::from_fields(Some(&variant.ident), &variant.fields, &mut errors)
                    })
                    .collect(),
            ),
            Data::Union(data) => {
                errors.push(syn::Error::new_spanned(
                    data.union_token,
                    "`Trace` cannot be derived for a union: the derive cannot know which \
                     field holds a value; write `unsafe impl Trace` by hand",
                ));
                Body::Enum(Vec::new())
            }
        };
        errors.finish(Input {
            ident: &input.ident,
            generics: &input.generics,
            attrs,
            body,
        })
    }
}

impl<'a> Variant<'a> {
    fn from_fields(ident: Option<&'a Ident>, fields: &'a Fields, errors: &mut Errors) -> Self {
        let fields = fields
            .iter()
            .enumerate()
            .map(|(index, field)| Field {
                member: match &field.ident {
                    Some(ident) => Member::Named(ident.clone()),
                    None => Member::Unnamed(syn::Index {
                        index: index as u32,
                        span: Span::call_site(),
                    }),
                },
                ty: &field.ty,
                skip: field_skip(&field.attrs, errors),
            })
            .collect();
        Variant { ident, fields }
    }
}

fn is_gc(attr: &Attribute) -> bool {
    attr.path().is_ident("gc")
}

/// Parses each `#[gc(...)]` in `attrs` with `parse_item`, recording the
/// first error of each attribute.
fn for_each_gc_item(
    attrs: &[Attribute],
    errors: &mut Errors,
    expected: &str,
    mut parse_item: impl FnMut(ParseNestedMeta) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|attr| is_gc(attr)) {
        match &attr.meta {
            // `#[gc()]` says nothing: most likely an item left out.
            syn::Meta::List(list) if list.tokens.is_empty() => {
                errors.push(syn::Error::new_spanned(
                    attr,
                    format_args!("empty `gc` attribute; expected {expected}, or remove it"),
                ));
                continue;
            }
            syn::Meta::List(_) => {}
            // `#[gc]`, `#[gc = "skip"]`.
            _ => {
                errors.push(syn::Error::new_spanned(
                    attr,
                    format_args!(
                        "a `gc` attribute lists its items in parentheses: \
                         `#[gc(...)]` with {expected}"
                    ),
                ));
                continue;
            }
        }
        if let Err(error) = attr.parse_nested_meta(&mut parse_item) {
            errors.push(error);
        }
    }
}

impl TypeAttrs {
    fn from_attrs(attrs: &[Attribute], errors: &mut Errors) -> Self {
        let mut this = TypeAttrs::default();
        let expected = "`finalize`, `bound = \"...\"` or `crate = \"...\"`";
        for_each_gc_item(attrs, errors, expected, |meta| {
            let path = &meta.path;
            if path.is_ident("finalize") {
                no_arguments(&meta)?;
                if this.finalize.is_some() {
                    return Err(meta.error("duplicate `gc(finalize)` attribute"));
                }
                this.finalize = Some(path.span());
            } else if path.is_ident("bound") {
                let lit = string_value(&meta, "bound = \"T: Trace\"")?;
                if this.bound.is_some() {
                    return Err(syn::Error::new_spanned(
                        path,
                        "duplicate `gc(bound)` attribute",
                    ));
                }
                let predicates = lit
                    .parse_with(Punctuated::<WherePredicate, Token![,]>::parse_terminated)
                    .map_err(|error| {
                        syn::Error::new(
                            error.span(),
                            format_args!(
                                "`gc(bound)` must be where-predicates such as \
                                 \"T: Trace, U: Trace\": {error}"
                            ),
                        )
                    })?;
                this.bound = Some(predicates.into_iter().collect());
            } else if path.is_ident("crate") {
                let lit = string_value(&meta, "crate = \"::gcptr\"")?;
                if this.krate.is_some() {
                    return Err(syn::Error::new_spanned(
                        path,
                        "duplicate `gc(crate)` attribute",
                    ));
                }
                let path = lit.parse().map_err(|error| {
                    syn::Error::new(
                        error.span(),
                        format_args!("`gc(crate)` must be a path such as \"::gcptr\": {error}"),
                    )
                })?;
                this.krate = Some(path);
            } else if path.is_ident("skip") {
                return Err(meta.error(
                    "`#[gc(skip)]` goes on a field, not on the type: it leaves that field untraced",
                ));
            } else {
                return Err(meta.error(format_args!(
                    "unknown `gc` attribute `{}`; expected `finalize`, `bound = \"...\"` \
                     or `crate = \"...\"`",
                    path_to_string(path),
                )));
            }
            Ok(())
        });
        this
    }
}

/// Whether a field is marked `#[gc(skip)]`.
fn field_skip(attrs: &[Attribute], errors: &mut Errors) -> bool {
    let mut skip = false;
    for_each_gc_item(attrs, errors, "`skip`", |meta| {
        let path = &meta.path;
        if path.is_ident("skip") {
            no_arguments(&meta)?;
            if skip {
                return Err(meta.error("duplicate `gc(skip)` attribute"));
            }
            skip = true;
            Ok(())
        } else if path.is_ident("finalize") || path.is_ident("bound") || path.is_ident("crate") {
            Err(meta.error(format_args!(
                "`#[gc({})]` goes on the type, not on a field",
                path_to_string(path),
            )))
        } else {
            Err(meta.error(format_args!(
                "unknown `gc` field attribute `{}`; the only one is `skip`",
                path_to_string(path),
            )))
        }
    });
    skip
}

/// The string of `name = "..."`; anything else (no `=`, no string after
/// it) is an error at the item that shows how to write it (`example`).
fn string_value(meta: &ParseNestedMeta, example: &str) -> syn::Result<LitStr> {
    let name = path_to_string(&meta.path);
    let fault = |span| {
        syn::Error::new(
            span,
            format_args!("`gc({name})` takes a string: write `#[gc({example})]`"),
        )
    };
    if !meta.input.peek(Token![=]) {
        return Err(fault(meta.path.span()));
    }
    let value = meta.value()?;
    if value.peek(LitStr) {
        value.parse()
    } else {
        Err(fault(value.span()))
    }
}

/// Rejects `name = ...` and `name(...)` for a flag attribute.
fn no_arguments(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        return Ok(());
    }
    // Span the error over everything up to the next comma.
    let rest = meta.input.step(|cursor| {
        let mut rest = *cursor;
        let mut tokens = Vec::new();
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            tokens.push(tt);
            rest = next;
        }
        Ok((tokens, rest))
    })?;
    let name = path_to_string(&meta.path);
    Err(syn::Error::new_spanned(
        rest.into_iter().collect::<proc_macro2::TokenStream>(),
        format_args!("`gc({name})` takes no arguments; write `#[gc({name})]`"),
    ))
}

/// Rejects `#[repr(packed)]` and `#[repr(packed(N))]`: tracing borrows every
/// field, and a field of a packed type may be misaligned.
fn check_not_packed(attrs: &[Attribute], errors: &mut Errors) {
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("repr")) {
        // A malformed `repr` is rustc's to report; only a parsed `packed`
        // concerns the derive.
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("packed") {
                errors.push(meta.error(
                    "`Trace` cannot be derived for a `#[repr(packed)]` type: its fields \
                     may be misaligned, and tracing borrows them",
                ));
            }
            if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                meta.input.parse::<TokenTree>()?; // `align(8)`, `packed(2)`
            }
            Ok(())
        });
    }
}

fn path_to_string(path: &Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.join("::")
}
