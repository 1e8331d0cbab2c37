//! Digests of plain data: what kai records to tell that something changed without
//! keeping it (a configuration, a host's facts, a masked value).

use serde::Serialize;
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of anything serializable (its JSON, keys in a fixed order).
pub fn of<T: Serialize + ?Sized>(value: &T) -> String {
    let json = serde_json::to_vec(value).expect("plain data always serializes");
    let digest = Sha256::digest(&json);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
