//! Hugging Face Hub downloads (being written).
