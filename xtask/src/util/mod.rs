//! Leaves: helpers that import nothing of the rest of the crate.

pub(crate) mod files;
pub(crate) mod lines;
pub(crate) mod paths;
pub(crate) mod process;
pub(crate) mod signals;
pub(crate) mod units;
