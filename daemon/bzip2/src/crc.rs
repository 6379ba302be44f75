//! bzip2's block CRC (CRC-32, polynomial 0x04C11DB7, MSB first), eight
//! bytes per step: the byte-at-a-time loop is one dependent table load per
//! byte, and a block of zeros is 45 MB of output.

const POLY: u32 = 0x04C1_1DB7;

/// `TABLES[k][b]`: the CRC of byte `b` followed by `k` zero bytes.
static TABLES: [[u32; 256]; 8] = tables();

const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut b = 0;
    while b < 256 {
        let mut crc = (b as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ POLY
            } else {
                crc << 1
            };
            bit += 1;
        }
        t[0][b] = crc;
        b += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut b = 0;
        while b < 256 {
            let prev = t[k - 1][b];
            t[k][b] = (prev << 8) ^ t[0][(prev >> 24) as usize];
            b += 1;
        }
        k += 1;
    }
    t
}

/// The bzip2 CRC of `data`.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut crc = u32::MAX;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let hi = crc ^ u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        let lo = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(hi >> 24) as usize]
            ^ t[6][((hi >> 16) & 0xFF) as usize]
            ^ t[5][((hi >> 8) & 0xFF) as usize]
            ^ t[4][(hi & 0xFF) as usize]
            ^ t[3][(lo >> 24) as usize]
            ^ t[2][((lo >> 16) & 0xFF) as usize]
            ^ t[1][((lo >> 8) & 0xFF) as usize]
            ^ t[0][(lo & 0xFF) as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc << 8) ^ t[0][((crc >> 24) ^ u32::from(b)) as usize];
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_check_value() {
        // CRC-32/BZIP2 of "123456789".
        assert_eq!(crc32(b"123456789"), 0xFC89_1918);
        assert_eq!(crc32(b""), 0);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let bytewise = long.iter().fold(u32::MAX, |crc, &b| {
            (crc << 8) ^ TABLES[0][((crc >> 24) ^ u32::from(b)) as usize]
        });
        assert_eq!(crc32(&long), !bytewise);
    }
}
