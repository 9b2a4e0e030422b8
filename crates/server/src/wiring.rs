//! Opens a data folder and wires one adapter to each port of the core.
//!
//! Data folder layout: `tessera.db` (SQLite, unless a PostgreSQL URL is given), `secrets/master.key`
//! (the key that seals card secrets and CA keys; mode 0600), `ca/` (CA certificates and sealed keys),
//! `cards/` (state files of virtual cards), `printed/` (what the simulated printer printed).

use crate::demo;
use crate::organisation::{self, InitSpec, StartMode};
use crate::platform::{OsRandom, SystemClock};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_core::ids::StationId;
use tessera_core::issuance::Services;
use tessera_core::jobs::JobRunner;
use tessera_core::model::Station;
use tessera_core::ports::*;
use tessera_core::Password;
use tessera_pki::{AesGcmSealer, SoftwareCa};
use tessera_station::link::StationHub;
use tessera_station::{LocalStation, ReaderProvider, SimulatedCardPrinter, VirtualCards};
use tessera_store::SqlStore;

#[derive(Clone, Debug)]
pub struct Options {
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL; SQLite in the data folder otherwise.
    pub database_url: Option<String>,
    /// Which readers the in-process station offers besides the simulated printer's encoder.
    pub readers: Readers,
    /// Where relying parties reach this server (`http://cms.example.org`): certificates point
    /// their CRL distribution point and AIA (OCSP, CA issuers) there. None leaves them out.
    pub public_url: Option<String>,
    /// The organisation's registered certificate policy arc (`1.3.6.1.4.1.<PEN>.1`): the slots'
    /// default policies go under it. None: the 2.25 UUID arc derived from the root CA.
    pub policy_arc: Option<String>,
    /// How long a request to a remote station waits for it to reconnect before failing.
    pub station_reconnect_wait: std::time::Duration,
    /// Send independent card commands as APDU scripts (one round trip each through a station).
    /// Off only to measure what they save.
    pub apdu_scripts: bool,
    /// Whether a first start creates the demo organisation or refuses an uninitialised database.
    pub start: StartMode,
    /// How long a job's lease lasts without a heartbeat: after a crash, `serve` takes the
    /// process's jobs over once their leases have run out.
    pub job_lease: std::time::Duration,
    /// PEM files of key attestation roots trusted besides Yubico's, which always are.
    pub attestation_roots: Vec<PathBuf>,
    /// Trust the virtual card's simulated attestation root. Its key is public (it is a test
    /// root), so only the demo and tests turn this on.
    pub trust_virtual_card_attestation: bool,
    /// One of several replicas on one database (see `cluster`); None when alone.
    pub cluster: Option<ClusterOptions>,
}

/// How replicas of the server reach each other.
#[derive(Clone)]
pub struct ClusterOptions {
    /// Where the other replicas reach this one (`http://10.0.0.5:8080`).
    pub url: String,
    /// Shared by every replica; sent with each forwarded request.
    pub secret: String,
}

impl std::fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("ClusterOptions")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// SQLite in `data_dir`, the simulated readers, no public URL.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            readers: Readers::Simulated,
            public_url: None,
            policy_arc: None,
            station_reconnect_wait: tessera_station::link::DEFAULT_RECONNECT_WAIT,
            apdu_scripts: true,
            job_lease: tessera_core::jobs::DEFAULT_LEASE,
            start: StartMode::Demo,
            attestation_roots: Vec::new(),
            trust_virtual_card_attestation: false,
            cluster: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Readers {
    /// Only the simulated card printer's encoder.
    #[default]
    Simulated,
    /// Also the PC/SC readers pcscd knows (needs the `pcsc` build feature).
    Pcsc,
}

/// The organisation name the demo CA and layouts carry.
pub const ORGANISATION: &str = "Tessera Demo Corp";

/// A running Tessera: the core's services and the concrete adapters behind them.
#[derive(Clone)]
pub struct Tessera {
    pub services: Services,
    pub store: Arc<SqlStore>,
    pub ca: Arc<SoftwareCa>,
    pub data_dir: PathBuf,
    /// The demo station's simulated printer (for `tessera issue` output and tests).
    pub demo_printer: Arc<SimulatedCardPrinter>,
    /// The in-process station: its printers come from its `Station` record.
    pub station: Arc<LocalStation>,
    /// Every station: the in-process one and the remote ones connected over the station protocol.
    pub hub: Arc<StationHub>,
    /// Runs this process's issuance jobs under leases in the database.
    pub runner: JobRunner,
    /// The `[directory]` section's directory, when there is one ([`Tessera::with_directory`]).
    pub directory: Option<Arc<crate::directory::DirectorySync>>,
    /// The other replicas, when this process is one of several (`cluster`).
    pub peers: Option<Arc<crate::cluster::Peers>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

fn err(context: &str) -> impl Fn(String) -> StartError + '_ {
    move |e| StartError(format!("{context}: {e}"))
}

