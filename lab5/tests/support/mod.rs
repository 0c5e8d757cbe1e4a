//! Shared helpers of the data integration tests: a loopback server that speaks The Cat
//! API / The Dog API with real photos and injectable faults, temporary projects, and
//! checks that the data folder agrees with its manifest and that no secret leaked.
#![allow(dead_code)]

pub mod pets_server;
pub mod project;
