//! Helpers shared by integration tests. Each test binary that needs them says `mod common;`.
//! Not every binary uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod configs;
pub mod screen;
pub mod venv;
