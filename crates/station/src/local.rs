//! The station that runs inside the server process (the demo's "This workstation").

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tessera_core::ids::StationId;
use tessera_core::ports::*;

/// Smart-card readers that are not inside a simulated printer: PC/SC readers, supplied by the
/// server (which owns the card crate) so that this crate stays free of card code.
#[async_trait]
pub trait ReaderProvider: Send + Sync {
    async fn readers(&self) -> Result<Vec<String>, PortError>;
    async fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, CardError>;
    /// Whether a card is in `reader`, when the reader can tell.
    async fn card_present(&self, _reader: &str) -> Option<bool> {
        None
    }
}

pub struct LocalStation {
    /// Replaced whole when an administrator adds or removes a printer; a print already running
    /// keeps the printer it started with.
    printers: RwLock<Vec<Arc<dyn CardPrinter>>>,
    readers: Option<Arc<dyn ReaderProvider>>,
}

impl LocalStation {
    pub fn new(printers: Vec<Arc<dyn CardPrinter>>) -> Self {
        Self {
            printers: RwLock::new(printers),
            readers: None,
        }
    }

    /// Puts a new set of printers on the station (the configuration changed).
    pub fn set_printers(&self, printers: Vec<Arc<dyn CardPrinter>>) {
        *self.printers.write().expect("printers lock") = printers;
    }

    /// The printers now on the station.
    pub fn all_printers(&self) -> Vec<Arc<dyn CardPrinter>> {
        self.printers.read().expect("printers lock").clone()
    }

    /// Adds real readers: a printer can then be paired with one of them as its encoder.
    pub fn with_readers(mut self, readers: Arc<dyn ReaderProvider>) -> Self {
        self.readers = Some(readers);
        self
    }

    pub fn printer(&self, name: &str) -> Result<Arc<dyn CardPrinter>, PortError> {
        self.all_printers()
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| PortError::new(format!("this station has no printer named {name:?}")))
    }
}

#[async_trait]
impl StationPort for LocalStation {
    async fn printers(&self) -> Result<Vec<PrinterInfo>, PortError> {
        let printers = self.all_printers();
        let mut out = Vec::with_capacity(printers.len());
        for p in &printers {
            out.push(p.status().await);
        }
        Ok(out)
    }

    async fn readers(&self) -> Result<Vec<String>, PortError> {
        let mut names: Vec<String> = self
            .all_printers()
            .iter()
            .filter_map(|p| p.encoder_reader().map(str::to_owned))
            .collect();
        if let Some(provider) = &self.readers {
            for name in provider.readers().await? {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    async fn feed_card(&self, printer: &str) -> Result<(), PortError> {
        self.printer(printer)?.feed_card().await
    }

    async fn eject_card(&self, printer: &str) -> Result<(), PortError> {
        self.printer(printer)?.eject_card().await
    }

    async fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, CardError> {
        for p in self
            .all_printers()
            .iter()
            .filter(|p| p.encoder_reader() == Some(reader))
        {
            if let Some(card) = p.connect_encoder().await {
                return card;
            }
        }
        match &self.readers {
            Some(provider) => provider.connect(reader).await,
            None => Err(CardError::NoReader(format!(
                "this station has no reader named {reader:?}: check that it is plugged in"
            ))),
        }
    }

    async fn card_present(&self, reader: &str) -> Option<bool> {
        for p in self
            .all_printers()
            .iter()
            .filter(|p| p.encoder_reader() == Some(reader))
        {
            if let Some(present) = p.card_in_encoder().await {
                return Some(present);
            }
        }
        match &self.readers {
            Some(provider) => provider.card_present(reader).await,
            None => None,
        }
    }

    async fn print(
        &self,
        printer: &str,
        job_name: &str,
        card: &RenderedCard,
    ) -> Result<PrintReceipt, PortError> {
        self.printer(printer)?.print(job_name, card).await
    }
}

/// The stations this server can reach, by id.
#[derive(Default)]
pub struct LocalStations {
    stations: BTreeMap<StationId, Arc<dyn StationPort>>,
}

impl LocalStations {
    pub fn insert(&mut self, id: StationId, station: Arc<dyn StationPort>) {
        self.stations.insert(id, station);
    }
}

impl StationDirectory for LocalStations {
    fn station(&self, id: &StationId) -> Option<Arc<dyn StationPort>> {
        self.stations.get(id).cloned()
    }
}
