//! The TCP edge the HSM's listeners share: an accept loop on its own thread that stops, and is
//! woken to see that it must, when it is dropped.
//!
//! A thread blocked in `accept` does not look at a flag; stopping sets the flag and then opens
//! one connection to the listener itself, so that `accept` returns and the loop sees the flag
//! before it hands that connection to anyone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long stopping waits to reach its own listener (it is local: this is generous).
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// After a failed `accept` (out of file descriptors, say), the loop pauses this long instead of
/// spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// A listener's accept loop, running on its own thread until [`stop`](AcceptLoop::stop) or
/// drop. It only accepts; what happens to each connection is the caller's `on_accept`.
pub struct AcceptLoop {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AcceptLoop {
    /// Hands every connection accepted on `listener` to `on_accept`, on a thread named
    /// `name`. `on_accept` runs on that thread: it should admit or drop the stream and return
    /// quickly (serve the connection on a thread of its own).
    pub fn spawn(
        listener: TcpListener,
        name: &str,
        mut on_accept: impl FnMut(TcpStream) + Send + 'static,
    ) -> std::io::Result<AcceptLoop> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    match stream {
                        Ok(stream) => on_accept(stream),
                        Err(_) => std::thread::sleep(ACCEPT_ERROR_PAUSE),
                    }
                }
            })?;
        Ok(AcceptLoop {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting: sets the flag, wakes the loop and waits for its thread. Connections
    /// already handed out are the caller's to end. Calling it again does nothing.
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&wake_addr(self.addr), WAKE_TIMEOUT);
        let _ = thread.join();
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where to connect to reach a listener bound to `addr`: an unspecified address is reached on
/// the loopback address of its family.
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn connections_reach_the_callback_until_the_loop_is_stopped() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (tx, rx) = mpsc::channel();
        let mut accept = AcceptLoop::spawn(listener, "test-accept", move |stream| {
            let _ = tx.send(stream.peer_addr().unwrap());
        })
        .unwrap();
        let addr = accept.local_addr();
        let client = TcpStream::connect(addr).unwrap();
        let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(seen, client.local_addr().unwrap());
        accept.stop();
        // The wake-up connection was not handed out, and the thread (with the callback and its
        // sender) is gone.
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        ));
        accept.stop();
    }

    #[test]
    fn a_listener_on_the_unspecified_address_is_woken_on_loopback() {
        let listener = TcpListener::bind("0.0.0.0:0").unwrap();
        let accept = AcceptLoop::spawn(listener, "test-accept", drop).unwrap();
        assert_eq!(
            wake_addr(accept.local_addr()).ip(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        // Dropping returns: the loop was woken and joined.
        drop(accept);
    }
}