/// The key attestation roots: Yubico's, those the configuration names, and the virtual card's
/// simulated root when the options trust it.
fn attestation_roots(
    options: &Options,
) -> Result<tessera_pki::attestation::AttestationRoots, StartError> {
    let mut roots = tessera_pki::attestation::AttestationRoots::yubico();
    for path in &options.attestation_roots {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            StartError(format!(
                "cannot read the attestation root {}: {e}",
                path.display()
            ))
        })?;
        roots = roots.with_roots_pem(&pem).map_err(|e| {
            StartError(format!(
                "the attestation root {} is not usable: {e}",
                path.display()
            ))
        })?;
    }
    if options.trust_virtual_card_attestation {
        tracing::warn!(
            "trusting the virtual card's attestation root, whose private key is public: \
             for the demo and tests only"
        );
        roots = roots
            .with_root_der(&tessera_piv::card::attestation::root_certificate_der())
            .map_err(|e| StartError(format!("the virtual card's attestation root: {e}")))?;
    }
    Ok(roots)
}

/// Virtual PIV cards as state files, made and opened with `tessera-piv`.
pub(crate) struct PivVirtualCards {
    random: Arc<dyn Random>,
}

impl PivVirtualCards {
    pub(crate) fn new() -> Self {
        Self {
            random: Arc::new(OsRandom),
        }
    }
}

impl VirtualCards for PivVirtualCards {
    fn insert_blank(&self, dir: &Path) -> Result<PathBuf, PortError> {
        let serial = {
            let b = self.random.bytes::<4>();
            // Eight decimal digits, like a YubiKey serial.
            10_000_000 + u32::from_be_bytes(b) % 89_999_999
        };
        let path = dir.join(format!("card-{serial}.json"));
        let card = tessera_piv::VirtualCard::blank(serial, &mut rand_core::OsRng);
        card.save(&path)
            .map_err(|e| PortError::new(format!("cannot create a blank card: {e}")))?;
        Ok(path)
    }

    fn connect(&self, state_file: &Path) -> Result<Box<dyn CardTransport>, CardError> {
        Ok(Box::new(tessera_piv::VirtualCardTransport::open(
            state_file,
        )?))
    }
}

impl Tessera {
    /// Opens the data folder and its database. In [`StartMode::Demo`] a first start creates the
    /// demo organisation and the operator `admin`, whose one-time password is returned; in
    /// [`StartMode::Existing`] the database must have been initialised (`tessera init`) and the
    /// data folder must be the one that belongs to it. Nothing here recovers jobs: only a
    /// serving process does ([`crate::serve::serve`]).
    pub async fn open(options: &Options) -> Result<(Self, Option<Password>), StartError> {
        let dir = &options.data_dir;
        if options.start == StartMode::Existing {
            if !dir.exists() {
                return Err(StartError(format!(
                    "there is no Tessera data folder at {}: create the organisation with \
                     `tessera init --data {}` (or try `tessera demo`)",
                    dir.display(),
                    dir.display()
                )));
            }
            let store = open_store(options).await?;
            let (installation, initialised) = organisation_of(&store).await?;
            if !initialised {
                return Err(StartError(format!(
                    "the database of {} was never initialised: run `tessera init --data {}` \
                     first (or try `tessera demo`)",
                    dir.display(),
                    dir.display()
                )));
            }
            if !dir.join("secrets").join("master.key").exists() {
                return Err(StartError(format!(
                    "{} has no master key (secrets/master.key), so it is not the data folder of \
                     this database: start Tessera with the data folder of the server that ran \
                     `tessera init`",
                    dir.display()
                )));
            }
            if !tessera_pki::config::has_ca(&dir.join("ca")) {
                return Err(StartError(format!(
                    "{} has no certificate authority (ca/), so it is not the data folder of \
                     this database",
                    dir.display()
                )));
            }
            let tessera = Self::assemble(options, store, false).await?;
            tessera.adopt_or_verify(installation).await?;
            return Ok((tessera, None));
        }
        let store = open_store(options).await?;
        let (installation, initialised) = organisation_of(&store).await?;
        let tessera = Self::assemble(options, store, true).await?;
        if !initialised {
            let spec = InitSpec {
                demo_content: true,
                simulated_printer: true,
                admin_password: None,
                admin: "admin".into(),
            };
            let password = organisation::init(&tessera, &spec).await?;
            tessera.reload_local_station().await?;
            return Ok((tessera, password));
        }
        tessera.adopt_or_verify(installation).await?;
        Ok((tessera, None))
    }

