//! Writes the `unsafe impl Trace` from the checked model.
//!
//! Every path in the output is absolute (`::gcptr::...` or the user's
//! `#[gc(crate = "...")]`, `::core::...`) and every local is
//! `Span::mixed_site()`, so the expansion means the same whatever the user
//! has in scope, even under `#![no_implicit_prelude]`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{GenericParam, Ident, Type, TypePath, WherePredicate};

use crate::model::{Body, Field, Input, Variant};

/// The soundness argument, which the generated `unsafe impl` relies on:
///
/// 1. `trace` visits each traced field exactly once, by calling that
///    field's own `Trace::trace` (whose contract covers what it owns); the
///    fields are owned by `self`, so only `Gc`s that `self` owns are visited.
/// 2. Skipped fields are not visited: under-reporting can only leak.
/// 3. `__may_own_gc` is the `||` of the traced fields' answers; a skipped
///    field that owns a `Gc` makes the answer too low, which (as for
///    `trace`) can only keep objects out of the collector's sight.
///    `__edges_fixed` is the `&&` of theirs, so a field with interior
///    mutability around a `Gc` makes the type's edges not fixed.
/// 4. The match borrows fields in place, so packed types, whose fields
///    could be misaligned, are rejected by the model.
/// 5. `__drop_only_releases_gcs` (a promise of behaviour: a wrong `true`
///    can only skip a drop) is `false` for a type with a `Drop` impl, and
///    otherwise the `&&` of every field's answer: a traced field's own, a
///    skipped one's whether it has no drop glue. So the type's drop glue
///    drops nothing but `Gc`s that `trace` visits.
pub fn derive(input: &Input) -> TokenStream {
    let krate = match &input.attrs.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::gcptr),
    };
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();

    let mut predicates: Vec<TokenStream> = where_clause
        .map(|clause| {
            clause
                .predicates
                .iter()
                .map(ToTokens::to_token_stream)
                .collect()
        })
        .unwrap_or_default();
    match &input.attrs.bound {
        Some(bound) => predicates.extend(bound.iter().map(WherePredicate::to_token_stream)),
        None => predicates.extend(inferred_bounds(input, &krate)),
    }
    let where_clause = quote!(where #(#predicates,)*);

    let tracer = Ident::new("__tracer", Span::mixed_site());
    let mut fields: Vec<FieldPlan> = input
        .body
        .variants()
        .iter()
        .flat_map(|variant| {
            variant
                .traced_fields()
                .map(move |field| FieldPlan::new(variant, field))
        })
        .collect();
    FieldPlan::number_repeated_names(&mut fields);
    let checks = fields.iter().map(|plan| plan.assert_fn(&krate));
    let asserts = fields.iter().map(FieldPlan::assert_call);
    let body = trace_body(&input.body, &tracer);
    // One identifier, interpolated everywhere: spelled inside
    // `quote_spanned!` it would take the field type's hygiene, which under
    // `macro_rules!` is not the parameter's.
    let depth = format_ident!("__gcptr_depth");
    let may_own_body = fact_body(&krate, &depth, &fields, "__gcptr_may_own_gc", true);
    let edges_fixed_body = fact_body(&krate, &depth, &fields, "__gcptr_edges_fixed", false);
    let releases_body = drop_only_releases_body(&input.body);
    let finalize = input.attrs.finalize.map(|span| {
        // The path is spanned at `finalize`, where a missing `impl Finalize`
        // is reported; `self` is not: it must have the hygiene of the
        // `&self` it names, which the attribute's token need not share (a
        // `macro_rules!` that writes the derive and takes `#[gc(finalize)]`
        // from its caller, or the other way round).
        let path = quote_spanned!(span=> <Self as #krate::Finalize>::finalize);
        let call = quote!(#path(self));
        quote! {
            #[inline(always)]
            fn __has_finalizer() -> ::core::primitive::bool {
                true
            }

            #[inline]
            fn __finalize(&self) {
                #call
            }
        }
    });
    let support = support(&krate);
    let (finalize_support, finalize_check) = match input.attrs.finalize {
        Some(_) => (TokenStream::new(), TokenStream::new()),
        None => finalize_attribute_check(&krate, ident),
    };

    quote! {
        // An anonymous const keeps the helpers out of the user's namespace.
        const _: () = {
            #support
            #finalize_support
            #(#checks)*

            #[automatically_derived]
            unsafe impl #impl_generics #krate::Trace for #ident #ty_generics #where_clause {
                #[inline(always)]
                fn trace(&self, #tracer: &mut #krate::Tracer) {
                    #(#asserts)*
                    #finalize_check
                    #body
                }

                #[inline]
                fn __may_own_gc(#depth: ::core::primitive::u32) -> ::core::primitive::bool {
                    #may_own_body
                }

                #[inline]
                fn __edges_fixed(#depth: ::core::primitive::u32) -> ::core::primitive::bool {
                    #edges_fixed_body
                }

                #[inline]
                fn __drop_only_releases_gcs() -> ::core::primitive::bool {
                    #releases_body
                }

                #finalize
            }
        };
    }
}

/// For a type without `#[gc(finalize)]`: the helpers, and the statement in
/// `trace`, that fail to compile if the type implements `Finalize` (the
/// attribute forgotten: `finalize` would silently never run). The probe's
/// method resolves to `__GcptrFinalizeWithoutAttribute`'s, which answers
/// `FinalizeNeverRuns`, where `Self: Finalize` holds in the impl's
/// environment, and to the fallback's `NoFinalizer` otherwise (as
/// `support`'s probes do); the check demands `FinalizeAttribute<Self>` of
/// the answer, whose `on_unimplemented` names the type and the fix. Only
/// the call is spanned at the type's name (where the error points): its
/// paths are local, as a 2015-edition span needs.
///
/// A generic type whose `Finalize` impl holds only for some arguments
/// (`impl Finalize for Node<u32>`) is not caught: in the impl's
/// environment the bound does not hold for every `T`.
fn finalize_attribute_check(krate: &TokenStream, ident: &Ident) -> (TokenStream, TokenStream) {
    let support = quote! {
        trait __GcptrFinalizeWithoutAttribute {
            #[inline(always)]
            fn __gcptr_finalize_attribute(&self) -> #krate::__private::FinalizeNeverRuns {
                #krate::__private::FinalizeNeverRuns
            }
        }
        impl<T: ?::core::marker::Sized + #krate::Finalize> __GcptrFinalizeWithoutAttribute
            for __GcptrProbe<T> {}
        trait __GcptrNoFinalizer {
            #[inline(always)]
            fn __gcptr_finalize_attribute(&self) -> #krate::__private::NoFinalizer {
                #krate::__private::NoFinalizer
            }
        }
        impl<T: ?::core::marker::Sized> __GcptrNoFinalizer for &__GcptrProbe<T> {}
        #[inline(always)]
        fn __gcptr_finalize_attribute_given<
            T: ?::core::marker::Sized,
            A: #krate::__private::FinalizeAttribute<T>,
        >(_: A) {}
    };
    let check = quote_spanned! {ident.span()=>
        __gcptr_finalize_attribute_given::<Self, _>(
            (&__GcptrProbe::<Self>::NEW).__gcptr_finalize_attribute()
        );
    };
    (support, check)
}

