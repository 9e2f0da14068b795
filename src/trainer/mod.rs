//! What dpgui knows about diffusion-pipe and the DeepSpeed launcher. Pure: no I/O beyond reading
//! data handed in by the caller (and, in `progress::scan_history`, a file it is pointed at).

pub mod config;
pub mod dataset;
pub mod launch;
pub mod lint;
pub mod pin;
pub mod procs;
pub mod progress;
