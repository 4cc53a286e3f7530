//! A TCP front for a test receiver that forwards connections to it, or resets them
//! (RST, as a crashed peer or a middlebox does) while told to, open ones included.

use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::receiver::Behaviour;

/// Serves `front` on a thread of its own, forwarding to `127.0.0.1:backend`; the
/// returned sender switches it.
pub fn spawn(
    front: std::net::TcpListener,
    backend: u16,
) -> anyhow::Result<watch::Sender<Behaviour>> {
    front.set_nonblocking(true)?;
    let (tx, rx) = watch::channel(Behaviour::Healthy);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = TcpListener::from_std(front) else {
                return;
            };
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, backend, rx.clone()));
            }
        });
    });
    Ok(tx)
}

fn resetting(rx: &watch::Receiver<Behaviour>) -> bool {
    *rx.borrow() == Behaviour::ResetsConnections
}

async fn forward(mut client: TcpStream, backend: u16, mut rx: watch::Receiver<Behaviour>) {
    if !resetting(&rx) {
        let Ok(mut server) = TcpStream::connect(("127.0.0.1", backend)).await else {
            return;
        };
        let until_reset = async {
            while rx.changed().await.is_ok() {
                if resetting(&rx) {
                    return;
                }
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
            () = until_reset => {}
        }
    }
    // Linger 0: closing sends RST instead of FIN.
    let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
    drop(client);
}
