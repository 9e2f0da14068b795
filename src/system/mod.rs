//! Everything that touches the machine. Each submodule returns plain data that both the TUI and
//! the headless subcommands render.

pub mod checkout;
pub mod checks;
pub mod gpu;
pub mod host;
pub mod inventory;
pub mod ports;
pub mod procs;
pub mod python;
pub mod signals;
pub mod tail;
