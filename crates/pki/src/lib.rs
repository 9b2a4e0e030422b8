//! tessera-pki (placeholder until written).
