//! tessera-print (placeholder until written).
