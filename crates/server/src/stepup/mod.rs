//! Step-up below HTTP: opening challenges, answering them, where they stand, and the
//! elevations they yield.

pub mod answers;
pub mod challenges;
pub mod elevations;
pub mod progress;
pub mod prompt;
mod proofs;
