//! Tessera's server: the Operator Portal (server-rendered HTML), the REST API under `/api/v1`, and
//! the wiring that opens a data folder and connects one adapter to each port of the core (store,
//! CA, sealer, card renderer, stations, virtual cards). Handlers are thin: they parse, authorise,
//! call one use case of `tessera-core` and map the result.

pub mod api;
pub mod app;
pub mod auth;
pub mod back_link;
pub mod ca_admin;
pub mod cluster;
pub mod demo;
pub mod directory;
pub mod headless;
pub mod imports;
pub mod organisation;
pub mod photo_zip;
pub mod pki_http;
pub mod platform;
pub mod portal;
pub mod printers;
pub mod render_pool;
pub mod serve;
pub mod station_http;
pub mod station_process;
pub mod web_error;
pub mod wiring;

pub use app::{router, AppState};
pub use organisation::{InitSpec, StartMode};
pub use wiring::{Options, Readers, Tessera};
