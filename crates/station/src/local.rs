//! The station that runs inside the server process (the demo's "This workstation").

use crate::simulated::SimulatedCardPrinter;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_core::ids::StationId;
use tessera_core::ports::*;

/// Smart-card readers that are not inside a simulated printer: PC/SC readers, supplied by the
/// server (which owns the card crate) so that this crate stays free of card code.
#[async_trait]
pub trait ReaderProvider: Send + Sync {
    async fn readers(&self) -> Result<Vec<String>, PortError>;
    async fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, CardError>;
}

pub struct LocalStation {
    printers: Vec<Arc<SimulatedCardPrinter>>,
    readers: Option<Arc<dyn ReaderProvider>>,
}

impl LocalStation {
    pub fn new(printers: Vec<Arc<SimulatedCardPrinter>>) -> Self {
        Self {
            printers,
            readers: None,
        }
    }

    /// Adds real readers: a printer can then be paired with one of them as its encoder.
    pub fn with_readers(mut self, readers: Arc<dyn ReaderProvider>) -> Self {
        self.readers = Some(readers);
        self
    }

    pub fn printer(&self, name: &str) -> Result<&Arc<SimulatedCardPrinter>, PortError> {
        self.printers
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| PortError::new(format!("this station has no printer named {name:?}")))
    }
}

#[async_trait]
impl StationPort for LocalStation {
    async fn printers(&self) -> Result<Vec<PrinterInfo>, PortError> {
        Ok(self
            .printers
            .iter()
            .map(|p| PrinterInfo {
                name: p.name.clone(),
                kind: "simulated".into(),
                encoder_reader: Some(p.encoder_reader.clone()),
                state: "idle".into(),
            })
            .collect())
    }

    async fn readers(&self) -> Result<Vec<String>, PortError> {
        Ok(self
            .printers
            .iter()
            .map(|p| p.encoder_reader.clone())
            .collect())
    }

    async fn feed_card(&self, printer: &str) -> Result<(), PortError> {
        let p = self.printer(printer)?.clone();
        tokio::task::spawn_blocking(move || p.feed())
            .await
            .map_err(|e| PortError::new(e.to_string()))??;
        Ok(())
    }

    async fn connect(&self, reader: &str) -> Result<Box<dyn CardTransport>, CardError> {
        if let Some(p) = self.printers.iter().find(|p| p.encoder_reader == reader) {
            return p.connect();
        }
        match &self.readers {
            Some(provider) => provider.connect(reader).await,
            None => Err(CardError::Unreachable(format!(
                "this station has no reader named {reader:?}"
            ))),
        }
    }

    async fn print(
        &self,
        printer: &str,
        job_name: &str,
        card: &RenderedCard,
    ) -> Result<PrintReceipt, PortError> {
        let p = self.printer(printer)?.clone();
        let (job_name, card) = (job_name.to_owned(), card.clone());
        tokio::task::spawn_blocking(move || p.print(&job_name, &card))
            .await
            .map_err(|e| PortError::new(e.to_string()))?
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
