//! The JWTs of NATS's decentralized auth, as nats-io/jwt v2 writes them: an operator signs
//! accounts, an account signs its users, and each JWT is
//! `base64url(header).base64url(claims).base64url(Ed25519 signature)` with the header
//! `{"typ":"JWT","alg":"ed25519-nkey"}`. And the `.creds` files that hand a user's JWT and
//! seed to clients (nats-py, async-nats, natscli read them).

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::Digest;

use xtask_probe::nkeys::{KeyPair, Kind, base32};

const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// What a JWT says, before the type's own part: who it is about (`sub`, a public key) and its
/// name, when it was issued, and when it expires (none: never).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Claims {
    pub(crate) subject: String,
    pub(crate) name: String,
    pub(crate) issued_at: u64,
    pub(crate) expires: Option<u64>,
    /// The type's own claims (`{"type": "user", "version": 2, ...}`).
    pub(crate) nats: Value,
}

/// The JWT of `claims`, signed by `issuer`. Its `jti` is what nats-io/jwt computes: the
/// SHA-512/256 of the claims' common part (Go's field order, `jti` left out), in base32
/// without padding.
pub(crate) fn encode(issuer: &KeyPair, claims: &Claims) -> Result<String> {
    let text = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let iss = issuer.public_key();
    let expires = claims
        .expires
        .map_or(String::new(), |exp| format!("\"exp\":{exp},"));
    let common = |jti: &str| {
        format!(
            "{expires}{jti}\"iat\":{},\"iss\":{},\"name\":{},\"sub\":{}",
            claims.issued_at,
            text(&iss),
            text(&claims.name),
            text(&claims.subject)
        )
    };
    let jti = base32(&sha2::Sha512_256::digest(format!("{{{}}}", common(""))));
    let body = format!(
        "{{{},\"nats\":{}}}",
        common(&format!("\"jti\":{},", text(&jti))),
        serde_json::to_string(&claims.nats)?
    );
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(body)
    );
    let signature = issuer.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// A JWT read back: its issuer (a public key) and claims, once its signature is checked
/// against that issuer, who must be of kind `issuer`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded {
    pub(crate) issuer: String,
    pub(crate) claims: Claims,
}

/// Reads `jwt`, checking its header and that `iss`, of kind `issuer`, signed it.
pub(crate) fn decode(jwt: &str, issuer: Kind) -> Result<Decoded> {
    let mut parts = jwt.trim().split('.');
    let (Some(header), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!("not a JWT: it has no three parts");
    };
    let part = |text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .context("not a JWT: a part is not base64url")
    };
    let header: Value = serde_json::from_slice(&part(header)?).context("not a JWT header")?;
    if header["alg"] != "ed25519-nkey" {
        bail!("not a NATS JWT: its algorithm is {}", header["alg"]);
    }
    let claims: Value = serde_json::from_slice(&part(body)?).context("its claims are not JSON")?;
    let iss = claims["iss"].as_str().context("it names no issuer")?;
    let signed = jwt.trim().rsplit_once('.').map_or("", |(signed, _)| signed);
    xtask_probe::nkeys::verify(iss, issuer, signed.as_bytes(), &part(signature)?)
        .context("its signature does not verify: it was changed, or made by another key")?;
    let number = |key: &str| claims[key].as_u64();
    Ok(Decoded {
        issuer: iss.to_string(),
        claims: Claims {
            subject: claims["sub"].as_str().unwrap_or_default().to_string(),
            name: claims["name"].as_str().unwrap_or_default().to_string(),
            issued_at: number("iat").unwrap_or_default(),
            expires: number("exp"),
            nats: claims["nats"].clone(),
        },
    })
}

/// A `.creds` file's text: the user's JWT and seed, as nats-io/jwt's `FormatUserConfig`
/// writes it.
pub(crate) fn creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user_claims(user: &KeyPair) -> Claims {
        Claims {
            subject: user.public_key(),
            name: "app".into(),
            issued_at: 1_700_000_000,
            expires: Some(1_800_000_000),
            nats: json!({"pub": {"allow": ["app.>"]}, "sub": {}, "subs": -1, "data": -1,
                         "payload": -1, "type": "user", "version": 2}),
        }
    }

    #[test]
    fn a_jwt_reads_back_as_signed_and_its_jti_is_the_hash_of_its_claims() {
        let account = KeyPair::generate(Kind::Account).unwrap();
        let user = KeyPair::generate(Kind::User).unwrap();
        let claims = user_claims(&user);
        let jwt = encode(&account, &claims).unwrap();
        let decoded = decode(&jwt, Kind::Account).unwrap();
        assert_eq!(decoded.issuer, account.public_key());
        assert_eq!(decoded.claims, claims);

        let body: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        let common = format!(
            r#"{{"exp":1800000000,"iat":1700000000,"iss":"{}","name":"app","sub":"{}"}}"#,
            account.public_key(),
            user.public_key()
        );
        assert_eq!(
            body["jti"],
            base32(&sha2::Sha512_256::digest(common.as_bytes()))
        );
        assert_eq!(body["jti"].as_str().unwrap().len(), 52);
        let header = URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap();
        assert_eq!(header, HEADER.as_bytes());
    }

    #[test]
    fn a_changed_jwt_or_one_of_another_issuer_does_not_read() {
        let account = KeyPair::generate(Kind::Account).unwrap();
        let user = KeyPair::generate(Kind::User).unwrap();
        let jwt = encode(&account, &user_claims(&user)).unwrap();
        let (head, rest) = jwt.split_once('.').unwrap();
        let (body, signature) = rest.split_once('.').unwrap();
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        claims["nats"]["pub"]["allow"] = json!([">"]);
        let tampered = format!(
            "{head}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let e = decode(&tampered, Kind::Account).unwrap_err();
        assert!(format!("{e:#}").contains("does not verify"), "{e:#}");
        // A user's JWT is not an operator's.
        assert!(decode(&jwt, Kind::Operator).is_err());
        assert!(decode("a.b", Kind::Account).is_err());
    }

    #[test]
    fn creds_read_back_and_have_the_six_dash_closing_lines() {
        let user = KeyPair::generate(Kind::User).unwrap();
        let text = creds("eyJ.x.y", &user.seed());
        assert!(text.contains("\n------END NATS USER JWT------\n"));
        assert!(text.contains("\n------END USER NKEY SEED------\n"));
        assert_eq!(
            xtask_probe::Auth::from_creds(&text).unwrap(),
            xtask_probe::Auth::User {
                jwt: "eyJ.x.y".to_string(),
                seed: user.seed()
            }
        );
        assert!(xtask_probe::Auth::from_creds("-----BEGIN NATS USER JWT-----\n").is_err());
    }
}
