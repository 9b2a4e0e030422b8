//! Running the HTTP server until Ctrl-C or SIGTERM.

use crate::app::router;
use crate::wiring::Tessera;
use std::net::SocketAddr;

pub async fn serve(tessera: Tessera, listen: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!("Operator Portal on http://{}", listener.local_addr()?);
    axum::serve(listener, router(tessera))
        .with_graceful_shutdown(shutdown())
        .await
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