/// The body of a type fact, asked of every traced field one level deeper:
/// `__may_own_gc`, the `||` of the answers, or `__edges_fixed`, their `&&`.
///
/// A type that contains itself through a container that asks its element
/// (`children: Vec<Self>`, or `A { bs: Vec<B> }` with `B { as_: Vec<A> }`)
/// would otherwise ask itself forever. Past the depth limit the answer is
/// `past_limit`, the conservative one, which is always sound (the object
/// is only tracked when it need not be): `true` for `__may_own_gc` (so the
/// answer is the `||`), `false` for `__edges_fixed` (the `&&`). So
/// recursive types are tracked, and the answer of a non-recursive type is
/// still a constant once inlined, with no state.
fn fact_body(
    krate: &TokenStream,
    depth: &Ident,
    fields: &[FieldPlan],
    method: &str,
    past_limit: bool,
) -> TokenStream {
    let method = Ident::new(method, Span::call_site());
    let answers = fields.iter().map(|plan| {
        let ty = plan.field.ty;
        quote_spanned!(ty.span()=> (&__GcptrProbe::<#ty>::NEW).#method(#depth + 1))
    });
    let limit = quote!(#krate::__private::MAX_MAY_OWN_DEPTH);
    match (fields.is_empty(), past_limit) {
        (true, _) => {
            let no_fields = !past_limit;
            quote!(#no_fields)
        }
        (false, true) => quote!(#depth >= #limit || { false #(|| #answers)* }),
        (false, false) => quote!(#depth < #limit && { true #(&& #answers)* }),
    }
}

/// The body of `__drop_only_releases_gcs`: no `Drop` impl of the type's
/// own, and every field's drop drops nothing but `Gc`s (a traced field's
/// type says so; a skipped field's must have no drop glue, since `trace`
/// does not show what it owns). Asking a field never comes back to the
/// type: a type contains itself only through a pointer (`Box`, `Vec`,
/// `Gc`), whose answer does not ask its pointee.
///
/// The `Drop` probe is one of the helpers (`support`), not an item of
/// `#[gc(crate = "...")]`'s path: a path the user names could give any
/// answer, and a wrong one would skip the `Drop` impl.
fn drop_only_releases_body(body: &Body) -> TokenStream {
    let answers = body.variants().iter().flat_map(|variant| {
        variant.fields.iter().map(|field| {
            let ty = field.ty;
            if field.skip {
                quote_spanned!(ty.span()=> !__gcptr_needs_drop::<#ty>())
            } else {
                quote_spanned! {ty.span()=>
                    (&__GcptrProbe::<#ty>::NEW).__gcptr_drop_only_releases_gcs()
                }
            }
        })
    });
    quote! {
        !<__GcptrDropImplProbe<Self>>::HAS_DROP_IMPL #(&& #answers)*
    }
}

/// The helpers through which the impl reaches its fields' `Trace` impls.
///
/// A field whose type is not `Trace` must give exactly one error, the one
/// from its `FieldPlan::check_items`. So the impl does not call
/// `Trace::trace` on a field directly (that would be a second error, and a
/// third from `__may_own_gc`): it calls a method on `&__GcptrProbe<F>`,
/// which resolves to the real `Trace` impl when `F: Trace` holds, and to a
/// fallback otherwise (method resolution tries `__GcptrProbe<F>` before
/// `&__GcptrProbe<F>`). The fallback is what `#[gc(skip)]` would do, with a
/// conservative `__may_own_gc` and `__edges_fixed`, so it is sound even if
/// it were reached; and it is never reached in a program that compiles,
/// because the check of that field fails in the same environment.
///
/// Both facts need `F: Sized`; an unsized last field (`tail: [T]`) takes
/// the fallback there (may own a `Gc`, edges not fixed), and is still
/// traced by `trace`.
///
/// `__GcptrDropImplProbe<T>::HAS_DROP_IMPL` says whether `T` has a `Drop`
/// impl of its own (not only drop glue): the inherent constant exists where
/// `T: Drop` holds, and path resolution falls back to the trait's where it
/// does not. It is asked of `Self` in the impl, where the answer is right
/// whatever the parameters: a `Drop` impl must hold for every instance of
/// its type.
fn support(krate: &TokenStream) -> TokenStream {
    quote! {
        struct __GcptrDropImplProbe<T: ?::core::marker::Sized>(::core::marker::PhantomData<T>);
        // The bound is the point: `T: Drop` holds exactly for types with a
        // `Drop` impl of their own.
        // No `#[allow(drop_bounds)]` (nor `non_snake_case` on the check
        // functions): lints do not fire in a derive's output, and an
        // `allow` there is an error (E0453) in a crate that `forbid`s the
        // lint.
        impl<T: ?::core::marker::Sized + ::core::ops::Drop> __GcptrDropImplProbe<T> {
            const HAS_DROP_IMPL: ::core::primitive::bool = true;
        }
        trait __GcptrNoDropImpl {
            const HAS_DROP_IMPL: ::core::primitive::bool = false;
        }
        impl<T: ?::core::marker::Sized> __GcptrNoDropImpl for __GcptrDropImplProbe<T> {}

        struct __GcptrProbe<T: ?::core::marker::Sized>(::core::marker::PhantomData<T>);
        // The expressions spanned at a field's type name only these helpers,
        // never an absolute path: `::core` with the span of a 2015-edition
        // crate's tokens is looked up in that crate's root ("cannot find
        // `core` in the crate root").
        impl<T: ?::core::marker::Sized> __GcptrProbe<T> {
            const NEW: Self = __GcptrProbe(::core::marker::PhantomData);
        }
        #[inline(always)]
        const fn __gcptr_needs_drop<T: ?::core::marker::Sized>() -> ::core::primitive::bool {
            ::core::mem::needs_drop::<T>()
        }

        trait __GcptrTraceField<T: ?::core::marker::Sized> {
            fn __gcptr_trace_field(&self, value: &T, tracer: &mut #krate::Tracer);
        }
        impl<T: ?::core::marker::Sized + #krate::Trace> __GcptrTraceField<T> for __GcptrProbe<T> {
            #[inline(always)]
            fn __gcptr_trace_field(&self, value: &T, tracer: &mut #krate::Tracer) {
                #krate::Trace::trace(value, tracer)
            }
        }
        trait __GcptrTraceFieldFallback<T: ?::core::marker::Sized> {
            fn __gcptr_trace_field(&self, value: &T, tracer: &mut #krate::Tracer);
        }
        impl<T: ?::core::marker::Sized> __GcptrTraceFieldFallback<T> for &__GcptrProbe<T> {
            #[inline(always)]
            fn __gcptr_trace_field(&self, _: &T, _: &mut #krate::Tracer) {}
        }

        // What the type says about itself, asked of every field: the
        // fallback's answers are the conservative ones.
        trait __GcptrTypeFacts {
            fn __gcptr_may_own_gc(&self, depth: ::core::primitive::u32) -> ::core::primitive::bool;
            fn __gcptr_edges_fixed(&self, depth: ::core::primitive::u32) -> ::core::primitive::bool;
            fn __gcptr_drop_only_releases_gcs(&self) -> ::core::primitive::bool;
        }
        impl<T: #krate::Trace> __GcptrTypeFacts for __GcptrProbe<T> {
            #[inline(always)]
            fn __gcptr_may_own_gc(&self, depth: ::core::primitive::u32) -> ::core::primitive::bool {
                <T as #krate::Trace>::__may_own_gc(depth)
            }
            #[inline(always)]
            fn __gcptr_edges_fixed(&self, depth: ::core::primitive::u32) -> ::core::primitive::bool {
                <T as #krate::Trace>::__edges_fixed(depth)
            }
            #[inline(always)]
            fn __gcptr_drop_only_releases_gcs(&self) -> ::core::primitive::bool {
                <T as #krate::Trace>::__drop_only_releases_gcs()
            }
        }
        trait __GcptrTypeFactsFallback {
            fn __gcptr_may_own_gc(&self, depth: ::core::primitive::u32) -> ::core::primitive::bool;
            fn __gcptr_edges_fixed(&self, depth: ::core::primitive::u32) -> ::core::primitive::bool;
            fn __gcptr_drop_only_releases_gcs(&self) -> ::core::primitive::bool;
        }
        impl<T: ?::core::marker::Sized> __GcptrTypeFactsFallback for &__GcptrProbe<T> {
            #[inline(always)]
            fn __gcptr_may_own_gc(&self, _: ::core::primitive::u32) -> ::core::primitive::bool {
                true
            }
            #[inline(always)]
            fn __gcptr_edges_fixed(&self, _: ::core::primitive::u32) -> ::core::primitive::bool {
                false
            }
            #[inline(always)]
            fn __gcptr_drop_only_releases_gcs(&self) -> ::core::primitive::bool {
                false
            }
        }
    }
}

/// One traced field, with what is needed to check and trace it.
struct FieldPlan<'a> {
    field: &'a Field<'a>,
    /// The function whose bound demands that the field's type is `Trace`:
    /// rustc's note "required by a bound in `field_next_must_implement_trace`"
    /// is how the error names the field.
    assert_ident: Ident,
}

impl<'a> FieldPlan<'a> {
    fn new(variant: &Variant, field: &'a Field<'a>) -> Self {
        let member = match &field.member {
            syn::Member::Named(ident) => ident.unraw().to_string(),
            syn::Member::Unnamed(index) => index.index.to_string(),
        };
        let name = match variant.ident {
            Some(variant) => format!("variant_{}_field_{member}", variant.unraw()),
            None => format!("field_{member}"),
        };
        FieldPlan {
            field,
            assert_ident: format_ident!("{}_must_implement_trace", name),
        }
    }

    /// Gives each check function a name of its own: variant `a_field_b`'s
    /// field `c` and variant `a`'s field `b_field_c` spell the same one.
    fn number_repeated_names(fields: &mut [FieldPlan]) {
        let mut taken = std::collections::HashSet::new();
        for plan in fields {
            let base = plan.assert_ident.to_string();
            let mut n = 1;
            while !taken.insert(plan.assert_ident.to_string()) {
                n += 1;
                plan.assert_ident = format_ident!("{base}_{n}");
            }
        }
    }

    /// The function that demands `Trace` of this field's type. (A
    /// `#[diagnostic::on_unimplemented]` of our own could name the field in
    /// the message, but tool attributes do not resolve under
    /// `#![no_implicit_prelude]`; the message and the `#[gc(skip)]` hint
    /// come from the one on `Trace`.)
    fn assert_fn(&self, krate: &TokenStream) -> TokenStream {
        let assert_ident = &self.assert_ident;
        quote! {
            #[inline(always)]
            fn #assert_ident<T: ?::core::marker::Sized + #krate::Trace>() {}
        }
    }

    /// The call that fails, at the field's type, if it is not `Trace`. It
    /// sits in the impl so that the field's type may use `Self` and the
    /// type's generics.
    fn assert_call(&self) -> TokenStream {
        let ty = self.field.ty;
        let assert_ident = &self.assert_ident;
        quote_spanned!(ty.span()=> #assert_ident::<#ty>();)
    }
}

/// `match self { pattern => { trace each field } ... }`.
fn trace_body(body: &Body, tracer: &Ident) -> TokenStream {
    let arms = body.variants().iter().map(|variant| {
        let path = match variant.ident {
            Some(ident) => quote!(Self::#ident),
            None => quote!(Self),
        };
        let traced: Vec<(&Field, Ident)> = variant
            .traced_fields()
            .enumerate()
            .map(|(index, field)| {
                let span = Span::mixed_site().located_at(field.ty.span());
                (field, format_ident!("__field{}", index, span = span))
            })
            .collect();
        let bindings = traced.iter().map(|(field, binding)| {
            let member = &field.member;
            quote!(#member: #binding)
        });
        let calls = traced.iter().map(|(field, binding)| {
            let ty = field.ty;
            quote_spanned! {ty.span()=>
                (&__GcptrProbe::<#ty>::NEW).__gcptr_trace_field(#binding, #tracer);
            }
        });
        quote! {
            #path { #(#bindings,)* .. } => { #(#calls)* }
        }
    });
    match body {
        // An enum without variants has no value to trace.
        Body::Enum(variants) if variants.is_empty() => quote!(match *self {}),
        _ => quote!(match self { #(#arms)* }),
    }
}

/// `T: Trace` for each type parameter that occurs in a traced field's type,
/// and `T::Assoc: Trace` for each associated type of one that occurs there
/// (serde's rule; a repeated predicate is harmless). A parameter that only
/// skipped fields use needs no bound.
fn inferred_bounds(input: &Input, krate: &TokenStream) -> Vec<TokenStream> {
    let params: Vec<&Ident> = input
        .generics
        .params
        .iter()
        .filter_map(|param| match param {
            GenericParam::Type(param) => Some(&param.ident),
            _ => None,
        })
        .collect();
    if params.is_empty() {
        return Vec::new();
    }
    let mut visitor = ParamVisitor {
        params: &params,
        used: vec![false; params.len()],
        projections: Vec::new(),
    };
    for field in input
        .body
        .variants()
        .iter()
        .flat_map(Variant::traced_fields)
    {
        visitor.visit_type(field.ty);
    }
    let used = params
        .iter()
        .zip(&visitor.used)
        .filter(|(_, used)| **used)
        .map(|(param, _)| quote!(#param: #krate::Trace));
    let projections = visitor
        .projections
        .iter()
        .map(|ty| quote!(#ty: #krate::Trace));
    used.chain(projections).collect()
}

/// Finds which type parameters a type mentions by name (`T`, as serde does),
/// and which associated types of them (`T::Assoc`, `<T as Tr>::Assoc`).
struct ParamVisitor<'p, 'ast> {
    params: &'p [&'p Ident],
    used: Vec<bool>,
    projections: Vec<&'ast TypePath>,
}

impl ParamVisitor<'_, '_> {
    fn param_index(&self, ident: &Ident) -> Option<usize> {
        self.params.iter().position(|param| *param == ident)
    }

    /// Whether a qualified path `<Q as Trait<A>>::Assoc<B>` mentions a
    /// parameter: in `Q`, or in the generic arguments of the trait or of
    /// the associated type (`<Identity as Pick<T>>::Out` is `T`).
    fn qualified_path_mentions_param(&self, qself: &Type, path: &syn::Path) -> bool {
        let mut inner = ParamVisitor {
            params: self.params,
            used: vec![false; self.params.len()],
            projections: Vec::new(),
        };
        inner.visit_type(qself);
        for segment in &path.segments {
            inner.visit_path_arguments(&segment.arguments);
        }
        inner.used.iter().any(|used| *used) || !inner.projections.is_empty()
    }
}

impl<'ast> Visit<'ast> for ParamVisitor<'_, 'ast> {
    fn visit_type_path(&mut self, ty: &'ast TypePath) {
        if let Some(qself) = &ty.qself {
            if self.qualified_path_mentions_param(&qself.ty, &ty.path) {
                self.projections.push(ty);
            }
            return;
        }
        let path = &ty.path;
        if path.leading_colon.is_none() {
            if let Some(index) = self.param_index(&path.segments[0].ident) {
                if path.segments.len() == 1 {
                    self.used[index] = true;
                } else {
                    self.projections.push(ty);
                }
                // Generic arguments further along (`T::Assoc<U>`) count too.
                for segment in path.segments.iter().skip(1) {
                    self.visit_path_arguments(&segment.arguments);
                }
                return;
            }
        }
        syn::visit::visit_type_path(self, ty);
    }

    // A macro in type position (`my_type!(T)`) cannot be seen into; its
    // parameters stay unbounded and rustc asks for `#[gc(bound)]`.
}
