//! Load on both listeners at once, loopback only and bounded: while idle and garbage
//! connections from several loopback addresses and a flood of refused application hellos hit
//! the admin link and the application listener, a real terminal pairs over TCP, logs in and
//! reads the configuration, and the application works. Afterwards the log holds the refusals
//! summarised and the legitimate operations, and both listeners still serve.

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Card, with_psos};
use ed25519_dalek::Signer;
use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::{KeyAttributes, KeyKind, KeyLabel, ServiceTier};
use hsm_link::frame::LengthPrefixed;
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{
    AdminRequest, AdminResponse, CardSignature, LogQuery, OfficerRole, Request, Response,
    login_message,
};
use hsm_link::server::ServeOptions;
use hsm_link::server::TcpServer;
use hsm_link::transport::StreamTransport;

type Tcp = StreamTransport<TcpStream, LengthPrefixed>;
use partition_service::access::ApiProvider;
use partition_service::admin::AdminLink;
use partition_service::app_link::{AppAuth, AppClient, AppClientError, AppError, AppServer};
use partition_service::application::HsmApplications;
use partition_service::application::refusals::REFUSAL_WINDOW_S;
use partition_service::service::genesis;

/// Hog connections per listener (idle and garbage), from `HOG_SOURCES` addresses.
const HOGS: usize = 200;
const HOG_SOURCES: u8 = 10;
/// Refused application hellos, from `FLOOD_SOURCES` addresses.
const FLOOD: usize = 300;
const FLOOD_SOURCES: u8 = 3;

fn raw_from(local: IpAddr, addr: SocketAddr) -> Option<TcpStream> {
    use rustix::net::{AddressFamily, SocketType};
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).ok()?;
    rustix::net::bind(&fd, &SocketAddr::new(local, 0)).ok()?;
    rustix::net::connect(&fd, &addr).ok()?;
    Some(TcpStream::from(fd))
}

/// Opens `HOGS` connections to `addr`, every other one sending garbage, one every 5 ms, and
/// holds them until the returned handle is joined.
fn hog(addr: SocketAddr) -> std::thread::JoinHandle<Vec<TcpStream>> {
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for i in 0..HOGS {
            let source = IpAddr::V4(Ipv4Addr::new(127, 0, 7, 1 + (i as u8 % HOG_SOURCES)));
            if let Some(mut stream) = raw_from(source, addr) {
                if i % 2 == 1 {
                    let _ = stream.write_all(b"\x00\x00\x10\x00GET / HTTP/1.1\r\n\r\n");
                }
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        held
    })
}

