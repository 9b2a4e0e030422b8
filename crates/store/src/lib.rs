//! tessera-store (placeholder until written).
