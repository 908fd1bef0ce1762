//! NKeys, NATS's Ed25519 keys as text: a public key (`O…` operator, `A…` account, `U…` user)
//! and its seed (`SO…`, `SA…`, `SU…`), which is the secret. Made with ring, which the xtask
//! already builds for TLS: byte for byte what the `nkeys` crate makes (base32 without padding
//! of a prefix byte, the key, and a CRC-16/XMODEM, little-endian), without its 12 s of
//! dependencies.

use anyhow::{Context, Result, bail};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

/// What a key is for: the first letter of its public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Operator,
    Account,
    User,
}

impl Kind {
    /// The prefix byte: its top five bits are the letter's base32 value.
    fn prefix(self) -> u8 {
        match self {
            Kind::Operator => 14 << 3,
            Kind::Account => 0,
            Kind::User => 20 << 3,
        }
    }

    fn of_prefix(prefix: u8) -> Option<Kind> {
        [Kind::Operator, Kind::Account, Kind::User]
            .into_iter()
            .find(|kind| kind.prefix() == prefix)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Operator => "operator",
            Kind::Account => "account",
            Kind::User => "user",
        }
    }
}

/// The prefix byte of a seed (`S`).
const SEED: u8 = 18 << 3;

/// A key pair: what it is for, its 32 secret bytes, and ring's key made from them.
pub struct KeyPair {
    kind: Kind,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A new key pair from the OS's secure random source.
    pub fn generate(kind: Kind) -> Result<KeyPair> {
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| anyhow::anyhow!("the OS's random source failed"))?;
        KeyPair::from_raw(kind, seed)
    }

    fn from_raw(kind: Kind, seed: [u8; 32]) -> Result<KeyPair> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 seed: {e}"))?;
        Ok(KeyPair { kind, seed, pair })
    }

    /// The key pair of a seed as text (`SU…`), checked: its checksum, and that it is a seed.
    pub fn from_seed(text: &str) -> Result<KeyPair> {
        let bytes = decode(text.trim()).context("not an NKey seed")?;
        let [first, second, raw @ ..] = bytes.as_slice() else {
            bail!("not an NKey seed: too short");
        };
        if first & 0xf8 != SEED {
            bail!("not an NKey seed: it does not start with S");
        }
        let prefix = ((first & 0x07) << 5) | ((second & 0xf8) >> 3);
        let kind =
            Kind::of_prefix(prefix).context("not an operator's, account's or user's seed")?;
        let seed: [u8; 32] = raw.try_into().context("not an NKey seed: wrong length")?;
        KeyPair::from_raw(kind, seed)
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The public key as text (`U…`).
    pub fn public_key(&self) -> String {
        let mut bytes = vec![self.kind.prefix()];
        bytes.extend_from_slice(self.pair.public_key().as_ref());
        encode(&bytes)
    }

    /// The seed as text (`SU…`): the secret, for files only the owner reads.
    pub fn seed(&self) -> String {
        let prefix = self.kind.prefix();
        let mut bytes = vec![SEED | prefix >> 5, (prefix & 31) << 3];
        bytes.extend_from_slice(&self.seed);
        encode(&bytes)
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// Checks that `signature` over `message` is by the key whose public key is `public` (text),
/// of kind `kind`.
pub fn verify(public: &str, kind: Kind, message: &[u8], signature: &[u8]) -> Result<()> {
    let bytes = decode(public).with_context(|| format!("`{public}` is not an NKey"))?;
    let [prefix, key @ ..] = bytes.as_slice() else {
        bail!("`{public}` is not an NKey");
    };
    if Kind::of_prefix(*prefix) != Some(kind) || key.len() != 32 {
        bail!("`{public}` is not an {} key", kind.name());
    }
    UnparsedPublicKey::new(&ED25519, key)
        .verify(message, signature)
        .map_err(|_| anyhow::anyhow!("the signature is not by `{public}`"))
}

/// The RFC 4648 base32 alphabet.
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// `bytes` with their CRC-16 appended, in base32 without padding.
fn encode(bytes: &[u8]) -> String {
    let mut data = bytes.to_vec();
    data.extend_from_slice(&crc16(bytes).to_le_bytes());
    base32(&data)
}

/// `bytes` in base32 (RFC 4648) without padding, as NKeys and a JWT's `jti` are written.
pub fn base32(bytes: &[u8]) -> String {
    let (mut text, mut bits, mut count) = (String::new(), 0u32, 0);
    for &byte in bytes {
        bits = (bits << 8) | u32::from(byte);
        count += 8;
        while count >= 5 {
            count -= 5;
            text.push(ALPHABET[((bits >> count) & 31) as usize] as char);
        }
    }
    if count > 0 {
        text.push(ALPHABET[((bits << (5 - count)) & 31) as usize] as char);
    }
    text
}

/// The bytes of base32 `text` (no padding) whose CRC-16 checks, without it.
fn decode(text: &str) -> Result<Vec<u8>> {
    let (mut data, mut bits, mut count) = (Vec::new(), 0u32, 0);
    for c in text.bytes() {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c)
            .with_context(|| format!("`{}` is not base32", c as char))?;
        bits = (bits << 5) | value as u32;
        count += 5;
        if count >= 8 {
            count -= 8;
            data.push((bits >> count) as u8);
        }
    }
    if data.len() < 3 {
        bail!("too short");
    }
    let crc = data.split_off(data.len() - 2);
    if crc16(&data).to_le_bytes() != crc.as_slice() {
        bail!("its checksum does not match");
    }
    Ok(data)
}

/// CRC-16/XMODEM: polynomial 0x1021, initial value 0.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The user key of the NATS documentation's examples, and a signature other clients'
    /// tests check (Ed25519 signatures are deterministic).
    const SEED_TEXT: &str = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY";
    const PUBLIC: &str = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";

    #[test]
    fn a_known_seed_gives_its_known_public_key_and_signature() {
        let pair = KeyPair::from_seed(SEED_TEXT).unwrap();
        assert_eq!(pair.kind(), Kind::User);
        assert_eq!(pair.public_key(), PUBLIC);
        assert_eq!(pair.seed(), SEED_TEXT);
        use base64::Engine;
        let expected = base64::engine::general_purpose::STANDARD
            .decode(
                "WosANJXgeyxerXFo0twRiMG+/ZjYp1K/46bFeFax705yFTCTjM18jWl01gGYk4KKbadiHd+hP3WgUQ2iLZUAAA==",
            )
            .unwrap();
        assert_eq!(pair.sign(b"DhXdTMAeiHhLDig"), expected);
        verify(PUBLIC, Kind::User, b"DhXdTMAeiHhLDig", &expected).unwrap();
        assert!(verify(PUBLIC, Kind::User, b"another nonce", &expected).is_err());
        assert!(verify(PUBLIC, Kind::Account, b"DhXdTMAeiHhLDig", &expected).is_err());
    }

    #[test]
    fn new_keys_start_with_their_letters_and_read_back() {
        for (kind, public, seed) in [
            (Kind::Operator, 'O', "SO"),
            (Kind::Account, 'A', "SA"),
            (Kind::User, 'U', "SU"),
        ] {
            let pair = KeyPair::generate(kind).unwrap();
            assert!(pair.public_key().starts_with(public), "{pair:?}");
            assert_eq!(pair.public_key().len(), 56);
            assert!(pair.seed().starts_with(seed));
            let again = KeyPair::from_seed(&pair.seed()).unwrap();
            assert_eq!(again.public_key(), pair.public_key());
            assert_eq!(again.kind(), kind);
        }
        let (a, b) = (
            KeyPair::generate(Kind::User).unwrap(),
            KeyPair::generate(Kind::User).unwrap(),
        );
        assert_ne!(a.public_key(), b.public_key());
    }

    #[test]
    fn a_damaged_seed_or_a_public_key_is_not_a_seed() {
        let mut damaged = SEED_TEXT.to_string();
        damaged.replace_range(20..21, "A");
        let e = KeyPair::from_seed(&damaged).unwrap_err();
        assert!(format!("{e:#}").contains("checksum"), "{e:#}");
        assert!(KeyPair::from_seed(PUBLIC).is_err());
        assert!(KeyPair::from_seed("SU0").is_err());
        assert!(KeyPair::from_seed("").is_err());
    }
}
