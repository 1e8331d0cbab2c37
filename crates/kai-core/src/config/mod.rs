//! The configuration repository: its model, how it is loaded from text, and its errors.

mod error;
pub mod lenient;
mod load;
mod model;
#[cfg(test)]
mod reference;

pub use error::*;
pub use load::*;
pub use model::*;
