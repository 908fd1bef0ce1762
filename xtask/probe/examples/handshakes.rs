//! Opens COUNT client connections to URL one after another, each with its handshake (over TLS
//! when the server requires it, trusting `NATS_CA`) and a first PING answered: what a
//! benchmark of connection set-up runs (`hyperfine`, TLS against plaintext).
//!
//! `NATS_TOKEN=... [NATS_CA=ca.pem [NATS_CERT=... NATS_KEY=...]] cargo run --release -p
//! xtask-probe --example handshakes -- URL COUNT`

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(count)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: handshakes URL COUNT");
    };
    let token = std::env::var("NATS_TOKEN")?;
    let var = |name: &str| std::env::var_os(name).map(std::path::PathBuf::from);
    let trust = match (var("NATS_CA"), var("NATS_CERT"), var("NATS_KEY")) {
        (Some(ca), Some(cert), Some(key)) => Some(xtask_probe::Trust::from_files(
            Some(&ca),
            Some((&cert, &key)),
        )?),
        (Some(ca), _, _) => Some(xtask_probe::Trust::from_files(Some(&ca), None)?),
        _ => None,
    };
    for _ in 0..count.parse::<u32>()? {
        xtask_probe::Connection::open(
            &url,
            &xtask_probe::Auth::Token(token.clone()),
            "handshakes",
            trust.as_ref(),
        )?
        .ping()?;
    }
    Ok(())
}
