//! Tessera's benchmarks, kept out of the server library: each module sets up a real data folder
//! (SQLite, the software CA, the simulated card printer) and measures one thing end to end, and
//! the `tessera bench*` commands print the figures. `issuance` personalises and renders cards and
//! measures `/healthz` while the heaviest accepted layout is drawn; `ca` signs certificates beside
//! `openssl speed`; `render` draws cards beside `rsvg-convert`; `station` issues through a station
//! with an injected network round trip, with and without APDU scripts; `people` imports a large
//! HR export and measures the Users page's search; `load` runs replicas of `tessera serve` under many
//! stations and checks the database afterwards.

pub mod ca;
pub mod issuance;
pub mod load;
pub mod people;
pub mod render;
pub mod station;
