//! Hash chains for append-only records (the consent ledger, the audit log):
//! each entry's hash covers a label, its sequence number, the previous
//! entry's hash and its canonical content, so an edited, removed or
//! reordered entry breaks the chain.

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `SHA-256(label || seq || prev_hash || content)`, hex.
pub fn link_hash(label: &[u8], seq: u64, prev_hash: &str, content: &[u8]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(label);
    ctx.update(&seq.to_be_bytes());
    ctx.update(prev_hash.as_bytes());
    ctx.update(content);
    hex::encode(ctx.finish())
}

/// Where a chain breaks, if it does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("entry {seq} was altered: its hash does not match its content")]
    Altered { seq: u64 },
    #[error("entry {seq} does not follow the entry before it (removed or reordered entry)")]
    Broken { seq: u64 },
}

/// One link as the verifier sees it.
pub trait Link {
    fn seq(&self) -> u64;
    fn prev_hash(&self) -> &str;
    fn hash(&self) -> &str;
    fn recomputed_hash(&self) -> String;
}

/// Verifies entries from the first, in sequence order.
pub fn verify_links<L: Link>(entries: &[L]) -> Result<(), ChainError> {
    verify_links_after(0, GENESIS_HASH, entries)
}

/// Verifies entries that follow an already verified entry (`seq`, `hash`),
/// so a long chain can be checked page by page.
pub fn verify_links_after<L: Link>(seq: u64, hash: &str, entries: &[L]) -> Result<(), ChainError> {
    let mut prev_hash = hash.to_owned();
    for (i, entry) in entries.iter().enumerate() {
        if entry.seq() != seq + i as u64 + 1 || entry.prev_hash() != prev_hash {
            return Err(ChainError::Broken { seq: entry.seq() });
        }
        if entry.recomputed_hash() != entry.hash() {
            return Err(ChainError::Altered { seq: entry.seq() });
        }
        prev_hash = entry.hash().to_owned();
    }
    Ok(())
}
