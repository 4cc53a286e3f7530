//! TLS to PostgreSQL: a cluster of the test's own serving a certificate for
//! `localhost` signed by a CA generated here (rcgen); every `sslmode` connects or
//! refuses as libpq would, and the binaries run over a verified connection.

use anyhow::Context;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rules_e2e::services::OwnPostgres;
use rules_e2e::{free_port, wait_http_ok, Count, Process, RedisKeys};
use rules_store::db::PgTarget;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A CA and a server certificate it signed, for `localhost` only.
struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    other_ca: PathBuf,
    server_cert: String,
    server_key: String,
}

impl Pki {
    fn generate(label: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("rules-tls-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (ca_pem, ca_issuer) = ca("rule-engine test CA")?;
        let (other_pem, _) = ca("someone else's CA")?;
        let server_key = KeyPair::generate()?;
        let server = CertificateParams::new(vec!["localhost".to_owned()])?
            .signed_by(&server_key, &ca_issuer)?;
        let ca = dir.join("ca.pem");
        let other_ca = dir.join("other-ca.pem");
        std::fs::write(&ca, ca_pem)?;
        std::fs::write(&other_ca, other_pem)?;
        Ok(Self {
            dir,
            ca,
            other_ca,
            server_cert: server.pem(),
            server_key: server_key.serialize_pem(),
        })
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ca(name: &str) -> anyhow::Result<(String, Issuer<'static, KeyPair>)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), Issuer::new(params, key)))
}

/// Whether the session of `conn` is encrypted, as the server sees it.
async fn encrypted(conn: &mut AsyncPgConnection) -> anyhow::Result<bool> {
    #[derive(diesel::QueryableByName)]
    struct Ssl {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ssl: bool,
    }
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(conn)
        .await?;
    Ok(row.ssl)
}

async fn connect(url: &str, ca: Option<&Path>) -> anyhow::Result<AsyncPgConnection> {
    Ok(PgTarget::new(url, ca)?.connect().await?)
}

async fn refused(url: &str, ca: Option<&Path>) -> anyhow::Result<String> {
    match connect(url, ca).await {
        Ok(_) => anyhow::bail!("{url} connected; it must be refused"),
        Err(e) => Ok(e.to_string()),
    }
}

#[tokio::test]
async fn every_sslmode_connects_or_refuses_as_libpq_does() -> anyhow::Result<()> {
    let pki = Pki::generate("modes")?;
    let pg = OwnPostgres::start_tls(&pki.server_cert, &pki.server_key)?;
    let by_name = |mode: &str| {
        format!(
            "postgres://postgres@localhost:{}/postgres?sslmode={mode}",
            pg.port
        )
    };
    let by_ip = |mode: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode={mode}",
            pg.port
        )
    };
    let ca = Some(pki.ca.as_path());
    let other = Some(pki.other_ca.as_path());

    // verify-full: the CA signed it and it names the host.
    let mut conn = connect(&by_name("verify-full"), ca).await?;
    assert!(encrypted(&mut conn).await?);
    // The CA may also come in the URL, as libpq's sslrootcert.
    let in_url = format!(
        "{}&sslrootcert={}",
        by_name("verify-full"),
        pki.ca.display()
    );
    assert!(encrypted(&mut connect(&in_url, None).await?).await?);
    // ... not for 127.0.0.1, which the certificate does not name.
    let why = refused(&by_ip("verify-full"), ca).await?;
    assert!(why.contains("sslmode=verify-full"), "{why}");
    assert!(why.to_lowercase().contains("not valid for name"), "{why}");
    // ... nor with a CA that did not sign it.
    let why = refused(&by_name("verify-full"), other).await?;
    assert!(why.contains("UnknownIssuer"), "{why}");
    // verify-ca: the chain, whatever the name.
    assert!(encrypted(&mut connect(&by_ip("verify-ca"), ca).await?).await?);
    let why = refused(&by_ip("verify-ca"), other).await?;
    assert!(why.contains("UnknownIssuer"), "{why}");
    // require: encrypted; with a CA it is checked like verify-ca.
    assert!(encrypted(&mut connect(&by_ip("require"), None).await?).await?);
    assert!(encrypted(&mut connect(&by_ip("require"), ca).await?).await?);
    refused(&by_ip("require"), other).await?;
    // prefer (also the default) takes the server's TLS; disable never uses it.
    assert!(encrypted(&mut connect(&by_ip("prefer"), None).await?).await?);
    let default = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port);
    assert!(encrypted(&mut connect(&default, None).await?).await?);
    assert!(!encrypted(&mut connect(&by_ip("disable"), None).await?).await?);

