//! Shared helpers of the integration tests: a loopback server that speaks The Cat API /
//! The Dog API with real photos and injectable faults, temporary projects, checks that the
//! data folder agrees with its manifest and that no secret leaked, and which variables of a
//! model are trainable.
#![allow(dead_code)]

pub mod pets_server;
pub mod project;

/// Names of the variables of `vs` that the optimiser trains (those requiring gradients).
pub fn trainable_names(vs: &tch::nn::VarStore) -> Vec<String> {
    vs.variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(n, _)| n)
        .collect()
}

/// Asserts that every name starts with one of the `allowed` prefixes.
pub fn assert_all_prefixed(names: &[String], allowed: &[&str]) {
    assert!(
        names
            .iter()
            .all(|n| allowed.iter().any(|a| n.starts_with(a))),
        "{names:?}"
    );
}
