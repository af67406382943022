//! Benchmarks of the admin link over loopback TCP, with their budgets printed as ratios:
//! small requests per second (budget ≥ 10,000/s) and bulk transfer throughput with the framing
//! overhead in percent (budget < 3 %). Run with `cargo bench -p hsm-link`.

use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::PartitionId;
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::Request;
use hsm_link::server::{ServeOptions, TcpServer};
use hsm_link::transport::{FrameTransport, StreamTransport, TransportError};
use hsm_link::trust::MemoryTrustStore;

const SMALL_BUDGET_PER_S: f64 = 10_000.0;
const OVERHEAD_BUDGET_PERCENT: f64 = 3.0;
const TCP_LENGTH_PREFIX: u64 = 4;

/// Counts the bytes a transport receives on the wire (frames plus their length prefixes).
struct Counting<T> {
    inner: T,
    received: u64,
}

impl<T: FrameTransport> FrameTransport for Counting<T> {
    fn send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        self.inner.send(frame)
    }
    fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        let frame = self.inner.recv(timeout)?;
        self.received += frame.len() as u64 + TCP_LENGTH_PREFIX;
        Ok(frame)
    }
}

type Tcp = Counting<StreamTransport<TcpStream, hsm_link::frame::LengthPrefixed>>;

fn setup() -> (TcpServer, Connection<Tcp>) {
    let partition = PartitionId::new("bench").unwrap();
    let trust = Arc::new(MemoryTrustStore::default());
    trust.add_partition(partition.clone());
    let code = trust.issue_pairing_code(&partition).unwrap();
    let hsm = Arc::new(StaticKeypair::generate().unwrap());
    let server = TcpServer::spawn(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&hsm),
        ServeOptions::default(),
        trust,
        Arc::new(hsm_link::server::NoAdministration),
        |_| {},
    )
    .unwrap();
    let terminal = StaticKeypair::generate().unwrap();
    let connect = |mode| {
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        let t = Counting {
            inner: StreamTransport::tcp(stream).unwrap(),
            received: 0,
        };
        client::connect(
            t,
            &terminal,
            partition.clone(),
            mode,
            ConnectOptions::default(),
        )
        .unwrap()
    };
    connect(ClientMode::Pairing(code)).close().unwrap();
    let conn = connect(ClientMode::Pinned { hsm: hsm.public() });
    (server, conn)
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let (_server, mut conn) = setup();

    let mut group = criterion.benchmark_group("link-tcp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ping round trip", |b| {
        b.iter(|| conn.call(Request::Ping).unwrap())
    });
    const BULK: u64 = 64 << 20;
    group.throughput(Throughput::Bytes(BULK));
    group.sample_size(10);
    group.bench_function("link test 64 MiB", |b| {
        b.iter(|| conn.link_test(BULK).unwrap())
    });
    group.finish();

    // The budgets, measured once more outside criterion and printed as ratios.
    let n = 20_000;
    let started = Instant::now();
    for _ in 0..n {
        conn.call(Request::Ping).unwrap();
    }
    let per_s = f64::from(n) / started.elapsed().as_secs_f64();

    let before = conn.transport_mut().received;
    let report = conn.link_test(BULK).unwrap();
    let wire = conn.transport_mut().received - before;
    let overhead = (wire as f64 - BULK as f64) / BULK as f64 * 100.0;
    let mib_s = BULK as f64 / (1 << 20) as f64 / report.elapsed.as_secs_f64();

    println!();
    println!("link budgets (loopback TCP, one session):");
    println!(
        "  small requests: {per_s:>10.0} /s   budget >= {SMALL_BUDGET_PER_S:.0} /s   ratio {:.2}",
        per_s / SMALL_BUDGET_PER_S
    );
    println!(
        "  bulk transfer:  {mib_s:>10.1} MiB/s  framing overhead {overhead:.3} % (budget < {OVERHEAD_BUDGET_PERCENT} %)   ratio {:.3}",
        overhead / OVERHEAD_BUDGET_PERCENT
    );
}
