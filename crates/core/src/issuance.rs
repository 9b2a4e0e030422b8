//! The issuance use case (written next).