    /// `tessera init`: creates a new organisation in the data folder's database. Refuses a
    /// database that already has one. Returns the first administrator's password when it was
    /// generated.
    pub async fn init(
        options: &Options,
        spec: &InitSpec,
    ) -> Result<(Self, Option<Password>), StartError> {
        let store = open_store(options).await?;
        if organisation_of(&store).await?.1 {
            return Err(StartError(
                "this database already belongs to an organisation: start it with `tessera \
                 serve` (a new organisation needs an empty database)"
                    .into(),
            ));
        }
        let tessera = Self::assemble(options, store, true).await?;
        let password = organisation::init(&tessera, spec).await?;
        tessera.reload_local_station().await?;
        Ok((tessera, password))
    }

    /// A database made before installations were recorded gets its tie to this data folder;
    /// any other is checked against it.
    async fn adopt_or_verify(&self, installation: Option<Installation>) -> Result<(), StartError> {
        match installation {
            Some(installation) => organisation::verify(self, &installation),
            None => {
                let mut changes = tessera_core::changes::Changes::new();
                changes.push(tessera_core::changes::Change::InsertInstallation(
                    organisation::installation_of(self, "upgraded"),
                ));
                match self.store.commit(&changes).await {
                    Ok(()) => {
                        tracing::info!("database upgraded: tied to this data folder");
                        Ok(())
                    }
                    // Another process adopted it at the same moment: check against its tie.
                    Err(StoreError::Conflict) => {
                        let theirs = self.store.installation().await.ok().flatten();
                        match theirs {
                            Some(i) => organisation::verify(self, &i),
                            None => Err(StartError("cannot record the installation".into())),
                        }
                    }
                    Err(e) => Err(StartError(format!("cannot record the installation: {e}"))),
                }
            }
        }
    }

    /// Builds the in-process station's printers from its record again (after `init` wrote it).
    async fn reload_local_station(&self) -> Result<(), StartError> {
        crate::printers::reload(self)
            .await
            .map_err(|e| StartError(format!("cannot set up this server's station: {e}")))
    }

    /// Wires the adapters of a data folder. `create`: make the master key and the CA when they
    /// are missing (demo and init); a plain start never creates them.
    async fn assemble(
        options: &Options,
        store: SqlStore,
        create: bool,
    ) -> Result<Self, StartError> {
        let dir = &options.data_dir;
        let store = Arc::new(store);
        let random: Arc<dyn Random> = Arc::new(OsRandom);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let key_file = dir.join("secrets").join("master.key");
        if !create && !key_file.exists() {
            return Err(StartError(format!("{} is missing", key_file.display())));
        }
        let sealer: Arc<dyn Sealer> = Arc::new(
            AesGcmSealer::load_or_create(&key_file)
                .map_err(|e| err("cannot open the master key")(e.to_string()))?,
        );
        // `ca/ca.json` (written by `tessera ca init` or `ca import`) says where the CA keys are;
        // without it: software keys under the master key, created by demo or init.
        let mut ca = tessera_pki::config::open_ca(
            &dir.join("ca"),
            sealer.clone(),
            ORGANISATION,
            clock.now(),
            random.clone(),
        )
        .map_err(|e| err("cannot open the certificate authority")(e.to_string()))?;
        if let Some(url) = &options.public_url {
            ca = ca
                .with_public_url(url)
                .map_err(|e| err("the public URL is not usable")(e.to_string()))?;
        }
        if let Some(arc) = &options.policy_arc {
            ca = ca
                .with_policy_arc(arc)
                .map_err(|e| err("the policy arc is not usable")(e.to_string()))?;
        }
        // The content signer is made (or renewed) now, after the public URL is known, so that
        // its certificate carries the CRL and AIA URLs too.
        let ca = ca.with_clock(clock.clone());
        ca.prepare_content_signer(clock.now())
            .map_err(|e| err("cannot prepare the content signer")(e.to_string()))?;
        let ca = Arc::new(ca);
        let cards: Arc<dyn VirtualCards> = Arc::new(PivVirtualCards {
            random: random.clone(),
        });
        let demo_printer = Arc::new(SimulatedCardPrinter::new(
            demo::PRINTER,
            demo::ENCODER,
            dir.join("cards"),
            dir.join("printed"),
            cards,
        ));
        // The in-process station's printers as its record says; without a record (a production
        // organisation made without the simulated printer) it has none.
        let record = store
            .stations()
            .await
            .map_err(|e| StartError(format!("cannot read the stations: {e}")))?
            .into_iter()
            .find(|s| s.id.as_str() == demo::STATION_ID)
            .unwrap_or_else(|| Station {
                printers: Vec::new(),
                ..demo::demo_station()
            });
        let mut station = LocalStation::new(crate::printers::build(&record, &demo_printer));
        if options.readers == Readers::Pcsc {
            station = station.with_readers(pcsc_readers()?);
        }
        let station = Arc::new(station);
        let mut hub = StationHub::new(options.station_reconnect_wait);
        hub.insert_local(StationId::new(demo::STATION_ID), station.clone());
        // The replica's name: its runner's lease owner and its presence rows' replica.
        let instance = format!("runner-{}", random.uuid());
        let peers = options.cluster.as_ref().map(|c| {
            Arc::new(crate::cluster::Peers::new(
                store.clone(),
                instance.clone(),
                c.url.clone(),
                c.secret.clone(),
            ))
        });
        if let Some(peers) = &peers {
            hub.set_elsewhere(peers.clone());
        }
        let hub = Arc::new(hub);
        let services = Services {
            store: store.clone(),
            ca: ca.clone(),
            // Drawn on threads of its own within a time budget, never on an async worker.
            renderer: Arc::new(crate::render_pool::PooledRenderer::new(Arc::new(
                tessera_print::SvgRenderer::new(),
            ))),
            stations: hub.clone(),
            piv: tessera_piv::factory_with(options.apdu_scripts),
            attestation: Arc::new(attestation_roots(options)?),
            sealer,
            passwords: Arc::new(crate::auth::Argon2Passwords),
            photos: Arc::new(tessera_print::photo::PhotoNormaliser),
            clock,
            random,
        };
        let runner = JobRunner::named(services.clone(), options.job_lease, instance);
        Ok(Self {
            runner,
            services,
            store,
            ca,
            data_dir: dir.clone(),
            demo_printer,
            station,
            hub,
            directory: None,
            peers,
        })
    }
}

