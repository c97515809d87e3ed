//! Writing era XML exactly as thin-provisioning-tools 1.3.3 does: two spaces per level,
//! fixed attribute order, no declaration, a newline before every element but the first and
//! none at the end.

use std::io::{self, Write};

use super::super::sink::{EraSink, Header};

/// Bytes gathered before they are handed to the underlying writer.
const CHUNK: usize = 1 << 16;

/// An [`EraSink`] that writes the XML of `era_dump`. A writeset prints one `<bit>` per
/// origin block (`nr_blocks` of the superblock), plus any set bit past `nr_blocks`.
pub struct XmlWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    nr_blocks: u64,
    bit: u64,
    era_index: u64,
}

impl<W: Write> XmlWriter<W> {
    /// A writer into `out`.
    pub fn new(out: W) -> XmlWriter<W> {
        XmlWriter {
            out,
            buf: Vec::with_capacity(CHUNK + 256),
            nr_blocks: 0,
            bit: 0,
            era_index: 0,
        }
    }

    /// Flushes what is buffered and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.spill()?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn spill(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn maybe_spill(&mut self) -> io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.spill()?;
        }
        Ok(())
    }

    fn line(&mut self, text: &[u8]) {
        self.buf.push(b'\n');
        self.buf.extend_from_slice(text);
    }

    fn bit_line(&mut self, block: u64, set: bool) {
        self.buf.extend_from_slice(b"\n    <bit block=\"");
        put_u64(&mut self.buf, block);
        self.buf.extend_from_slice(if set {
            b"\" value=\"true\"/>"
        } else {
            b"\" value=\"false\"/>"
        });
    }
}

/// Appends `v` in decimal.
fn put_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

impl<W: Write> EraSink for XmlWriter<W> {
    fn superblock_begin(&mut self, h: &Header) -> io::Result<()> {
        self.nr_blocks = h.nr_blocks as u64;
        self.buf
            .extend_from_slice(b"<superblock uuid=\"\" block_size=\"");
        put_u64(&mut self.buf, h.block_size as u64);
        self.buf.extend_from_slice(b"\" nr_blocks=\"");
        put_u64(&mut self.buf, h.nr_blocks as u64);
        self.buf.extend_from_slice(b"\" current_era=\"");
        put_u64(&mut self.buf, h.current_era as u64);
        self.buf.extend_from_slice(b"\">");
        Ok(())
    }

    fn writeset_begin(&mut self, era: u32, nr_bits: u32) -> io::Result<()> {
        self.buf.extend_from_slice(b"\n  <writeset era=\"");
        put_u64(&mut self.buf, era as u64);
        self.buf.extend_from_slice(b"\" nr_bits=\"");
        put_u64(&mut self.buf, nr_bits as u64);
        self.buf.extend_from_slice(b"\">");
        self.bit = 0;
        Ok(())
    }

    fn writeset_words(&mut self, words: &[u64]) -> io::Result<()> {
        for &word in words {
            let base = self.bit;
            self.bit += 64;
            if base + 64 <= self.nr_blocks {
                for j in 0..64 {
                    self.bit_line(base + j, word >> j & 1 != 0);
                }
            } else {
                let mut w = word;
                for j in 0..64 {
                    let b = base + j;
                    if b < self.nr_blocks {
                        self.bit_line(b, w & 1 != 0);
                    } else if w == 0 {
                        break;
                    } else if w & 1 != 0 {
                        self.bit_line(b, true);
                    }
                    w >>= 1;
                }
            }
            self.maybe_spill()?;
        }
        Ok(())
    }

    fn writeset_end(&mut self) -> io::Result<()> {
        // A writeset shorter than the origin (it predates a grow) has no bit past its end.
        while self.bit < self.nr_blocks {
            self.bit_line(self.bit, false);
            self.bit += 1;
            if self.bit % 64 == 0 {
                self.maybe_spill()?;
            }
        }
        self.line(b"  </writeset>");
        Ok(())
    }

    fn era_array_begin(&mut self) -> io::Result<()> {
        self.line(b"  <era_array>");
        self.era_index = 0;
        Ok(())
    }

    fn eras(&mut self, eras: &[u32]) -> io::Result<()> {
        for &era in eras {
            self.buf.extend_from_slice(b"\n    <era block=\"");
            put_u64(&mut self.buf, self.era_index);
            self.buf.extend_from_slice(b"\" era=\"");
            put_u64(&mut self.buf, era as u64);
            self.buf.extend_from_slice(b"\"/>");
            self.era_index += 1;
            self.maybe_spill()?;
        }
        Ok(())
    }

    fn era_array_end(&mut self) -> io::Result<()> {
        self.line(b"  </era_array>");
        Ok(())
    }

    fn superblock_end(&mut self) -> io::Result<()> {
        self.line(b"</superblock>");
        self.spill()?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal() {
        let mut b = Vec::new();
        for v in [0u64, 7, 10, 4_294_967_295, u64::MAX] {
            b.clear();
            put_u64(&mut b, v);
            assert_eq!(b, v.to_string().as_bytes());
        }
    }

    #[test]
    fn bits_past_nr_blocks_print_only_when_set_and_short_writesets_are_padded() {
        let mut x = XmlWriter::new(Vec::new());
        let h = Header {
            block_size: 8,
            nr_blocks: 2,
            current_era: 1,
        };
        x.superblock_begin(&h).unwrap();
        x.writeset_begin(1, 3).unwrap();
        x.writeset_words(&[0b101]).unwrap();
        x.writeset_end().unwrap();
        x.writeset_begin(0, 1).unwrap();
        x.writeset_words(&[0]).unwrap();
        x.writeset_end().unwrap();
        x.era_array_begin().unwrap();
        x.eras(&[1, 0]).unwrap();
        x.era_array_end().unwrap();
        x.superblock_end().unwrap();
        let text = String::from_utf8(x.into_inner().unwrap()).unwrap();
        assert_eq!(
            text,
            "<superblock uuid=\"\" block_size=\"8\" nr_blocks=\"2\" current_era=\"1\">\n  \
             <writeset era=\"1\" nr_bits=\"3\">\n    <bit block=\"0\" value=\"true\"/>\n    \
             <bit block=\"1\" value=\"false\"/>\n    <bit block=\"2\" value=\"true\"/>\n  \
             </writeset>\n  <writeset era=\"0\" nr_bits=\"1\">\n    \
             <bit block=\"0\" value=\"false\"/>\n    <bit block=\"1\" value=\"false\"/>\n  \
             </writeset>\n  <era_array>\n    <era block=\"0\" era=\"1\"/>\n    \
             <era block=\"1\" era=\"0\"/>\n  </era_array>\n</superblock>"
        );
    }
}
