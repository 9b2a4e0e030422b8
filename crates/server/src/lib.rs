//! tessera-server (placeholder until written).