/// The database's organisation, and whether it has one at all: a database made before
/// installations were recorded has operators but no installation row.
async fn organisation_of(store: &SqlStore) -> Result<(Option<Installation>, bool), StartError> {
    let read = |e: StoreError| StartError(format!("cannot read the database: {e}"));
    let installation = store.installation().await.map_err(read)?;
    let initialised = installation.is_some() || store.count_operators().await.map_err(read)? > 0;
    Ok((installation, initialised))
}

/// Opens the database (SQLite in the data folder unless a URL is given) and migrates it. The
/// data folder and the database file are the owner's only.
async fn open_store(options: &Options) -> Result<SqlStore, StartError> {
    let dir = &options.data_dir;
    std::fs::create_dir_all(dir.join("secrets"))
        .map_err(|e| StartError(format!("cannot create {}: {e}", dir.display())))?;
    restrict_permissions(dir);
    restrict_permissions(&dir.join("secrets"));
    let url = match &options.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}?mode=rwc", dir.join("tessera.db").display()),
    };
    let store = SqlStore::open(&url)
        .await
        .map_err(|e| StartError(format!("cannot open the database: {e}")))?;
    if options.database_url.is_none() {
        for file in ["tessera.db", "tessera.db-wal", "tessera.db-shm"] {
            restrict_file(&dir.join(file));
        }
    }
    Ok(store)
}

#[cfg(feature = "pcsc")]
pub(crate) fn pcsc_readers() -> Result<Arc<dyn ReaderProvider>, StartError> {
    Ok(Arc::new(PcscReaders))
}

#[cfg(not(feature = "pcsc"))]
pub(crate) fn pcsc_readers() -> Result<Arc<dyn ReaderProvider>, StartError> {
    Err(StartError(
        "this build of Tessera has no PC/SC support: build it with `--features pcsc`".into(),
    ))
}

/// The readers pcscd knows, through `tessera-piv`'s PC/SC transport.
#[cfg(feature = "pcsc")]
struct PcscReaders;

#[cfg(feature = "pcsc")]
#[async_trait::async_trait]
impl ReaderProvider for PcscReaders {
    async fn readers(&self) -> Result<Vec<String>, PortError> {
        tokio::task::spawn_blocking(tessera_piv::pcsc::list_readers)
            .await
            .map_err(|e| PortError::new(e.to_string()))?
            .map_err(|e| PortError::new(e.to_string()))
    }

    async fn card_present(&self, reader: &str) -> Option<bool> {
        let reader = reader.to_owned();
        tokio::task::spawn_blocking(move || {
            tessera_piv::pcsc::wait_for_card(&reader, true, std::time::Duration::ZERO).ok()
        })
        .await
        .ok()
        .flatten()
    }

    async fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, CardError> {
        let reader = reader.to_owned();
        let transport =
            tokio::task::spawn_blocking(move || tessera_piv::pcsc::PcscTransport::connect(&reader))
                .await
                .map_err(|e| CardError::Unreachable(e.to_string()))??;
        Ok(Box::new(transport))
    }
}

#[cfg(unix)]
pub(crate) fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
pub(crate) fn restrict_permissions(_path: &Path) {}

/// Makes a file readable and writable by its owner only (when it exists).
#[cfg(unix)]
fn restrict_file(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(not(unix))]
fn restrict_file(_path: &Path) {}
