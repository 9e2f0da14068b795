//! What dpgui knows about diffusion-pipe and the DeepSpeed launcher. Pure: no I/O beyond reading
//! data handed in by the caller.

pub mod pin;
pub mod procs;
