//! Dataset directories on disk: the scan (being written).
