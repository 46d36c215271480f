//! Random certificate serial numbers.

use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

/// A random positive 127-bit serial (16 bytes, top bit clear, second bit set so the
/// encoding is always 16 bytes): well above the 64 bits of entropy CA/B rules ask for.
pub(crate) fn random_serial() -> Result<rcgen::SerialNumber> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Crypto {
            operation: "serial number generation",
            reason: "the system random number generator failed".to_string(),
        })?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}