    // A server without TLS: require refuses, prefer falls back to plain.
    let plain = OwnPostgres::start()?;
    let url = |mode: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode={mode}",
            plain.port
        )
    };
    let why = refused(&url("require"), None).await?;
    assert!(why.contains("sslmode=require"), "{why}");
    assert!(!encrypted(&mut connect(&url("prefer"), None).await?).await?);
    Ok(())
}

#[tokio::test]
async fn the_binaries_run_over_verified_tls_and_refuse_an_unverified_server() -> anyhow::Result<()>
{
    let pki = Pki::generate("binaries")?;
    let pg = OwnPostgres::start_tls(&pki.server_cert, &pki.server_key)?;
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
        pg.port
    );
    let ca_file = pki.ca.display().to_string();
    let tls_env = |ca: &str| {
        vec![
            ("DATABASE_URL", url.clone()),
            ("RULES__DATABASE__CA_FILE", ca.to_owned()),
        ]
    };

    // A CA that did not sign the server's certificate: one line saying why.
    let mut migrate = Process::start(
        "rules-migrate",
        &tls_env(&pki.other_ca.display().to_string()),
    )?;
    let status = migrate.wait(Duration::from_secs(30)).await?;
    let (_, err) = migrate.output().await?;
    assert!(!status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("sslmode=verify-full"), "{err}");
    assert!(err.contains("UnknownIssuer"), "{err}");

    // The right CA: migrations apply over TLS.
    let mut migrate = Process::start("rules-migrate", &tls_env(&ca_file))?;
    let status = migrate.wait(Duration::from_secs(60)).await?;
    let (out, err) = migrate.output().await?;
    assert!(status.success(), "{out}{err}");
    assert!(out.contains("the schema is up to date"), "{out}");

    // The api and the worker are ready over it, and the api's rule reaches the worker
    // through the listener's own (TLS) connection.
    let api_port = free_port()?;
    let mut env = tls_env(&ca_file);
    env.extend(
        rules_e2e::api_env(&url, api_port, true, &[])
            .into_iter()
            .skip(1),
    );
    let mut api = Process::start("rules-api", &env)?;
    wait_http_ok(
        &format!("http://127.0.0.1:{api_port}/health/ready"),
        Duration::from_secs(30),
    )
    .await
    .context("api ready over TLS")?;
    let keys = RedisKeys::new("tls-worker");
    let worker_port = free_port()?;
    let mut env = tls_env(&ca_file);
    env.extend(keys.redis.env());
    env.extend([
        ("RULES__WORKER__STREAMS", keys.key("events")),
        ("RULES__WORKER__DEAD_LETTER_STREAM", keys.key("dead")),
        (
            "RULES__WORKER__HTTP_BIND",
            format!("127.0.0.1:{worker_port}"),
        ),
    ]);
    let mut worker = Process::start("rules-worker", &env)?;
    wait_http_ok(
        &format!("http://127.0.0.1:{worker_port}/health/ready"),
        Duration::from_secs(30),
    )
    .await
    .context("worker ready over TLS")?;
    // Every session the server holds for this cluster's database is encrypted.
    let mut admin = connect(&url, Some(&pki.ca)).await?;
    let plain: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.backend_type = 'client backend' AND NOT s.ssl",
    )
    .get_result(&mut admin)
    .await?;
    let all: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend'",
    )
    .get_result(&mut admin)
    .await?;
    assert_eq!(plain.n, 0);
    assert!(
        all.n >= 3,
        "the api, the worker and its listener: {}",
        all.n
    );
    assert!(api.terminate().await?.success());
    assert!(worker.terminate().await?.success());
    Ok(())
}