fn admin(conn: &mut Connection<Tcp>, request: AdminRequest) -> AdminResponse {
    match conn.call(Request::Admin(request)) {
        Ok(Response::Admin(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn login(conn: &mut Connection<Tcp>, f: &common::Fixture, cards: &[&Card]) {
    let role = OfficerRole::Pso;
    let AdminResponse::Challenge { nonce, .. } = admin(conn, AdminRequest::LoginChallenge { role })
    else {
        panic!("no challenge")
    };
    let message = login_message(conn.session().channel_binding(), &nonce, &f.partition, role);
    let signatures = cards
        .iter()
        .map(|c| CardSignature {
            signing_key: c.key.verifying_key().to_bytes(),
            signature: c.key.sign(&message).to_bytes(),
        })
        .collect();
    assert!(matches!(
        admin(conn, AdminRequest::Login { role, signatures }),
        AdminResponse::LoggedIn { .. }
    ));
}

fn terminal(
    addr: SocketAddr,
    key: &StaticKeypair,
    mode: ClientMode,
    f: &common::Fixture,
) -> Connection<Tcp> {
    let stream = TcpStream::connect(addr).unwrap();
    let transport = StreamTransport::tcp(stream).unwrap();
    client::connect(
        transport,
        key,
        f.partition.clone(),
        mode,
        ConnectOptions::default(),
    )
    .unwrap()
}

#[test]
fn both_listeners_serve_the_legitimate_users_under_a_flood() {
    let (f, mut setup, cards) = with_psos(ServiceTier::Platinum);
    setup
        .login(OfficerRole::Pso, &[&cards[0], &cards[1]])
        .unwrap();
    let AdminResponse::Credentials(credentials) =
        setup.admin(AdminRequest::ResetCredentials).unwrap()
    else {
        panic!()
    };
    setup.close();

    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let identity = Arc::new(StaticKeypair::from_secret(zeroize::Zeroizing::new(
        *f.hsm.keys().identity().secret_bytes(),
    )));
    let admin_server = TcpServer::spawn(
        loopback,
        identity,
        ServeOptions::default(),
        Arc::clone(&f.hsm) as Arc<dyn hsm_link::trust::TrustStore>,
        Arc::new(AdminLink::new(Arc::clone(&f.hsm))),
        |_| {},
    )
    .unwrap();
    let app_server =
        AppServer::spawn(loopback, Arc::new(HsmApplications(Arc::clone(&f.hsm)))).unwrap();
    let (admin_addr, app_addr) = (admin_server.local_addr(), app_server.local_addr());

    // The application trades its setup password before the flood.
    let (_, secret) = AppClient::connect(
        app_addr,
        &f.partition,
        ApiProvider::Jce,
        AppAuth::SetupPassword(credentials.setup_password),
    )
    .unwrap();
    let secret = secret.unwrap();

    let hogs = [hog(admin_addr), hog(app_addr)];
    let flood = std::thread::spawn(move || {
        let mut refused = 0;
        for i in 0..FLOOD {
            let source = IpAddr::V4(Ipv4Addr::new(127, 0, 8, 1 + (i as u8 % FLOOD_SOURCES)));
            let wrong = AppAuth::PermanentSecret("not-the-secret".into());
            let partition = hsm_link::domain::PartitionId::new("bank-1").unwrap();
            match AppClient::connect_from(source, app_addr, &partition, ApiProvider::Jce, wrong) {
                Err(AppClientError::Refused(AppError::BadCredentials)) => refused += 1,
                Err(_) => {} // shed or closed by the hogs' pressure
                Ok(_) => panic!("a wrong secret was accepted"),
            }
        }
        refused
    });

    // Meanwhile: a new terminal pairs over TCP, logs in and reads the configuration.
    std::thread::sleep(Duration::from_millis(300));
    let code = f.hsm.issue_pairing_code(&f.partition, genesis()).unwrap();
    let key = StaticKeypair::generate().unwrap();
    let mut pso = terminal(admin_addr, &key, ClientMode::Pairing(code), &f);
    login(&mut pso, &f, &[&cards[1], &cards[2]]);
    assert!(matches!(
        admin(&mut pso, AdminRequest::GetConfig),
        AdminResponse::Config(_)
    ));
    // And the application works.
    let (mut app, _) = AppClient::connect(
        app_addr,
        &f.partition,
        ApiProvider::Jce,
        AppAuth::permanent(&secret),
    )
    .unwrap();
    let attributes = KeyAttributes {
        extractable: false,
        sensitive: true,
        modifiable: false,
    };
    app.generate(
        KeyKind::Aes256,
        KeyLabel::new("under-load").unwrap(),
        attributes,
        false,
    )
    .unwrap();

    let refused = flood.join().unwrap();
    assert!(refused > FLOOD / 2, "{refused} of {FLOOD} hellos answered");
    let held: Vec<_> = hogs.into_iter().map(|h| h.join().unwrap()).collect();

    // Both listeners still serve, with the hogs still connected.
    assert!(matches!(
        admin(&mut pso, AdminRequest::GetConfig),
        AdminResponse::Config(_)
    ));
    assert_eq!(app.list().unwrap().len(), 1);
    // A pinned session completes its handshake (it then closes without a request).
    let again = terminal(
        admin_addr,
        &key,
        ClientMode::Pinned {
            hsm: f.hsm.keys().identity_public(),
        },
        &f,
    );
    drop(again);

    // A window later, the next hello writes the summary of what was not logged one by one.
    f.clock_offset.fetch_add(REFUSAL_WINDOW_S, Ordering::SeqCst);
    drop(
        AppClient::connect(
            app_addr,
            &f.partition,
            ApiProvider::Jce,
            AppAuth::permanent(&secret),
        )
        .unwrap(),
    );
    let mut log = Vec::new();
    pso.call_download(
        Request::Admin(AdminRequest::ExportLog {
            query: LogQuery::from(1, 0),
        }),
        &mut log,
    )
    .unwrap();
    let log = String::from_utf8(log).unwrap();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"op\":\"app.connect\"") && l.contains("refused"))
        .collect();
    assert!(
        refusals.len() <= FLOOD_SOURCES as usize + 1,
        "{} refusal entries",
        refusals.len()
    );
    let summary = refusals.last().unwrap();
    let counted = refused - (refusals.len() - 1);
    assert!(
        summary.contains(&format!("\"refused\":\"{counted}\"")),
        "{summary}"
    );
    for op in [
        "pairing.complete",
        "login",
        "key.generate",
        "credentials.trade",
    ] {
        assert!(
            log.contains(&format!("\"op\":\"{op}\"")),
            "no {op} in the log"
        );
    }
    drop(held);
}
