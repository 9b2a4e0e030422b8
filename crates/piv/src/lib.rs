//! tessera-piv (placeholder until written).
