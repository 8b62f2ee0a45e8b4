//! Test support shared by the integration tests: the benign traffic generator and the
//! CRS corpus loader.

#![allow(dead_code)]

pub mod benign;
pub mod crs;
pub mod request;
