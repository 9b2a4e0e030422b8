//! tessera-station (placeholder until written).
