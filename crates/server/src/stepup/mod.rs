//! Step-up below HTTP: opening challenges, answering them, and the elevations they yield.

pub mod answers;
pub mod challenges;
pub mod elevations;
mod proofs;
