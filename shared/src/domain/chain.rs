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

/// An entry of a chain: its place, its hash and the content the hash covers.
/// The verifier and [`chained`] work on any such entry.
pub trait Link: Sized {
    /// The label that keeps one chain's hashes apart from another's.
    const LABEL: &'static [u8];
    type Content: serde::Serialize;
    /// `(seq, prev_hash, hash, content)`.
    fn parts(&self) -> (u64, &str, &str, &Self::Content);
    fn from_parts(seq: u64, prev_hash: String, hash: String, content: Self::Content) -> Self;

    fn recomputed_hash(&self) -> String {
        let (seq, prev_hash, _, content) = self.parts();
        content_hash::<Self>(seq, prev_hash, content)
    }
}

/// Chains `content` after `prev` (or after genesis for the first entry).
pub fn chained<L: Link>(prev: Option<&L>, content: L::Content) -> L {
    let (seq, prev_hash) = prev.map_or((1, GENESIS_HASH.to_owned()), |p| {
        let (seq, _, hash, _) = p.parts();
        (seq + 1, hash.to_owned())
    });
    let hash = content_hash::<L>(seq, &prev_hash, &content);
    L::from_parts(seq, prev_hash, hash, content)
}

fn content_hash<L: Link>(seq: u64, prev_hash: &str, content: &L::Content) -> String {
    let canonical = serde_json::to_vec(content).expect("chain content serializes");
    link_hash(L::LABEL, seq, prev_hash, &canonical)
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
        let (entry_seq, entry_prev, entry_hash, _) = entry.parts();
        if entry_seq != seq + i as u64 + 1 || entry_prev != prev_hash {
            return Err(ChainError::Broken { seq: entry_seq });
        }
        if entry.recomputed_hash() != entry_hash {
            return Err(ChainError::Altered { seq: entry_seq });
        }
        prev_hash = entry_hash.to_owned();
    }
    Ok(())
}
